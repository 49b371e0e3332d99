"""OpenStack courses against a misbehaving cloud (faults of the API double, tests/openstack_double/faults.py).

Nova answers 503 for a while, servers go to ERROR ("No valid host was found"), the instances
quota fills up while the course is being created, a server action meets 409 Conflict. The
course comes up with what the site can give: transient answers are tried again, a server in
ERROR is deleted and made once more, and what is still missing is named with Nova's reason
and what to do, while the servers made are kept and recorded. A re-run makes only the
missing seats.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any, Callable

import openstack
import pytest

from openstack_double.faults import NO_VALID_HOST
from openstack_double.site import PASSWORD_CLOUD, OpenStackSite
from test_openstack import course, course_servers, recap
from test_openstack_ownership import one_line

Runner = Callable[..., subprocess.CompletedProcess[str]]
# Tries without waiting between them: the double has no clock.
NO_DELAY = ("-e", "course_openstack_api_retry_delay=0")
MISSING = re.compile(r"Seat \S+ is missing: ")


def record_entry(output: Path) -> dict[str, Any]:
    return json.loads((output / "resources.json").read_text())["openstack"][PASSWORD_CLOUD]


def servers_in(site: OpenStackSite, status: str) -> list[str]:
    with site.cloud.lock:
        return [s["name"] for s in site.cloud.servers.values() if s["status"] == status]


def assert_partial_provision(result: subprocess.CompletedProcess[str], missing: dict[str, str], seats: int) -> str:
    """provision.yml writes the sheet, then fails naming each missing seat with its reason (in seat order)."""
    text = one_line(result.stdout)
    assert result.returncode != 0, text[-4000:]
    summary = "; ".join(f"{name}: {reason}" for name, reason in missing.items())
    assert f"{len(missing)} of {seats} seats are missing: {summary}." in text, text[-4000:]
    assert "Re-run provision.yml: only the missing seats are launched." in text
    return text


def test_double_faults_fire_as_set_and_reset_clears_them(openstack_site: OpenStackSite) -> None:
    """The double's own fault switches, through openstacksdk: each fires for what it names, as often as set."""
    site = openstack_site
    conn = openstack.connect(auth_url=site.auth_url, username="course-admin", password="s3cret",
                             project_name=site.cloud.project_name, user_domain_name="Default",
                             project_domain_name="Default", region_name="RegionOne")

    def create(name: str, flavor: str) -> Any:
        server = conn.compute.create_server(name=name, image_id=image_id, flavor_id=flavors[flavor],
                                            networks=[{"uuid": network_id}])
        return conn.compute.get_server(server.id)

    with site.cloud.lock:
        image_id = next(i["id"] for i in site.cloud.images.values() if i["name"] == "Ubuntu 24.04")
        network_id = next(n["id"] for n in site.cloud.networks.values() if n["name"] == "training-net")
        flavors = {f["name"]: f["id"] for f in site.cloud.flavors.values()}

    site.double.servers_fail(1, flavor="g1.c06r12")
    assert create("small", "m1.small").status == "ACTIVE"
    failed = create("gpu-1", "g1.c06r12")
    assert (failed.status, failed.fault["message"], failed.addresses) == ("ERROR", NO_VALID_HOST, {})
    assert create("gpu-2", "g1.c06r12").status == "ACTIVE"

    site.double.nova_unavailable(1, method="GET", path="/compute/v2.1/flavors")
    with pytest.raises(openstack.exceptions.HttpException, match="503"):
        conn.compute.get_flavor(flavors["m1.small"])
    assert conn.compute.get_flavor(flavors["m1.small"]).name == "m1.small"

    site.double.server_action_conflict(1, action="os-stop")
    with pytest.raises(openstack.exceptions.ConflictException, match="while it is in task_state powering-off"):
        conn.compute.stop_server(failed.id)
    conn.compute.stop_server(failed.id)

    site.double.instances_quota_full_after(1)
    create("last", "m1.small")
    with pytest.raises(openstack.exceptions.ForbiddenException,
                       match="Quota exceeded for instances: Requested 1, but already used 4 of 4 instances"):
        create("one-too-many", "m1.small")

    assert site.double.faults_fired() == [f"ERROR g1.c06r12: {NO_VALID_HOST}", "503 GET /compute/v2.1/flavors/"
                                          + flavors["m1.small"], "409 os-stop", "instances quota full"]
    site.double.nova_unavailable(5)
    site.double.reset()
    assert site.double.faults_fired() == [] and site.cloud.faults.bursts == []


def test_server_in_error_is_made_once_more_then_left_out(openstack_site: OpenStackSite, run_playbook: Runner,
                                                        course_catalogue: Callable[..., list[str]], tmp_path: Path) -> None:
    """Three creates in ERROR for two seats: 01 and 02 fail, 01 again (left out, deleted), 02's second server runs."""
    site = openstack_site
    site.double.servers_fail(3, flavor="g1.c06r12")
    args = course_catalogue("faulty", course(site, seats=2, egi=False))

    result = run_playbook("provision.yml", *args, *NO_DELAY, env=site.env())
    assert site.double.faults_fired() == [f"ERROR g1.c06r12: {NO_VALID_HOST}"] * 3, result.stdout[-6000:]
    text = assert_partial_provision(result, {
        "faulty-training-01": f"its server went to ERROR twice, and both were deleted: {NO_VALID_HOST.rstrip('.')}"}, seats=2)
    assert text.count(f"went to ERROR: {NO_VALID_HOST} It is deleted and made once more.") == 2
    assert text.count(f"went to ERROR: {NO_VALID_HOST} It is deleted, and the seat is left out.") == 1
    assert "could not start a server of flavour g1.c06r12" in text

    servers = course_servers(site, "faulty")
    assert list(servers) == ["faulty-training-02"] and servers["faulty-training-02"]["status"] == "ACTIVE"
    assert servers_in(site, "ERROR") == []
    with site.cloud.lock:
        assert len(site.cloud.floating_ips) == 1 and all(f["port_id"] for f in site.cloud.floating_ips.values())
    entry = record_entry(tmp_path / "output" / "faulty")
    assert entry["servers"] == [servers["faulty-training-02"]["id"]]
    assert not entry.get("pending_servers")
    assert entry["floating_ips"] == [f["id"] for f in site.cloud.floating_ips.values()]
    assert "faulty-training-02" in (tmp_path / "output" / "faulty" / "access.csv").read_text()


def test_quota_full_mid_way_keeps_the_servers_made_and_a_rerun_fills_in(
        openstack_site: OpenStackSite, run_playbook: Runner, course_catalogue: Callable[..., list[str]],
        tmp_path: Path) -> None:
    """Quota full after one server: it is kept and recorded, the rest named; more quota, a re-run makes only them.

    The re-run meets a burst of 503 from Nova while it creates them, and two 409 Conflict answers
    while it starts the first seat (stopped meanwhile): it tries again and the course is complete.
    A third run changes nothing. Stopping the course then meets a burst of 503 on the read of its
    servers and two 409 Conflict answers on the first stop: both are tried again, every seat stops.
    """
    site = openstack_site
    site.double.instances_quota_full_after(1)
    args = course_catalogue("faulty", course(site, seats=3, egi=False))
    output = tmp_path / "output" / "faulty"
    quota = "Nova refused it: Quota exceeded for instances: Requested 1, but already used 1 of 1 instances"

    first = run_playbook("provision.yml", *args, *NO_DELAY, env=site.env())
    text = assert_partial_provision(first, {"faulty-training-02": quota, "faulty-training-03": quota}, seats=3)
    assert "ask the site (on EGI, through the VO manager) for more quota, or give the course fewer seats" in text
    assert "FAILED - RETRYING" not in first.stdout, "a quota refusal is not tried again"
    made = course_servers(site, "faulty")
    assert list(made) == ["faulty-training-01"]
    seat_id = made["faulty-training-01"]["id"]
    entry = record_entry(output)
    assert entry["servers"] == [seat_id] and not entry.get("pending_servers")
    assert "faulty-training-01" in (output / "access.csv").read_text()

    with site.cloud.lock:
        site.cloud.quotas["instances"] = 4
        site.cloud.servers[seat_id]["status"] = "SHUTOFF"
    site.double.server_action_conflict(2, action="os-start")
    site.double.nova_unavailable(3, method="POST", path="/compute/v2.1/servers")
    second = run_playbook("provision.yml", *args, *NO_DELAY, env=site.env())
    assert second.returncode == 0, second.stdout[-4000:]
    assert not MISSING.search(second.stdout)
    assert "FAILED - RETRYING: [localhost]: Ensure the seat's server" in second.stdout
    assert "FAILED - RETRYING: [localhost]: Start the course's stopped seats" in second.stdout
    after = course_servers(site, "faulty")
    assert sorted(after) == ["faulty-training-01", "faulty-training-02", "faulty-training-03"]
    assert after["faulty-training-01"]["id"] == seat_id
    assert after["faulty-training-01"]["_actions"] == ["create", "os-start"]
    assert {s["status"] for s in after.values()} == {"ACTIVE"}
    assert site.double.faults_fired() == ["instances quota full", *["503 POST /compute/v2.1/servers"] * 3,
                                          "409 os-start", "409 os-start"]
    assert sorted(record_entry(output)["servers"]) == sorted(s["id"] for s in after.values())

    third = run_playbook("provision.yml", *args, *NO_DELAY, env=site.env())
    assert third.returncode == 0, third.stdout[-4000:]
    assert recap(third)["changed"] == 0, third.stdout[-6000:]
    assert {n: s["id"] for n, s in course_servers(site, "faulty").items()} == {n: s["id"] for n, s in after.items()}

    site.double.nova_unavailable(2, method="GET", path="/compute/v2.1/servers")
    site.double.server_action_conflict(2, action="os-stop")
    stopped = run_playbook("lifecycle.yml", *args, *NO_DELAY, "-e", "course_action=stop", env=site.env())
    assert stopped.returncode == 0, stopped.stdout[-4000:]
    assert "FAILED - RETRYING: [localhost]: Read the servers that carry the course's metadata" in stopped.stdout
    assert "FAILED - RETRYING: [localhost]: Act on the seats: stop" in stopped.stdout
    assert site.double.faults_fired()[6:] == [*["503 GET /compute/v2.1/servers/detail"] * 2, "409 os-stop", "409 os-stop"]
    assert {n: s["status"] for n, s in course_servers(site, "faulty").items()} == dict.fromkeys(after, "SHUTOFF")
