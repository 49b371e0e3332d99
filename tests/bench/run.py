"""`make bench`: run every registered benchmark once, write output/bench/results.json, print a table.

A benchmark is a function in BENCHMARKS returning a dict of named measurements. Numbers
from one run are compared as ratios inside that run (machines are shared and noisy): the
absolute seconds say little across runs or machines, the ratios are the result.

aws_fleet_vs_loop: wall-clock seconds of ansible-playbook launching N seats (N = 10, 40)
against a local moto server, (a) with our i2pc.scipion_cloud.ec2_course_fleet module
(tests/bench/playbooks/fleet.yml) and (b) with amazon.aws.ec2_instance in a loop, one
iteration per seat (tests/bench/playbooks/loop.yml), each from an empty moto state; then
the same playbook again with nothing to change (the convergence re-run). It raises when a
playbook fails, when a re-run changes something, or when moto does not end with exactly N
running instances of the bench course with the seats' settings.

aws_throttling: wall-clock seconds of fleet.yml launching 40 seats through the fault proxy
(tests/fault_proxy) in front of moto, once with no fault (clean) and once with 10 % of all
AWS calls answered with EC2's throttling error (RequestLimitExceeded, HTTP 503; seeded, so
the same calls are throttled in every bench run), each from an empty moto state.
aws_throttled_ratio_40 is throttled / clean; the goal is at most 2.0. It raises when a run
fails, when it was not throttled at all, or when moto does not end with exactly 40
machines of the course (in any state: none launched twice) with the seats' settings.

multisite: wall-clock seconds of playbooks/provision.yml provisioning one 30-seat course over
three sites at once (multisite_30_s): 10 seats on each of two OpenStack API doubles
(tests/openstack_double, EGI token login, quotas raised so that 10 GPU servers fit) and 10
in a moto region; then of each site's 10 seats alone, as a single-site course
(single_site_a_s, single_site_b_s, single_site_aws_s). Every run starts from empty
sites (doubles and moto reset, a fresh course output); the 3-site run goes first, so any
cold-start cost counts against it. multisite_ratio_30 is multisite_30_s / the sum of the
three single-site seconds (sites are worked on side by side); the goal is at most 0.6. It
raises when a run fails or when a site does not end with exactly its seats (servers of the
course ACTIVE on each double, instances running in moto) and nothing else.

`python tests/bench/run.py NAME...` runs only the named benchmarks (results.json then
holds only those).
"""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import yaml

PROJECT = Path(__file__).resolve().parents[2]
OUTPUT = PROJECT / "output" / "bench" / "results.json"
PLAYBOOKS = Path(__file__).resolve().parent / "playbooks"
VENV_BIN = Path(sys.executable).parent

REGION = "eu-west-1"
COURSE = "bench"
SEAT_COUNTS = (10, 40)
THROTTLED_SEATS = 40
THROTTLED_PERCENT = 10
THROTTLED_SEED = 40
THROTTLED_GOAL = 2.0
THROTTLED_RATIO = f"aws_throttled_ratio_{THROTTLED_SEATS}"  # throttled seconds / clean seconds
MULTISITE_SITE_SEATS = 10  # seats on each of the three sites
MULTISITE_SEATS = 3 * MULTISITE_SITE_SEATS
MULTISITE_GOAL = 0.6
MULTISITE_RATIO = f"multisite_ratio_{MULTISITE_SEATS}"  # 3-site seconds / the three single-site seconds summed
MULTISITE_FLAVOR = "g1.c06r12"  # the doubles' GPU flavour
# The moto server and settings the AWS tests use, and the environment of their playbook runs (tests/conftest.py).
sys.path.insert(0, str(PROJECT / "tests"))
from conftest import moto_process, moto_settings, playbook_env, reset_moto  # noqa: E402

RECAP_RE = re.compile(r"^localhost\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


class BenchError(RuntimeError):
    """The bench did not measure what it claims to measure."""


def aws_env(url: str) -> dict[str, str]:
    """The settings of tests/conftest.py's aws_env fixture: boto3 and Ansible talk to moto only."""
    return moto_settings(url, REGION)


def ec2_client(url: str) -> Any:
    import boto3  # the bench's only boto3 use; keeps `import run` cheap for the unit test

    env = aws_env(url)
    return boto3.client("ec2", region_name=REGION, endpoint_url=url, aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])


def stock_image(ec2: Any) -> dict[str, str]:
    """One of moto's stock amzn2 AMIs (with a root device); its id survives a reset."""
    images = ec2.describe_images(Owners=["amazon"], Filters=[{"Name": "name", "Values": ["amzn2-ami-hvm-*"]}])["Images"]
    images = sorted((i for i in images if i.get("RootDeviceName")), key=lambda i: i["ImageId"])
    if not images:
        raise BenchError("moto has no amzn2 AMI with a root device")
    return {"bench_image_id": images[0]["ImageId"], "bench_root_device": images[0]["RootDeviceName"]}


def prerequisites(ec2: Any, image: dict[str, str]) -> dict[str, Any]:
    """What a course needs before its seats (made by the course_aws role in real use): subnet, group, key."""
    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]},
                                            {"Name": "default-for-az", "Values": ["true"]}])["Subnets"]
    subnet = sorted(subnets, key=lambda s: s["AvailabilityZone"])[0]["SubnetId"]
    group = ec2.create_security_group(GroupName=f"{COURSE}-seats", Description="bench seats", VpcId=vpc)["GroupId"]
    ec2.create_key_pair(KeyName=f"{COURSE}-key")
    return {"bench_course": COURSE, "bench_region": REGION, "bench_subnet_id": subnet, "bench_sg_id": group,
            "bench_key_name": f"{COURSE}-key", **image}


def play(url: str, playbook: str, extra_vars: dict[str, Any]) -> tuple[float, dict[str, int]]:
    """Run a playbook of tests/bench/playbooks from the project root; wall-clock seconds and the recap."""
    env = dict(os.environ)
    env.update(
        ANSIBLE_CONFIG=str(PROJECT / "ansible.cfg"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        PATH=f"{VENV_BIN}:{env.get('PATH', '')}",
        **aws_env(url),
    )
    cmd = [str(VENV_BIN / "ansible-playbook"), str(PLAYBOOKS / playbook), "-e", json.dumps(extra_vars)]
    start = time.monotonic()
    proc = subprocess.run(cmd, cwd=PROJECT, env=env, text=True, timeout=600,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    seconds = time.monotonic() - start
    found = RECAP_RE.findall(proc.stdout)
    if proc.returncode != 0 or not found:
        raise BenchError(f"{playbook} failed (exit {proc.returncode}):\n{proc.stdout[-4000:]}")
    ok, changed, unreachable, failed = (int(v) for v in found[-1])
    return seconds, {"ok": ok, "changed": changed, "unreachable": unreachable, "failed": failed}


def check_seats(ec2: Any, seats: int, settings: dict[str, Any], label: str) -> None:
    """Moto holds exactly `seats` live instances of the bench course, all running, launched as a seat is."""
    filters = [{"Name": "tag:Course", "Values": [COURSE]}, {"Name": "tag:ManagedBy", "Values": ["scipion_cloud"]},
               {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]}]
    found = [i for page in ec2.get_paginator("describe_instances").paginate(Filters=filters)
             for r in page["Reservations"] for i in r["Instances"]]
    running = [i for i in found if i["State"]["Name"] == "running"]
    if len(found) != seats or len(running) != seats:
        raise BenchError(f"{label}: wanted exactly {seats} running instances of course {COURSE}, "
                         f"moto has {len(found)} live, {len(running)} running")
    names = sorted({t["Value"] for i in found for t in i.get("Tags", []) if t["Key"] == "Name"})
    wanted = [f"{COURSE}-training-{n:02d}" for n in range(1, seats + 1)]
    if names != wanted:
        raise BenchError(f"{label}: seat names {names} are not {wanted}")
    for inst in found:
        wrong = {
            "image": inst["ImageId"] != settings["bench_image_id"],
            "subnet": inst.get("SubnetId") != settings["bench_subnet_id"],
            # The primary interface's groups: moto leaves the instance's own list empty when the
            # groups come with NetworkInterfaces (as ec2_course_fleet sends them).
            "group": [g["GroupId"] for g in inst["NetworkInterfaces"][0]["Groups"]] != [settings["bench_sg_id"]],
            "key": inst.get("KeyName") != settings["bench_key_name"],
            "IMDSv2": inst.get("MetadataOptions", {}).get("HttpTokens") != "required",
            "public address": not inst.get("PublicIpAddress"),
        }
        if any(wrong.values()):
            raise BenchError(f"{label}: {inst['InstanceId']} differs from a seat in {[k for k, v in wrong.items() if v]}")
    volumes = ec2.describe_volumes(Filters=[{"Name": "tag:Course", "Values": [COURSE]}])["Volumes"]
    good = [v for v in volumes if v["Encrypted"] and v["VolumeType"] == "gp3" and v["Size"] == 30]
    if len(volumes) != seats or len(good) != seats:
        raise BenchError(f"{label}: wanted {seats} encrypted 30 GB gp3 volumes tagged with the course, "
                         f"moto has {len(volumes)} tagged, {len(good)} of them right")
    for inst in (found[0], found[-1]):
        data = ec2.describe_instance_attribute(InstanceId=inst["InstanceId"], Attribute="userData")["UserData"]
        if not data.get("Value"):
            raise BenchError(f"{label}: {inst['InstanceId']} has no user data")


def aws_fleet_vs_loop() -> dict[str, float]:
    """(a) ec2_course_fleet vs (b) ec2_instance in a loop, launching N seats, then re-run with nothing to do."""
    results: dict[str, float] = {}
    with moto_process() as url:
        ec2 = ec2_client(url)
        reset_moto(url)
        image = stock_image(ec2)
        for seats in SEAT_COUNTS:
            for way, playbook in (("fleet", "fleet.yml"), ("loop", "loop.yml")):
                reset_moto(url)
                settings = {**prerequisites(ec2, image), "bench_seats": seats}
                label = f"{way} {seats}"
                seconds, recap = play(url, playbook, settings)
                if recap["changed"] == 0:
                    raise BenchError(f"{label}: the first run changed nothing")
                check_seats(ec2, seats, settings, label)
                results[f"{way}_{seats}_s"] = seconds
                seconds, recap = play(url, playbook, settings)
                if recap["changed"] != 0:
                    raise BenchError(f"{label}: the re-run changed something ({recap})")
                check_seats(ec2, seats, settings, f"{label} re-run")
                results[f"{way}_rerun_{seats}_s"] = seconds
                print(f"  aws_fleet_vs_loop: {label} seats {results[f'{way}_{seats}_s']:.1f} s, "
                      f"re-run {seconds:.1f} s", file=sys.stderr, flush=True)
            results[f"loop_over_fleet_{seats}"] = results[f"loop_{seats}_s"] / results[f"fleet_{seats}_s"]
            results[f"loop_over_fleet_rerun_{seats}"] = results[f"loop_rerun_{seats}_s"] / results[f"fleet_rerun_{seats}_s"]
    return results


def check_launched_once(ec2: Any, seats: int, label: str) -> None:
    """Moto holds exactly `seats` machines of the bench course in any state: no seat was launched twice."""
    filters = [{"Name": "tag:Course", "Values": [COURSE]}]
    found = [i for page in ec2.get_paginator("describe_instances").paginate(Filters=filters)
             for r in page["Reservations"] for i in r["Instances"]]
    if len(found) != seats:
        raise BenchError(f"{label}: {len(found)} machines were launched for {seats} seats")


def aws_throttling() -> dict[str, float]:
    """fleet.yml, 40 seats, through the fault proxy: clean, then with 10 % of the AWS calls throttled."""
    import tempfile

    from fault_proxy import FaultProxy

    results: dict[str, float] = {}
    with moto_process() as url, tempfile.TemporaryDirectory() as scratch:
        ec2 = ec2_client(url)
        reset_moto(url)
        image = stock_image(ec2)
        for way, rules in (("clean", []), ("throttled", [{"throttle": {"percent": THROTTLED_PERCENT, "actions": "all"}}])):
            reset_moto(url)
            settings = {**prerequisites(ec2, image), "bench_seats": THROTTLED_SEATS}
            label = f"{way} {THROTTLED_SEATS}"
            # A proxy per run: its ClientToken memory must not outlive moto's state.
            with FaultProxy(url, Path(scratch) / f"{way}.yml") as proxy:
                proxy.set_rules(rules, seed=THROTTLED_SEED)
                seconds, recap = play(proxy.url, "fleet.yml", settings)
                throttled = len(proxy.find(code="RequestLimitExceeded"))
                calls = len(proxy.find())
            if recap["changed"] == 0:
                raise BenchError(f"{label}: the run changed nothing")
            if rules and not throttled:
                raise BenchError(f"{label}: no call was throttled")
            check_seats(ec2, THROTTLED_SEATS, settings, label)
            check_launched_once(ec2, THROTTLED_SEATS, label)
            results[f"{way}_{THROTTLED_SEATS}_s"] = seconds
            results[f"{way}_{THROTTLED_SEATS}_calls"] = calls
            results[f"{way}_{THROTTLED_SEATS}_throttled_calls"] = throttled
            print(f"  aws_throttling: {label} seats {seconds:.1f} s, {calls} calls, {throttled} throttled",
                  file=sys.stderr, flush=True)
    ratio = results[f"throttled_{THROTTLED_SEATS}_s"] / results[f"clean_{THROTTLED_SEATS}_s"]
    results[THROTTLED_RATIO] = ratio
    if ratio > THROTTLED_GOAL:
        print(f"  aws_throttling: ratio {ratio:.2f} is over the goal of {THROTTLED_GOAL}", file=sys.stderr, flush=True)
    return results


def fedcloud_section(double: Any, site: str) -> dict[str, Any]:
    """The openstack section of a FedCloud site on a double, reached with the EGI Check-in token."""
    return {"cloud": "IISAS-FedCloud-cloud", "image": "scipion-1.1-course", "flavor": MULTISITE_FLAVOR, "site": site,
            "vo": "training.egi.eu", "auth_url": double.auth_url, "project_id": double.cloud.project_id}


def bench_course_file(seats: int, **placement: Any) -> dict[str, Any]:
    """A course of `seats` GPU seats; `placement` is its provider and section, or its sites."""
    return {"description": "Bench course", "profile": "scipion-3", "seats": seats,
            "tags": {"UserName": "i2pc-training"},
            "access": {"ssh_cidrs": ["198.18.0.0/15"], "web_cidrs": ["0.0.0.0/0"]},
            "schedule": {"days": 2, "hours_up_per_day": 8}, **placement}


def empty_sites(moto_url: str, doubles: list[Any]) -> None:
    """Every site as a new course finds it; each double's quota holds exactly one site's seats of the GPU flavour."""
    reset_moto(moto_url)
    for double in doubles:
        cloud = double.reset()
        with cloud.lock:
            flavor = next(f for f in cloud.flavors.values() if f["name"] == MULTISITE_FLAVOR)
            cloud.quotas.update(instances=MULTISITE_SITE_SEATS, cores=MULTISITE_SITE_SEATS * flavor["vcpus"],
                                ram=MULTISITE_SITE_SEATS * flavor["ram"], floatingip=MULTISITE_SITE_SEATS)


def provision(course: str, course_file: dict[str, Any], scratch: Path, env: dict[str, str]) -> float:
    """Wall-clock seconds of playbooks/provision.yml for a course written to its own catalogue and output."""
    catalogue = scratch / course / "courses"
    catalogue.mkdir(parents=True)
    (catalogue / f"{course}.yml").write_text(yaml.safe_dump(course_file, sort_keys=False))
    cmd = [str(VENV_BIN / "ansible-playbook"), "playbooks/provision.yml", "-e", f"course={course}",
           "-e", f"course_catalogue_dir={catalogue}", "-e", f"course_output_root={scratch / course / 'output'}",
           # A site that answers 503 is retried a second later, not ten (the doubles do not fail here).
           "-e", "course_openstack_api_retry_delay=1"]
    start = time.monotonic()
    proc = subprocess.run(cmd, cwd=PROJECT, env=playbook_env(env), text=True, timeout=1800,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    seconds = time.monotonic() - start
    if proc.returncode != 0:
        raise BenchError(f"provision of {course} failed (exit {proc.returncode}):\n{proc.stdout[-4000:]}")
    return seconds


def check_sites(course: str, wanted: dict[str, list[int]], doubles: dict[str, Any], ec2: Any) -> None:
    """Each site holds exactly the wanted seats (by number) of the course, up, and no other machine."""
    for label, double in doubles.items():
        with double.cloud.lock:
            servers = list(double.cloud.servers.values())
        names = sorted(s["name"] for s in servers if s["metadata"].get("Course") == course and s["status"] == "ACTIVE")
        expected = [f"{course}-training-{n:02d}" for n in wanted.get(label, [])]
        if names != expected or len(servers) != len(expected):
            raise BenchError(f"{course}: double {label} should hold exactly the ACTIVE servers {expected}; it has "
                             f"{sorted((s['name'], s['status'], s['metadata'].get('Course')) for s in servers)}")
    filters = [{"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]}]
    live = [i for page in ec2.get_paginator("describe_instances").paginate(Filters=filters)
            for r in page["Reservations"] for i in r["Instances"]]

    def tag(inst: dict[str, Any], key: str) -> str | None:
        return next((t["Value"] for t in inst.get("Tags", []) if t["Key"] == key), None)

    names = sorted(tag(i, "Name") or i["InstanceId"] for i in live
                   if tag(i, "Course") == course and i["State"]["Name"] == "running")
    expected = [f"{course}-training-{n:02d}" for n in wanted.get("aws", [])]
    if names != expected or len(live) != len(expected):
        raise BenchError(f"{course}: moto should hold exactly the running instances {expected}; it has "
                         f"{sorted((tag(i, 'Name'), i['State']['Name'], tag(i, 'Course')) for i in live)}")


def multisite() -> dict[str, float]:
    """A 30-seat course over two doubles and one moto region, against each site's 10 seats alone."""
    import tempfile

    from openstack_double import OpenStackDouble

    results: dict[str, float] = {}
    doubles = {"a": OpenStackDouble().start(), "b": OpenStackDouble().start()}
    try:
        with moto_process() as url, tempfile.TemporaryDirectory() as scratch_dir:
            scratch = Path(scratch_dir)
            ec2 = ec2_client(url)
            reset_moto(url)
            image_id = stock_image(ec2)["bench_image_id"]
            # No organiser clouds.yaml: the EGI token login writes the course's own.
            clouds = scratch / "clouds.yaml"
            clouds.write_text("clouds: {}\n")
            env = {**aws_env(url), "OS_CLIENT_CONFIG_FILE": str(clouds), "EGI_ACCESS_TOKEN": "egi-access-token",
                   "OS_ACCESS_TOKEN": "", "OIDC_ACCESS_TOKEN": ""}
            sections = {
                "a": {"provider": "openstack", "openstack": fedcloud_section(doubles["a"], "IISAS-FedCloud")},
                "b": {"provider": "openstack", "openstack": fedcloud_section(doubles["b"], "CESNET-MCC")},
                "aws": {"provider": "aws", "aws": {"region": REGION, "instance_type": "g4dn.xlarge", "image_id": image_id}},
            }
            seats = list(range(1, MULTISITE_SITE_SEATS + 1))
            sites = [{"name": f"site-{label}", "seats": MULTISITE_SITE_SEATS, **section}
                     for label, section in sections.items()]
            # Seat numbers are the whole course's: site a holds 1-10, b 11-20, aws 21-30.
            runs = [(f"multisite_{MULTISITE_SEATS}_s", "benchmulti", bench_course_file(MULTISITE_SEATS, sites=sites),
                     {label: [n + i * MULTISITE_SITE_SEATS for n in seats] for i, label in enumerate(sections)})]
            runs += [(f"single_site_{label}_s", f"bench{label}", bench_course_file(MULTISITE_SITE_SEATS, **section),
                      {label: seats}) for label, section in sections.items()]
            for measure, course, course_file, wanted in runs:
                empty_sites(url, list(doubles.values()))
                seconds = provision(course, course_file, scratch, env)
                check_sites(course, wanted, doubles, ec2)
                results[measure] = seconds
                print(f"  multisite: {course} ({', '.join(f'{k} {len(v)}' for k, v in wanted.items())} seats) "
                      f"{seconds:.1f} s", file=sys.stderr, flush=True)
    finally:
        for double in doubles.values():
            double.stop()
    single = sum(results[f"single_site_{label}_s"] for label in ("a", "b", "aws"))
    ratio = results[f"multisite_{MULTISITE_SEATS}_s"] / single
    results[MULTISITE_RATIO] = ratio
    if ratio > MULTISITE_GOAL:
        print(f"  multisite: ratio {ratio:.2f} is over the goal of {MULTISITE_GOAL}", file=sys.stderr, flush=True)
    return results


BENCHMARKS: dict[str, Callable[[], dict[str, float]]] = {
    "aws_fleet_vs_loop": aws_fleet_vs_loop,
    "aws_throttling": aws_throttling,
    "multisite": multisite,
}


def main(names: list[str]) -> None:
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        raise SystemExit(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
    selected = {name: bench for name, bench in BENCHMARKS.items() if not names or name in names}
    results = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "benchmarks": {name: bench() for name, bench in selected.items()},
    }
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(json.dumps(results, indent=2) + "\n")
    print(f"{'benchmark':40} {'measure':30} {'value':>12}")
    for name, measures in results["benchmarks"].items():
        for measure, value in measures.items():
            print(f"{name:40} {measure:30} {value:12.3f}")
    if not BENCHMARKS:
        print("(no benchmarks registered yet)")
    print(f"results: {OUTPUT.relative_to(PROJECT)}")


if __name__ == "__main__":
    main(sys.argv[1:])
