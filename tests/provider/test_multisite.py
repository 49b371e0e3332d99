"""A course over several sites: two EGI FedCloud sites (two OpenStack doubles, each with its own
quota and state) and one AWS region (moto), in one course of 7 seats, worked on by the real
playbooks. The doubles stand in for two FedCloud sites (no OpenStack emulator runs here)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import yaml

from aws_course_helpers import course_instances, launch_decoy, linux_image_id
from openstack_double import OpenStackDouble
from openstack_double.site import EGI_CLOUD, OpenStackSite
from test_openstack import course_servers, seed_decoy

Runner = Callable[..., subprocess.CompletedProcess[str]]
COURSE = "multi"
SEATS = [f"multi-training-{n:02d}" for n in range(1, 8)]


@pytest.fixture
def second_site(openstack_site: OpenStackSite, tmp_path: Path) -> Iterator[OpenStackSite]:
    """A second FedCloud site: another double, on its own port, with its own state."""
    double = OpenStackDouble().start()
    yield OpenStackSite(double=double, clouds_yaml=openstack_site.clouds_yaml)
    double.stop()


def fedcloud(site: OpenStackSite, name: str) -> dict[str, Any]:
    """The openstack section of a FedCloud site reached with the EGI Check-in token."""
    return {"cloud": EGI_CLOUD, "image": "scipion-1.1-course", "flavor": "g1.c06r12", "site": name,
            "vo": "training.egi.eu", "auth_url": site.auth_url, "project_id": site.cloud.project_id}


def multisite_course(first: OpenStackSite, second: OpenStackSite, image_id: str,
                     counts: tuple[Any, Any, Any] = (2, 2, 3)) -> dict[str, Any]:
    return {
        "description": "A course over two FedCloud sites and one AWS region",
        "profile": "scipion-3",
        "seats": 7,
        "tags": {"UserName": "i2pc-training"},
        "access": {"ssh_cidrs": ["198.18.0.0/15"], "web_cidrs": ["0.0.0.0/0"]},
        "schedule": {"days": 2, "hours_up_per_day": 8},
        "sites": [
            {"name": "iisas", "provider": "openstack", "seats": counts[0], "openstack": fedcloud(first, "IISAS-FedCloud")},
            {"name": "cesnet", "provider": "openstack", "seats": counts[1], "openstack": fedcloud(second, "CESNET-MCC")},
            {"name": "aws-ireland", "provider": "aws", "seats": counts[2],
             "aws": {"region": "eu-west-1", "instance_type": "g4dn.xlarge", "image_id": image_id}},
        ],
    }


def recaps(stdout: str) -> dict[str, dict[str, int]]:
    """PLAY RECAP per host: localhost and each site's host."""
    found = re.findall(r"^(\S+)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", stdout, re.M)
    assert found, stdout[-3000:]
    return {host: dict(zip(("ok", "changed", "unreachable", "failed"), map(int, counts), strict=True))
            for host, *counts in found}


def changed(stdout: str) -> int:
    return sum(counts["changed"] for counts in recaps(stdout).values())


def sheet_sites(output: Path) -> dict[str, str]:
    """Seat -> site, from the access sheet's CSV."""
    import csv
    with (output / "access.csv").open() as handle:
        return {row["name"]: row["site"] for row in csv.DictReader(handle)}


def test_seven_seats_over_two_fedcloud_sites_and_an_aws_region(
        openstack_site: OpenStackSite, second_site: OpenStackSite, aws_env: dict[str, str],
        run_playbook: Runner, course_catalogue: Callable[..., list[str]], tmp_path: Path) -> None:
    """plan shows the split and the costs; provision; a re-run changes nothing; stop and start; the sheet lists
    all 7 seats with their sites; teardown leaves nothing on any site while the decoys on both kinds survive."""
    first, second = openstack_site, second_site
    # The second site is nearly full: with the decoy seeded below, room for exactly the 2 seats it is given.
    with second.cloud.lock:
        second.cloud.quotas["instances"] = 3
    decoys = seed_decoy(first), seed_decoy(second)
    image_id = linux_image_id()
    aws_decoy = launch_decoy(image_id, "other-course-01", Course="other", ManagedBy="scipion_cloud")
    env = {**aws_env, **first.env(EGI_ACCESS_TOKEN="egi-access-token")}
    args = course_catalogue(COURSE, multisite_course(first, second, image_id))
    output = tmp_path / "output" / COURSE

    plan = run_playbook("plan.yml", *args, env=env)
    assert plan.returncode == 0, plan.stdout[-5000:]
    assert "Site iisas: 2 seats" in plan.stdout and "Site cesnet: 2 seats" in plan.stdout
    assert "Site aws-ireland: 3 seats" in plan.stdout and "Course total:" in plan.stdout
    assert not course_servers(first, COURSE) and not course_servers(second, COURSE) and not course_instances(COURSE)

    first_run = run_playbook("provision.yml", *args, env=env)
    assert first_run.returncode == 0, first_run.stdout[-5000:]
    assert sorted(course_servers(first, COURSE)) == SEATS[:2]
    assert sorted(course_servers(second, COURSE)) == SEATS[2:4]
    aws_seats = {next(t["Value"] for t in i["Tags"] if t["Key"] == "Name"): i for i in course_instances(COURSE)}
    assert sorted(aws_seats) == SEATS[4:]
    # Seat numbers are the whole course's.
    assert [s["metadata"]["Seat"] for _, s in sorted(course_servers(second, COURSE).items())] == ["3", "4"]
    assert sorted(next(t["Value"] for t in i["Tags"] if t["Key"] == "Seat") for i in aws_seats.values()) == ["5", "6", "7"]
    assert sheet_sites(output) == dict(zip(SEATS, ["iisas"] * 2 + ["cesnet"] * 2 + ["aws-ireland"] * 3, strict=True))
    assert json.loads((output / "sites.json").read_text()) == sheet_sites(output)
    credentials = yaml.safe_load((output / "credentials.yml").read_text())
    assert sorted(k for k in credentials if k != "edition") == SEATS

    # configure.yml's inventory: every seat of every site, with its site's key, read without contacting a seat
    # (the doubles' floating IPs and moto's addresses lead nowhere).
    report = tmp_path / "seat_hosts.json"
    hosts = run_playbook("tests/provider/playbooks/cloud_seat_hosts.yml", *args, "-e", f"seat_hosts_report={report}", env=env)
    assert hosts.returncode == 0, hosts.stdout[-4000:]
    reached = json.loads(report.read_text())
    assert sorted(reached) == SEATS
    keys = {"iisas": output / "sites" / "iisas" / "multi-key", "cesnet": output / "sites" / "cesnet" / "multi-key",
            "aws-ireland": output / "sites" / "aws-ireland" / "multi-key.pem"}
    for name, site in sheet_sites(output).items():
        assert reached[name]["ansible_ssh_private_key_file"] == str(keys[site]), (name, reached[name])
        assert reached[name]["ansible_user"] == "ubuntu"
    addresses = {name: i["PublicIpAddress"] for name, i in aws_seats.items()}
    for site in (first, second):
        for name, server in course_servers(site, COURSE).items():
            addresses[name] = next(a["addr"] for a in site.cloud.server_addresses(server["id"])["training-net"]
                                   if a["OS-EXT-IPS:type"] == "floating")
    assert {name: reached[name]["ansible_host"] for name in SEATS} == addresses

    again = run_playbook("provision.yml", *args, env=env)
    assert again.returncode == 0, again.stdout[-5000:]
    assert changed(again.stdout) == 0, recaps(again.stdout)

    for action, state in (("stop", "SHUTOFF"), ("start", "ACTIVE")):
        result = run_playbook("lifecycle.yml", *args, "-e", f"course_action={action}", env=env)
        assert result.returncode == 0, result.stdout[-5000:]
        for site in (first, second):
            assert {s["status"] for s in course_servers(site, COURSE).values()} == {state}
        aws_state = "stopped" if action == "stop" else "running"
        assert {i["State"]["Name"] for i in course_instances(COURSE)} == {aws_state}

    down = run_playbook("teardown.yml", *args, "-e", f"confirm_teardown={COURSE}", env=env)
    assert down.returncode == 0, down.stdout[-5000:]
    assert not course_servers(first, COURSE) and not course_servers(second, COURSE)
    assert all(i["State"]["Name"] == "terminated" for i in course_instances(COURSE))
    for site, decoy in zip((first, second), decoys, strict=True):
        assert site.cloud.servers[decoy]["status"] == "ACTIVE"
    assert aws_decoy in {i["InstanceId"] for i in course_instances("other") if i["State"]["Name"] == "running"}


def test_a_site_answering_503_throughout_is_named_and_left_out_on_request_while_the_others_come_up(
        openstack_site: OpenStackSite, second_site: OpenStackSite, aws_env: dict[str, str],
        run_playbook: Runner, course_catalogue: Callable[..., list[str]], tmp_path: Path) -> None:
    """cesnet answers 503 to every request: the plan refuses the course, naming the site and how to leave it out;
    with -e course_skip_sites=cesnet the other sites' seats come up and the run fails naming cesnet's seats and
    the site; once cesnet answers again, a re-run fills them in and leaves the other seats alone."""
    first, second = openstack_site, second_site
    second.double.nova_unavailable(10**6, path="/")
    image_id = linux_image_id()
    env = {**aws_env, **first.env(EGI_ACCESS_TOKEN="egi-access-token")}
    # Retries of a 503 a second apart: the site stays down far longer than that.
    args = [*course_catalogue(COURSE, multisite_course(first, second, image_id)), "-e", "course_openstack_api_retry_delay=1"]
    output = tmp_path / "output" / COURSE

    refused = run_playbook("provision.yml", *args, env=env)
    assert refused.returncode != 0
    assert "Plan refused course multi before creating anything" in refused.stdout, refused.stdout[-4000:]
    assert re.search(r"cesnet: OpenStack login: Cloud CESNET-MCC \(http://127.0.0.1:\d+/identity/v3\) did not answer", refused.stdout)
    assert "leave it out: -e course_skip_sites=cesnet" in refused.stdout, refused.stdout[-4000:]
    assert not course_servers(first, COURSE) and not course_instances(COURSE)

    partial = run_playbook("provision.yml", *args, "-e", "course_skip_sites=cesnet", env=env)
    assert partial.returncode != 0
    assert re.search(r"2 of 7 seats are missing: multi-training-03: site cesnet is left out[^;]*; "
                     r"multi-training-04: site cesnet is left out", partial.stdout), partial.stdout[-4000:]
    assert sorted(course_servers(first, COURSE)) == SEATS[:2] and not course_servers(second, COURSE)
    assert len(course_instances(COURSE)) == 3
    assert sheet_sites(output) == dict(zip(SEATS[:2] + SEATS[4:], ["iisas"] * 2 + ["aws-ireland"] * 3, strict=True))

    second.double.reset()
    before = {i["InstanceId"] for i in course_instances(COURSE)}, {s["id"] for s in course_servers(first, COURSE).values()}
    filled = run_playbook("provision.yml", *args, env=env)
    assert filled.returncode == 0, filled.stdout[-4000:]
    assert sorted(course_servers(second, COURSE)) == SEATS[2:4]
    assert ({i["InstanceId"] for i in course_instances(COURSE)}, {s["id"] for s in course_servers(first, COURSE).values()}) == before
    assert sheet_sites(output) == dict(zip(SEATS, ["iisas"] * 2 + ["cesnet"] * 2 + ["aws-ireland"] * 3, strict=True))


def test_seats_of_a_site_that_is_down_move_to_another_site_for_the_run(
        openstack_site: OpenStackSite, second_site: OpenStackSite, aws_env: dict[str, str],
        run_playbook: Runner, course_catalogue: Callable[..., list[str]], tmp_path: Path) -> None:
    """-e course_site_seats gives cesnet's two seats to iisas for this run (cesnet left out): all 7 seats come up,
    seat 3 and 4 on iisas with their numbers; counts that do not add up are refused before anything is created."""
    first, second = openstack_site, second_site
    second.double.nova_unavailable(10**6, path="/")
    env = {**aws_env, **first.env(EGI_ACCESS_TOKEN="egi-access-token")}
    args = [*course_catalogue(COURSE, multisite_course(first, second, linux_image_id())),
            "-e", "course_openstack_api_retry_delay=1", "-e", "course_skip_sites=cesnet"]
    output = tmp_path / "output" / COURSE

    wrong = run_playbook("provision.yml", *args, "-e", json.dumps({"course_site_seats": {"cesnet": 0, "iisas": 3}}), env=env)
    assert wrong.returncode != 0
    assert ("course_site_seats: with it the sites hold 6 seats (iisas 3, cesnet 0, aws-ireland 3) but the course has 7; "
            "give every site's count so that they add up.") in wrong.stdout, wrong.stdout[-3000:]
    assert not course_servers(first, COURSE) and not course_instances(COURSE)

    # Every site left out: nothing is made, every seat is named missing with its site, and the lock is released.
    nowhere = run_playbook("provision.yml", *args[:-1], "course_skip_sites=cesnet,iisas,aws-ireland", env=env)
    assert nowhere.returncode != 0
    assert re.search(r"7 of 7 seats are missing: multi-training-01: site iisas is left out", nowhere.stdout), nowhere.stdout[-3000:]
    assert not course_servers(first, COURSE) and not course_instances(COURSE)
    assert not (output / "run.lock").exists()

    moved = run_playbook("provision.yml", *args, "-e", json.dumps({"course_site_seats": {"cesnet": 0, "iisas": 4}}), env=env)
    assert moved.returncode == 0, moved.stdout[-4000:]
    servers = course_servers(first, COURSE)
    assert sorted(servers) == SEATS[:4]
    assert [servers[name]["metadata"]["Seat"] for name in SEATS[:4]] == ["1", "2", "3", "4"]
    assert sheet_sites(output) == dict(zip(SEATS, ["iisas"] * 4 + ["aws-ireland"] * 3, strict=True))
    assert not second.double.cloud.servers


def fill_course(first: OpenStackSite, second: OpenStackSite, seats: int) -> dict[str, Any]:
    """Two FedCloud sites that share the class by their free quota (seats: fill)."""
    course = multisite_course(first, second, "")
    course.update(seats=seats, sites=[dict(site, seats="fill") for site in course["sites"][:2]])
    return course


def test_fill_spreads_the_seats_by_free_quota_keeps_them_there_and_refuses_a_class_the_sites_cannot_hold(
        openstack_site: OpenStackSite, second_site: OpenStackSite, run_playbook: Runner,
        course_catalogue: Callable[..., list[str]], tmp_path: Path) -> None:
    """Both sites take seats: fill. With a decoy on each, iisas has room for 4 more machines of the course's flavour
    (instances, cores, RAM and floating IPs all allow 4) and cesnet for 2 (instances): 7 seats are refused before
    anything is created, naming each site's room; 5 seats go 3 and 2 (largest remainder), each site checked and
    priced with its share; a re-run changes nothing; a sixth seat goes where room is left, and no seat placed before
    moves; teardown (which places the seats from sites.json) removes them all and leaves the decoys."""
    first, second = openstack_site, second_site
    with first.cloud.lock:
        first.cloud.quotas.update(instances=5, cores=30, ram=5 * 12288, floatingip=5)
    with second.cloud.lock:
        second.cloud.quotas["instances"] = 3
    decoys = seed_decoy(first), seed_decoy(second)
    env = first.env(EGI_ACCESS_TOKEN="egi-access-token")
    output = tmp_path / "output" / COURSE

    too_many = run_playbook("provision.yml", *course_catalogue(COURSE, fill_course(first, second, 7)), env=env)
    assert too_many.returncode != 0
    assert ("seats: fill: The fill sites have room for 6 more seats (iisas 4, cesnet 2), but 7 are left to place. "
            "Fix: Add a site, ask the sites for more quota, or lower the course's seats.") in too_many.stdout, too_many.stdout[-4000:]
    assert not course_servers(first, COURSE) and not course_servers(second, COURSE)
    assert not (output / "sites.json").exists()

    args = course_catalogue(COURSE, fill_course(first, second, 5))
    made = run_playbook("provision.yml", *args, env=env)
    assert made.returncode == 0, made.stdout[-5000:]
    # The plan priced and checked each site with its share: checked again once the share was known.
    assert "Site iisas: 3 seats" in made.stdout and "Site cesnet: 2 seats" in made.stdout, made.stdout[-5000:]
    assert "cesnet: OpenStack quota: instances: the course needs 2 more (2 seats to create" in made.stdout
    assert sorted(course_servers(first, COURSE)) == SEATS[:3]
    assert sorted(course_servers(second, COURSE)) == SEATS[3:5]
    assert [s["metadata"]["Seat"] for _, s in sorted(course_servers(second, COURSE).items())] == ["4", "5"]
    assert sheet_sites(output) == dict(zip(SEATS[:5], ["iisas"] * 3 + ["cesnet"] * 2, strict=True))
    assert json.loads((output / "sites.json").read_text()) == sheet_sites(output)

    again = run_playbook("provision.yml", *args, env=env)
    assert again.returncode == 0, again.stdout[-5000:]
    assert changed(again.stdout) == 0, recaps(again.stdout)

    before = {name: s["id"] for site in (first, second) for name, s in course_servers(site, COURSE).items()}
    grown = run_playbook("provision.yml", *course_catalogue(COURSE, fill_course(first, second, 6)), env=env)
    assert grown.returncode == 0, grown.stdout[-5000:]
    assert sorted(course_servers(first, COURSE)) == SEATS[:3] + [SEATS[5]]
    assert sorted(course_servers(second, COURSE)) == SEATS[3:5]
    after = {name: s["id"] for site in (first, second) for name, s in course_servers(site, COURSE).items()}
    assert {name: after[name] for name in before} == before

    down = run_playbook("teardown.yml", *args, "-e", f"confirm_teardown={COURSE}", env=env)
    assert down.returncode == 0, down.stdout[-5000:]
    assert not course_servers(first, COURSE) and not course_servers(second, COURSE)
    for site, decoy in zip((first, second), decoys, strict=True):
        assert site.cloud.servers[decoy]["status"] == "ACTIVE"
