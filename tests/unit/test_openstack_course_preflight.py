"""openstack_course_preflight: its decisions on plain data, and its reads against the OpenStack double."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any, Iterator

import openstack
import pytest
import yaml

PROJECT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(PROJECT / "collections"))
sys.path.insert(0, str(PROJECT / "tests"))

from ansible_collections.i2pc.scipion_cloud.plugins.modules import openstack_course_preflight as preflight  # noqa: E402
from openstack_double import OpenStackDouble  # noqa: E402

TRANSIENT = yaml.safe_load((PROJECT / "roles/course_openstack/vars/main.yml").read_text())["__course_openstack_transient"]
SEATS = ["c-training-01", "c-training-02", "c-training-03"]
FLAVOR = {"name": "g1.c06r12", "vcpus": 6, "ram": 12288, "disk": 40}


def params(**changes: Any) -> dict[str, Any]:
    """The module's parameters: its defaults, a three-seat course, and ``changes``."""
    base = {name: spec.get("default") for name, spec in preflight.ARGUMENT_SPEC.items()}
    base.update(cloud="site-password", course="c", seat_names=SEATS, flavor="g1.c06r12", disk_gb=30,
                image="scipion-1.1-course", profile="scipion-1.1", record="output/c/resources.json")
    return {**base, **changes}


def server(name: str, server_id: str, status: str = "ACTIVE", floating: bool = False) -> dict[str, Any]:
    addresses = [{"addr": "10.0.0.5", "OS-EXT-IPS:type": "fixed"}]
    if floating:
        addresses.append({"addr": "203.0.113.5", "OS-EXT-IPS:type": "floating"})
    return {"id": server_id, "name": name, "status": status, "addresses": {"training-net": addresses}}


def group(name: str, group_id: str, description: str = "") -> dict[str, Any]:
    return {"id": group_id, "name": name, "description": description}


def project(**changes: Any) -> dict[str, Any]:
    """What read_project returns for a project where the course fits and has nothing yet."""
    base = {
        "flavor": FLAVOR,
        "images": [{"name": "scipion-1.1-course", "properties": {}}],
        "all_images": None,
        "networks": [{"id": "net-1", "name": "training-net", "is_router_external": False},
                     {"id": "net-2", "name": "public", "is_router_external": True}],
        "keypairs": None,
        "servers": [],
        "security_groups": [group("default", "sg-0", "Default security group")],
        "quota": {"instances": {"limit": 4, "used": 0}, "cores": {"limit": 24, "used": 0},
                  "ram_mb": {"limit": 49152, "used": 0}, "floating_ips": {"limit": 4, "used": 0}},
    }
    return {**base, **changes}


def by_name(checks: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in checks}


def failed(checks: list[dict[str, Any]]) -> list[str]:
    return [c["name"] for c in checks if not c["ok"]]


# --- decisions --------------------------------------------------------------------------

def test_a_course_that_fits_passes_every_check_in_the_reported_order() -> None:
    result = preflight.decide(params(), project())
    assert [c["name"] for c in result["checks"]] == ["OpenStack login", *preflight.CHECK_NAMES]
    assert failed(result["checks"]) == []
    assert all(c["fix"] == "" for c in result["checks"])
    assert result["checks"][0]["detail"] == "Logged in to cloud site-password (clouds.yaml)."
    assert (result["missing"], result["surplus"], result["course_servers"]) == (SEATS, [], [])
    assert result["security_group"] == {"state": "create", "id": ""}
    assert result["needs"] == {"instances": 3, "cores": 18, "ram_mb": 36864, "floating_ips": 3}
    assert result["room"] == 1


def test_egi_login_names_the_site() -> None:
    check = preflight.login_check(params(auth="egi_token", site="IISAS-FedCloud-cloud"))
    assert check["detail"] == "Logged in to cloud site-password (EGI site IISAS-FedCloud-cloud, Check-in token)."


def test_seat_plan_sorts_own_servers_clashes_and_surplus() -> None:
    servers = [server("c-training-01", "s1"), server("c-training-04", "s4"),
               server("c-training-02", "x2"), server("c-training-02", "x3"), server("other", "x9")]
    plan = preflight.seat_plan(params(owned_servers=["s1", "s4"]), servers)
    assert [s["id"] for s in plan["mine"]] == ["s1", "s4"]
    assert plan["missing"] == ["c-training-02", "c-training-03"]
    assert plan["surplus"] == ["c-training-04"]
    assert plan["clashes"] == ["c-training-02"]


def test_clashing_names_and_unrecorded_servers_fail_with_what_to_do() -> None:
    result = preflight.decide(params(unrecorded="Servers x2 (c-training-02) carry the course's metadata ..."),
                              project(servers=[server("c-training-02", "x2")]))
    checks = by_name(result["checks"])
    assert failed(result["checks"]) == ["OpenStack seat names", "OpenStack record of the course's servers"]
    assert checks["OpenStack seat names"]["detail"] == (
        "Servers named c-training-02 exist but were not created by the course (they are not in its record "
        "output/c/resources.json); they would be mistaken for seats.")
    assert "adopt them with -e course_adopt=ID,..." in checks["OpenStack seat names"]["fix"]
    assert checks["OpenStack record of the course's servers"]["detail"].startswith("Servers x2 (c-training-02)")
    assert result["missing"] == SEATS


def test_a_shrunk_course_is_refused_unless_allowed() -> None:
    servers = [server(name, f"s{n}") for n, name in enumerate([*SEATS, "c-training-04"])]
    owned = [s["id"] for s in servers]
    refused = by_name(preflight.decide(params(owned_servers=owned), project(servers=servers))["checks"])
    assert refused["OpenStack seats to remove"] == {
        "name": "OpenStack seats to remove", "ok": False,
        "detail": "Servers c-training-04 belong to the course but not to its 3 seats (the course shrank).",
        "fix": "Raise seats again, or run with -e course_openstack_allow_shrink=true to delete them."}
    allowed = preflight.decide(params(owned_servers=owned, allow_shrink=True), project(servers=servers))
    assert by_name(allowed["checks"])["OpenStack seats to remove"]["ok"]
    assert by_name(allowed["checks"])["OpenStack seats to remove"]["detail"].endswith("; they will be deleted.")
    assert allowed["surplus"] == ["c-training-04"] and allowed["missing"] == []


@pytest.mark.parametrize(("groups", "changes", "state"), [
    ([group("shared-sg", "sg-s"), group("c-sg", "sg-c", "made by hand")], {"security_group": "shared-sg"}, "reused"),
    ([], {"security_group": "gone-sg"}, "create"),
    ([group("c-sg", "sg-c", "made by hand")], {"security_group_record": {"name": "c-sg", "id": "sg-c"}}, "ours"),
    ([group("c-sg", "sg-c", "made by hand")], {"adopt": ["sg-c"]}, "ours"),
    ([group("c-sg", "sg-c", "scipion_cloud course c: SSH")], {"security_group_record": {"name": "c-sg", "id": ""}}, "ours"),
    ([group("c-sg", "sg-c", "scipion_cloud course c: SSH")], {"adopt": ["all"]}, "ours"),
    # The course's description alone, without an intent in the record or course_adopt=all, is not enough.
    ([group("c-sg", "sg-c", "scipion_cloud course c: SSH")], {}, "foreign"),
    ([group("c-sg", "sg-c", "scipion_cloud course cc: SSH")], {"adopt": ["all"]}, "foreign"),
    ([group("c-sg", "sg-c", "made by hand")], {"adopt": ["all"]}, "foreign"),
    ([group("c-sg", "sg-1"), group("c-sg", "sg-2")], {"security_group_record": {"name": "c-sg", "id": "sg-1"}}, "foreign"),
])
def test_security_group_state(groups: list[dict[str, Any]], changes: dict[str, Any], state: str) -> None:
    assert preflight.security_group_state(params(**changes), groups)[0] == state


def test_a_hand_made_group_of_the_course_name_is_refused_with_its_id() -> None:
    result = preflight.decide(params(), project(security_groups=[group("c-sg", "sg-c", "made by hand")]))
    check = by_name(result["checks"])["OpenStack security group"]
    assert not check["ok"] and result["security_group"] == {"state": "foreign", "id": "sg-c"}
    assert check["detail"].startswith("Security group c-sg (sg-c) exists in cloud site-password but the course did not create it")
    assert "set openstack.security_group: c-sg" in check["fix"] and "-e course_adopt=sg-c." in check["fix"]


def test_flavour_missing_or_with_a_small_disk() -> None:
    missing = preflight.flavor_check(params(), None)
    assert missing["detail"] == "Flavour g1.c06r12 (openstack.flavor) does not exist or is not visible to the project."
    assert missing["fix"] == "Set openstack.flavor to one of: openstack flavor list."
    small = preflight.flavor_check(params(disk_gb=50), FLAVOR)
    assert (small["ok"], small["detail"]) == (
        False, "Flavour g1.c06r12: 6 cores, 12288 MB RAM, 40 GB root disk, smaller than disk_gb (50 GB).")
    assert preflight.flavor_check(params(disk_gb=500), {**FLAVOR, "disk": 0})["ok"], "a root disk of 0 takes any size"


def test_without_the_flavour_the_quota_counts_no_cores() -> None:
    result = preflight.decide(params(), project(flavor=None))
    assert failed(result["checks"]) == ["OpenStack flavour"]
    assert result["needs"] == {"instances": 3, "cores": 0, "ram_mb": 0, "floating_ips": 3}


def test_image_missing() -> None:
    check = preflight.image_check(params(), [])
    assert (check["ok"], check["detail"]) == (False, "Image scipion-1.1-course (openstack.image) was not found.")
    assert preflight.profile_mismatch(params(), []) is False


def built(profile: str, name: str = "scipion-1.1-course") -> dict[str, Any]:
    return {"name": name, "properties": {"ManagedBy": "scipion_cloud", "Profile": profile}}


def test_image_of_another_profile_is_refused_naming_the_fitting_ones() -> None:
    images = [built("scipion-3")]
    listed = [built("scipion-3"), built("scipion-1.1", "s11-a"), {"name": "plain", "properties": None},
              {"name": "fake", "properties": {"Profile": "scipion-1.1"}}, built("scipion-1.1", "s11-b")]
    check = preflight.image_profile_check(params(), images, listed)
    assert check == {
        "name": "OpenStack image profile", "ok": False,
        "detail": "Image scipion-1.1-course was built from profile scipion-3, but the course uses profile scipion-1.1.",
        "fix": "Images built from scipion-1.1: s11-a, s11-b; set openstack.image to one of them. To use this image "
               "anyway, run with -e course_image_profile_check=false."}
    none_fit = preflight.image_profile_check(params(), images, [built("scipion-3")])
    assert none_fit["fix"].startswith("No image of profile scipion-1.1 exists here: build one with ansible-playbook "
                                      "playbooks/image.yml -e profile=scipion-1.1 -e provider=openstack.")
    waived = preflight.image_profile_check(params(check_image_profile=False), images, None)
    assert waived["ok"] and waived["detail"].endswith(" Not refused: course_image_profile_check=false.")


def test_image_of_the_course_profile_or_a_plain_image_passes() -> None:
    assert preflight.image_profile_check(params(), [built("scipion-1.1")], None)["detail"] == (
        "Image scipion-1.1-course was built from profile scipion-1.1.")
    # The Profile property of an image the image role did not build is not trusted.
    plain = preflight.image_profile_check(params(), [{"name": "x", "properties": {"Profile": "scipion-3"}}], None)
    assert plain["ok"] and "was not built by the image role" in plain["detail"]


NETWORKS = [{"id": "net-1", "name": "training-net", "is_router_external": False},
            {"id": "net-3", "name": "lab-net", "is_router_external": False},
            {"id": "net-2", "name": "public", "is_router_external": True}]


def test_network_by_name_or_id_and_the_floating_ip_pool() -> None:
    assert preflight.network_check(params(network="net-3", floating_ip_pool="public"), NETWORKS)["ok"]
    unnamed = preflight.network_check(params(), NETWORKS)
    assert unnamed["detail"] == ("Networks: training-net, lab-net; external (floating IP pools): public. "
                                 "The project has 2 networks and the course names none.")
    both = preflight.network_check(params(network="nope", floating_ip_pool="lab-net"), NETWORKS)
    assert both["detail"].endswith("Network nope (openstack.network) was not found. Floating IP pool lab-net "
                                   "(openstack.floating_ip_pool) is not an external network.")
    internal_only = NETWORKS[:1]
    assert preflight.network_check(params(), internal_only)["detail"].endswith(
        "There is no external network to take floating IPs from.")
    assert preflight.network_check(params(floating_ips=False), internal_only)["ok"], "routable: no pool needed"


def test_reused_key_pair_must_exist() -> None:
    assert preflight.key_pair_check(params(key_pair="shared"), [{"name": "shared"}])["detail"] == (
        "Key pair shared (openstack.key_pair) exists.")
    missing = preflight.key_pair_check(params(key_pair="shared"), [])
    assert (missing["ok"], missing["detail"]) == (False, "Key pair shared (openstack.key_pair) does not exist.")
    assert missing["fix"].startswith("Import it (openstack keypair create --public-key FILE shared)")
    assert preflight.key_pair_check(params(own_key_pair="mine-key"), None)["detail"] == (
        "The course uses its own key pair mine-key.")


def test_quota_says_need_free_quota_and_usage() -> None:
    quota = {"instances": {"limit": 2, "used": 0}, "cores": {"limit": 24, "used": 0},
             "ram_mb": {"limit": -1, "used": 5}, "floating_ips": {"limit": 1, "used": 3}}
    checks = by_name(preflight.decide(params(), project(quota=quota))["checks"])
    assert checks["OpenStack quota: instances"]["detail"] == (
        "the course needs 3 more (3 seats to create of flavour g1.c06r12), the project has 2 free (quota 2, 0 in use).")
    assert checks["OpenStack quota: cores"]["ok"]
    assert checks["OpenStack quota: RAM (MB)"]["ok"] and checks["OpenStack quota: RAM (MB)"]["detail"].endswith(
        "the project has no limit.")
    assert checks["OpenStack quota: floating IPs"]["detail"].endswith("the project has 0 free (quota 1, 3 in use).")
    assert checks["OpenStack quota: floating IPs"]["fix"].startswith("Lower seats, choose a smaller flavour")


def test_floating_ips_count_the_course_servers_without_one() -> None:
    servers = [server("c-training-01", "s1", floating=True), server("c-training-02", "s2")]
    result = preflight.decide(params(owned_servers=["s1", "s2"]), project(servers=servers))
    assert result["needs"]["floating_ips"] == 2 and result["needs"]["instances"] == 1
    assert result["course_servers"] == [{"id": "s1", "name": "c-training-01", "status": "ACTIVE"},
                                        {"id": "s2", "name": "c-training-02", "status": "ACTIVE"}]
    assert preflight.decide(params(owned_servers=["s1", "s2"], floating_ips=False),
                            project(servers=servers))["needs"]["floating_ips"] == 0


def roomy_quota(**limits: tuple[int, int]) -> dict[str, dict[str, int]]:
    """Quotas far above a three-seat course, but for ``limits`` (resource=(limit, used))."""
    quota = {res: {"limit": 1000000, "used": 0} for res in preflight.QUOTA_RESOURCES}
    quota.update({res: {"limit": limit, "used": used} for res, (limit, used) in limits.items()})
    return quota


@pytest.mark.parametrize(("limits", "changes", "room"), [
    # 3 seats to create: 5 instances (1 in use) leave room for 1 more.
    ({"instances": (5, 1)}, {}, 1),
    # 6 cores a seat (the flavour's vcpus): 41 cores, 18 for the seats, leave 23, room for 3 more.
    ({"cores": (41, 0)}, {}, 3),
    # 12288 MB a seat: 61440 MB with 12288 in use leave room for 1 more.
    ({"ram_mb": (61440, 12288)}, {}, 1),
    # One floating IP a seat: 8 with 2 in use leave room for 3 more, unless the seats take none.
    ({"floating_ips": (8, 2)}, {}, 3),
    ({"floating_ips": (8, 2), "instances": (10, 0)}, {"floating_ips": False}, 7),
    # The tightest quota decides.
    ({"instances": (9, 0), "cores": (30, 0), "floating_ips": (6, 0)}, {}, 2),
    # Already short: 2 instances for 3 seats.
    ({"instances": (2, 0)}, {}, 0),
    ({"cores": (24, 20)}, {}, 0),
])
def test_room_is_the_seats_more_the_tightest_free_quota_holds(limits: dict[str, tuple[int, int]],
                                                             changes: dict[str, Any], room: int) -> None:
    assert preflight.decide(params(**changes), project(quota=roomy_quota(**limits)))["room"] == room


def test_room_is_null_when_no_quota_limits_or_the_flavour_is_unknown() -> None:
    unlimited = {res: {"limit": -1, "used": 7} for res in preflight.QUOTA_RESOURCES}
    assert preflight.decide(params(), project(quota=unlimited))["room"] is None
    # Only instances limit, with a flavour of unknown size: what a seat takes is not known.
    assert preflight.decide(params(), project(flavor=None, quota=roomy_quota(instances=(5, 0))))["room"] is None
    # Unlimited resources are skipped, the others still count.
    assert preflight.decide(params(), project(quota={**unlimited, "cores": {"limit": 30, "used": 0}}))["room"] == 2


def test_room_does_not_count_the_course_servers_twice() -> None:
    """The course's servers are in the project's usage already, and not in what the seats still need."""
    servers = [server("c-training-01", "s1", floating=True), server("c-training-02", "s2", floating=True)]
    quota = roomy_quota(instances=(5, 2), cores=(36, 12), floating_ips=(5, 2))
    result = preflight.decide(params(owned_servers=["s1", "s2"]), project(servers=servers, quota=quota))
    assert result["needs"]["instances"] == 1
    # 5 instances: 2 the course's, 1 to create, 2 more; 36 cores: 12 in use, 6 to create, 3 seats more.
    assert result["room"] == 2
    # A course server without a floating IP still needs one, so it leaves one less.
    servers[1] = server("c-training-02", "s2")
    quota["floating_ips"]["used"] = 1
    assert preflight.decide(params(owned_servers=["s1", "s2"]), project(servers=servers, quota=quota))["room"] == 2
    quota["floating_ips"]["limit"] = 4
    assert preflight.decide(params(owned_servers=["s1", "s2"]), project(servers=servers, quota=quota))["room"] == 1


def test_a_failed_login_leaves_every_other_check_not_run() -> None:
    failure = {"step": "Read the course's flavour", "output_hidden": False, "error": "Cloud nope was not found."}
    checks = preflight.login_refused(params(cloud="nope", login_failure=failure))
    assert checks[0] == {
        "name": "OpenStack login", "ok": False, "detail": "Cloud nope was not found.",
        "fix": "Add an entry named nope (openstack.cloud) to a clouds.yaml (OS_CLIENT_CONFIG_FILE, ./clouds.yaml, "
               "~/.config/openstack/clouds.yaml or /etc/openstack/clouds.yaml) with a valid password or application "
               "credential, then run again."}
    assert [c["name"] for c in checks[1:]] == preflight.CHECK_NAMES
    assert all(c == {"name": c["name"], "ok": False, "not_run": True,
                     "detail": "not run: no login to cloud nope (see the OpenStack login check).",
                     "fix": "Make the login work (see the OpenStack login check), then run again."} for c in checks[1:])


def test_a_refused_token_is_not_repeated_and_the_fix_names_the_vo() -> None:
    failure = {"step": "Exchange the token", "output_hidden": True, "error": ""}
    login = preflight.login_refused(params(site="IISAS-FedCloud-cloud", vo="training.egi.eu", login_failure=failure))[0]
    assert login["detail"] == ('The login step "Exchange the token" failed (its output is hidden: it handles the '
                               "access token).")
    assert login["fix"].startswith("Get a fresh EGI Check-in access token of a member of VO training.egi.eu ")
    assert preflight.login_refused(params(login_failure={"step": "", "output_hidden": False, "error": ""}))[0][
        "detail"] == "The login failed."


# --- the documentation matches the argument spec (ansible-test validate-modules) ---------------

def documented(options: dict[str, Any]) -> dict[str, Any]:
    spec = {}
    for name, doc in options.items():
        entry = {key: doc[key] for key in ("type", "required", "default", "choices", "elements") if key in doc}
        if "suboptions" in doc:
            entry["options"] = documented(doc["suboptions"])
        spec[name] = entry
    return spec


def without_no_log(spec: dict[str, Any]) -> dict[str, Any]:
    return {name: {key: (without_no_log(value) if key == "options" else value) for key, value in entry.items()
                   if key != "no_log"} for name, entry in spec.items()}


def test_documentation_matches_the_argument_spec() -> None:
    assert documented(yaml.safe_load(preflight.DOCUMENTATION)["options"]) == without_no_log(preflight.ARGUMENT_SPEC)
    yaml.safe_load(preflight.EXAMPLES)
    returned = yaml.safe_load(preflight.RETURN)
    assert set(returned) == {"checks", *preflight.NOT_READ}


# --- the reads, against the OpenStack double ----------------------------------------------

@pytest.fixture(scope="module")
def double() -> Iterator[OpenStackDouble]:
    running = OpenStackDouble().start()
    yield running
    running.stop()


@pytest.fixture
def conn(double: OpenStackDouble) -> Any:
    double.reset()
    return openstack.connect(auth_url=double.auth_url, username="course-admin", password="s3cret",
                             project_name=double.cloud.project_name, user_domain_name="Default",
                             project_domain_name="Default", region_name="RegionOne")


def seed_server(double: OpenStackDouble, name: str, metadata: dict[str, str] | None = None) -> str:
    cloud = double.cloud
    with cloud.lock:
        image = next(i for i in cloud.images.values() if i["name"] == "Ubuntu 24.04")
        flavor = next(f for f in cloud.flavors.values() if f["name"] == "m1.small")
        network = next(n for n in cloud.networks.values() if n["name"] == "training-net")
        return cloud.create_server({"name": name, "imageRef": image["id"], "flavorRef": flavor["id"],
                                    "networks": [{"uuid": network["id"]}], "metadata": metadata or {}}, "someone")["id"]


def test_reads_of_the_double_decide_like_the_course_expects(double: OpenStackDouble, conn: Any) -> None:
    mine = seed_server(double, "c-training-01", {"Course": "c", "ManagedBy": "scipion_cloud"})
    seed_server(double, "c-training-02")
    with double.cloud.lock:
        double.cloud.add_image("scipion-3-image", visibility="private", ManagedBy="scipion_cloud", Profile="scipion-3")
        double.cloud.add_image("s11", visibility="private", ManagedBy="scipion_cloud", Profile="scipion-1.1")
        double.cloud.add_security_group("c-sg", "made by hand")
        double.cloud.quotas.update(instances=3)
    chosen = params(image="scipion-3-image", owned_servers=[mine], key_pair="absent-key")

    read = preflight.read_project(conn, chosen)
    assert read["flavor"]["name"] == "g1.c06r12" and [i["name"] for i in read["images"]] == ["scipion-3-image"]
    assert "s11" in [i["name"] for i in read["all_images"]], "listed to name the fitting images"
    result = preflight.decide(chosen, read)
    checks = by_name(result["checks"])
    assert failed(result["checks"]) == ["OpenStack image profile", "OpenStack key pair", "OpenStack seat names",
                                        "OpenStack security group", "OpenStack quota: instances"]
    assert checks["OpenStack image profile"]["fix"].startswith("Images built from scipion-1.1: s11;")
    assert checks["OpenStack network"]["detail"] == "Networks: training-net; external (floating IP pools): public."
    assert checks["OpenStack quota: instances"]["detail"] == (
        "the course needs 2 more (2 seats to create of flavour g1.c06r12), the project has 1 free (quota 3, 2 in use).")
    assert result["missing"] == ["c-training-02", "c-training-03"]
    assert result["course_servers"] == [{"id": mine, "name": "c-training-01", "status": "ACTIVE"}]
    assert result["security_group"]["state"] == "foreign"


def test_a_plain_image_is_judged_without_listing_every_image(conn: Any) -> None:
    read = preflight.read_project(conn, params())
    assert read["all_images"] is None and read["keypairs"] is None
    assert failed(preflight.decide(params(), read)["checks"]) == []


def test_a_passing_refusal_reads_as_one_to_try_again(double: OpenStackDouble, conn: Any) -> None:
    """The module fails with the cloud's answer; the role tries again when it matches __course_openstack_transient."""
    double.nova_unavailable(1, method="GET", path="/compute/v2.1/servers")
    with pytest.raises(openstack.exceptions.SDKException) as refused:
        preflight.read_project(conn, params())
    assert re.search(TRANSIENT, str(refused.value)), str(refused.value)
    assert double.faults_fired() == ["503 GET /compute/v2.1/servers/detail"]
    assert preflight.read_project(conn, params())["servers"] == []
