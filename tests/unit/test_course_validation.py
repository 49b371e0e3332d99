"""Bad course files are refused with a message that says what to do.

The checks of plugins/filter/course.py are called directly (milliseconds each) for the
SSH range, date and seat name rules; the older cases write a course file into a temporary
catalogue and run playbooks/plan.yml, whose first play (course_load.yml) validates the
course before anything else runs (tests/provider/test_course_file_guards.py does that for
the newer rules).
"""

from __future__ import annotations

import copy
import http.server
import importlib.util
import threading
from pathlib import Path

import pytest
import yaml

from ansible.errors import AnsibleFilterError

PROJECT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("course_filters", PROJECT / "plugins/filter/course.py")
course_filters = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(course_filters)
SCHEMA = yaml.safe_load((PROJECT / "roles/course/meta/argument_specs.yml").read_text())[
    "argument_specs"]["course_file"]["options"]
PROFILES = {p.stem: yaml.safe_load(p.read_text()) for p in (PROJECT / "inventories/profiles").glob("*.yml")}

GOOD = {
    "description": "test course",
    "provider": "aws",
    "profile": "scipion-1.1",
    "seats": 2,
    "disk_gb": 30,
    "access": {"ssh_cidrs": ["198.51.100.0/24"], "web_cidrs": ["0.0.0.0/0"]},
    "schedule": {"days": 2, "hours_up_per_day": 8, "hours_existing": 48},
    "aws": {"region": "eu-west-1", "instance_type": "g4dn.xlarge", "image_id": "ami-12345678"},
}


def course(**changes) -> dict:
    """GOOD with changes; a dotted key changes a nested field, None deletes it."""
    result = copy.deepcopy(GOOD)
    for dotted, value in changes.items():
        *parents, leaf = dotted.split("__")
        target = result
        for key in parents:
            target = target[key]
        if value is None:
            target.pop(leaf, None)
        else:
            target[leaf] = value
    return result


BAD_COURSES = {
    "missing_field": (course(seats=None), "missing required arguments: seats"),
    "wrong_type": (course(seats="twenty"), "argument 'seats' is of type str and we were unable to convert to int"),
    "seats_zero": (course(seats=0), "seats must be at least 1 (got 0)."),
    "seats_negative": (course(seats=-3), "seats must be at least 1 (got -3)."),
    "seats_too_many": (course(seats=500), "seats must be at most 100 (got 500); split the class"),
    "invalid_cidr": (
        course(access__ssh_cidrs=["10.0.0.300/24"]),
        "access.ssh_cidrs: '10.0.0.300/24' is not a valid network in CIDR notation",
    ),
    "world_ssh_without_opt_in": (
        course(access__ssh_cidrs=["0.0.0.0/0"]),
        "access.ssh_cidrs opens SSH to the whole Internet (0.0.0.0/0). Limit it to your institute's range, "
        "or set access.allow_world_ssh: true",
    ),
    "unknown_provider": (course(provider="azure"), "provider must be one of: aws, openstack, local, got: azure"),
    "unknown_profile": (
        course(profile="scipion-9"),
        "profile 'scipion-9' is unknown; known profiles (inventories/profiles): scipion-1.1, scipion-3.",
    ),
    "bad_region_format": (
        course(aws__region="Ireland"),
        "aws.region 'Ireland' is not an AWS region name; write it like eu-west-1",
    ),
    "profile_var_typo": (
        course(profile_vars={"turbovnc_sever": "tigervnc"}),
        "profile_vars.turbovnc_sever is not a variable of any image role or of the profile; did you mean turbovnc_server?",
    ),
    "disk_too_small": (
        course(disk_gb=8),
        "disk_gb 8 is below the 30 GB that profile scipion-1.1 needs; set disk_gb to 30 or more.",
    ),
    "bad_schedule_hours": (
        course(schedule__hours_up_per_day=30),
        "schedule.hours_up_per_day must be more than 0 and at most 24 (got 30).",
    ),
    "bad_schedule_existing": (
        course(schedule__hours_existing=10),
        "schedule.hours_existing (10) is shorter than the hours the machines are up (2 days x 8 h = 16 h)",
    ),
    "duplicate_seat_names": (
        course(seat_names=["alice", "alice"]),
        "seat_names must be unique; repeated: alice.",
    ),
    "unknown_field": (course(sets=3), "unknown field sets (a typo?); the fields are access, aws, budget_usd"),
    "provider_section_missing": (
        course(aws=None),
        "provider is aws but the course has no 'aws:' section; add one with region and instance_type.",
    ),
    "image_twice": (
        course(aws__image_name="i2pc-*"),
        "aws: give either image_id or image_name, not both.",
    ),
}


def one_line(output: str) -> str:
    return " ".join(output.split())


# Refused by the argument spec (validate_argument_spec in the playbook, with the course
# role's own wording): these need the playbook. The others are the course filters' checks,
# called directly below; tests/provider/test_course_file_guards.py and
# test_no_cloud_call_before_validation take those through the playbook.
SPEC_CASES = {"missing_field", "wrong_type", "unknown_provider", "unknown_field"}


@pytest.mark.parametrize("case", sorted(SPEC_CASES))
def test_bad_course_is_refused_with_a_helpful_message(case, run_playbook, course_catalogue):
    bad, message = BAD_COURSES[case]
    result = run_playbook("plan.yml", *course_catalogue(f"bad-{case.replace('_', '-')}", bad))
    assert result.returncode == 2, result.stdout
    assert one_line(message) in one_line(result.stdout), result.stdout


@pytest.mark.parametrize("case", sorted(set(BAD_COURSES) - SPEC_CASES))
def test_bad_course_is_named_by_the_course_checks(case):
    bad, message = BAD_COURSES[case]
    assert one_line(message) in one_line(" ".join(problems(bad)))


def test_unknown_course_lists_the_known_ones(run_playbook, course_catalogue):
    args = course_catalogue("known", GOOD)
    args[1] = "course=nope"
    result = run_playbook("plan.yml", *args)
    assert result.returncode == 2
    assert "Unknown course nope" in result.stdout
    assert "Known courses: known." in result.stdout


def test_missing_course_says_how_to_name_one(run_playbook):
    result = run_playbook("plan.yml")
    assert result.returncode == 2
    assert "No course given. Known courses: demo, fedcloud, madrid. Run with -e course=NAME" in one_line(result.stdout)


def test_world_ssh_with_explicit_opt_in_passes_validation(run_playbook, course_catalogue):
    opted_in = course(access__ssh_cidrs=["0.0.0.0/0", "0::/0", "10.0.0.0/7", "2000::/3"], access__allow_world_ssh=True)
    result = run_playbook("course_load.yml", *course_catalogue("open", opted_in))
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize("name", ["madrid", "fedcloud", "demo"])
def test_shipped_courses_are_valid(name, run_playbook):
    result = run_playbook("course_load.yml", "-e", f"course={name}")
    assert result.returncode == 0, result.stdout


class _Recorder(http.server.BaseHTTPRequestHandler):
    requests: list[str] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server API)
        self.requests.append(self.path)
        self.send_response(500)
        self.end_headers()

    do_GET = do_POST  # noqa: N815

    def log_message(self, *args) -> None:
        pass


def test_no_cloud_call_before_validation(run_playbook, course_catalogue):
    """A bad course fails in validation: a recording endpoint posing as AWS sees no request."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        env = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{server.server_address[1]}",
               "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x"}
        result = run_playbook("plan.yml", *course_catalogue("bad", course(seats=0)), env=env)
    finally:
        server.shutdown()
    assert result.returncode == 2
    assert "seats must be at least 1" in result.stdout
    assert _Recorder.requests == []


# --- The checks themselves, without a playbook -------------------------------------------


def problems(bad: dict, name: str = "unit") -> list[str]:
    """What the course role would say about a course file (the same two filters, in the same order)."""
    normalised = course_filters.course_normalise(copy.deepcopy(bad), name, SCHEMA)
    return course_filters.course_problems(normalised, name, PROFILES, str(PROJECT / "roles"))


WIDE_SSH = (
    "Narrow it to your institute's range (a /{w} or smaller), or set access.allow_world_ssh: true to accept that risk explicitly."
)
WORLD = ("access.ssh_cidrs opens SSH to the whole Internet ({}). Limit it to your institute's range, "
         "or set access.allow_world_ssh: true to accept that risk explicitly.")
SEAT_RULE = "use only lower-case letters, digits and '-', starting with a letter or digit, at most 63 characters."

REFUSED = {
    "world_ipv6_spelled_long": (course(access__ssh_cidrs=["0::/0"]), [WORLD.format("0::/0")]),
    "world_ipv4_in_two_halves": (course(access__ssh_cidrs=["0.0.0.0/1", "128.0.0.0/1"]), [
        "access.ssh_cidrs: 0.0.0.0/1 opens SSH to 2,147,483,648 addresses (a /1), more than the /8 that an IPv4 SSH "
        "range may cover. " + WIDE_SSH.format(w=8),
        "access.ssh_cidrs: 128.0.0.0/1 opens SSH to 2,147,483,648 addresses (a /1), more than the /8 that an IPv4 SSH "
        "range may cover. " + WIDE_SSH.format(w=8),
    ]),
    "ipv4_wider_than_8": (course(access__ssh_cidrs=["10.0.0.0/7"]), [
        "access.ssh_cidrs: 10.0.0.0/7 opens SSH to 33,554,432 addresses (a /7), more than the /8 that an IPv4 SSH "
        "range may cover. " + WIDE_SSH.format(w=8),
    ]),
    "ipv6_wider_than_32": (course(access__ssh_cidrs=["2000::/3"]), [
        "access.ssh_cidrs: 2000::/3 opens SSH to 2^125 addresses (a /3), more than the /32 that an IPv6 SSH "
        "range may cover. " + WIDE_SSH.format(w=32),
    ]),
    "host_bits_set": (course(access__ssh_cidrs=["150.244.10.7/16"]), [
        "access.ssh_cidrs: '150.244.10.7/16' has host bits set, so it is not a network; write 150.244.0.0/16 for the "
        "whole network, or 150.244.10.7/32 for that one address.",
    ]),
    "host_bits_set_and_too_wide": (course(access__ssh_cidrs=["10.1.2.3/6"]), [
        "access.ssh_cidrs: '10.1.2.3/6' has host bits set, so it is not a network; write 8.0.0.0/6 for the "
        "whole network, or 10.1.2.3/32 for that one address.",
        "access.ssh_cidrs: 10.1.2.3/6 opens SSH to 67,108,864 addresses (a /6), more than the /8 that an IPv4 SSH "
        "range may cover. " + WIDE_SSH.format(w=8),
    ]),
    "web_host_bits_set": (course(access__web_cidrs=["2001:db8::1/64"]), [
        "access.web_cidrs: '2001:db8::1/64' has host bits set, so it is not a network; write 2001:db8::/64 for the "
        "whole network, or 2001:db8::1/128 for that one address.",
    ]),
    "impossible_date": (course(schedule__start_date="2026-02-30"), [
        "schedule.start_date '2026-02-30' is not a real date (day is out of range for month); "
        "write an existing day as YYYY-MM-DD.",
    ]),
    "impossible_month": (course(schedule__start_date="2026-13-01"), [
        "schedule.start_date '2026-13-01' is not a real date (month must be in 1..12); write an existing day as YYYY-MM-DD.",
    ]),
    "date_not_written_yyyy_mm_dd": (course(schedule__start_date="14/02/2026"), [
        "schedule.start_date must be YYYY-MM-DD (got '14/02/2026').",
    ]),
    "seat_names_path_case_and_space": (course(seat_names=["../../etc/x", "Seat_1", "a b"], seats=3), [
        "seat_names: '../../etc/x', 'Seat_1', 'a b' are not valid seat names: " + SEAT_RULE,
    ]),
    "seat_name_too_long": (course(seat_names=["s" * 64, "ok-2"]), [
        f"seat_names: '{'s' * 64}' is not a valid seat name: " + SEAT_RULE,
    ]),
    "seat_name_starting_with_a_dash": (course(seat_names=["-rm", "ok-2"]), [
        "seat_names: '-rm' is not a valid seat name: " + SEAT_RULE,
    ]),
    "name_prefix_characters": (course(name_prefix="Madrid_2026"), [
        "name_prefix 'Madrid_2026' is not a valid name prefix: use only lower-case letters, digits and '-', "
        "starting with a letter or digit (seat names are <name_prefix>-01 and up).",
    ]),
    "name_prefix_path": (course(name_prefix="../x"), [
        "name_prefix '../x' is not a valid name prefix: use only lower-case letters, digits and '-', "
        "starting with a letter or digit (seat names are <name_prefix>-01 and up).",
    ]),
    "name_prefix_too_long": (course(name_prefix="p" * 61), [
        f"name_prefix '{'p' * 61}' is too long: its seat names ({'p' * 61}-02) would have 64 characters, "
        "more than 63; shorten it to at most 60 characters.",
    ]),
    "seat_named_edition": (course(seat_names=["edition", "ok-2"]), [
        "seat_names: 'edition' is reserved (output/<course>/credentials.yml keeps the course's edition under that "
        "name); choose another seat name.",
    ]),
    "zones_and_subnets": (course(aws__availability_zones=["eu-west-1a"], aws__subnet_ids=["subnet-0123456789abcdef0"]), [
        "aws: give either availability_zones or subnet_ids (subnet_id), not both: a subnet already fixes its zone. "
        "List subnets of the zones you want in subnet_ids, or drop the subnets to launch in the zones' default subnets.",
    ]),
    "zones_and_the_single_subnet": (course(aws__availability_zones=["eu-west-1a"], aws__subnet_id="subnet-12345678"), [
        "aws: give either availability_zones or subnet_ids (subnet_id), not both: a subnet already fixes its zone. "
        "List subnets of the zones you want in subnet_ids, or drop the subnets to launch in the zones' default subnets.",
    ]),
    "subnet_id_and_other_subnet_ids": (course(aws__subnet_id="subnet-12345678",
                                              aws__subnet_ids=["subnet-87654321", "subnet-12345678"]), [
        "aws: give either subnet_id or subnet_ids, not both (subnet_id is the one-subnet form of subnet_ids).",
    ]),
    "zone_of_another_region": (course(aws__availability_zones=["eu-west-1b", "us-east-1a", "eu-west-10a", "euw1-az1"]), [
        "aws.availability_zones: 'us-east-1a', 'eu-west-10a', 'euw1-az1' are not zones of region eu-west-1: a zone's "
        "name is the region's name and a letter (like eu-west-1a). Name zones of eu-west-1, or change aws.region.",
    ]),
    "zone_named_as_the_region": (course(aws__availability_zones=["eu-west-1"]), [
        "aws.availability_zones: 'eu-west-1' is not a zone of region eu-west-1: a zone's name is the region's name "
        "and a letter (like eu-west-1a). Name zones of eu-west-1, or change aws.region.",
    ]),
    "zone_twice": (course(aws__availability_zones=["eu-west-1a", "eu-west-1b", "eu-west-1a"]), [
        "aws.availability_zones lists eu-west-1a more than once; list each once, in order of preference.",
    ]),
    "subnet_twice": (course(aws__subnet_ids=["subnet-12345678", "subnet-12345678"]), [
        "aws.subnet_ids lists subnet-12345678 more than once; list each once, in order of preference.",
    ]),
    "subnet_not_an_id": (course(aws__subnet_ids=["subnet-12345678", "my-subnet"]), [
        "aws.subnet_ids (subnet_id): 'my-subnet' is not a subnet id; write them as AWS shows them, "
        "like subnet-0123456789abcdef0.",
    ]),
    "fallback_type_twice": (course(aws__fallback_instance_types=["g5.xlarge", "g6.xlarge", "g5.xlarge"]), [
        "aws.fallback_instance_types lists g5.xlarge more than once; list each once, in order of preference.",
    ]),
    "instance_type_names": (course(aws__instance_type="G4dn.xlarge",
                                   aws__fallback_instance_types=["g5-xlarge", "g6.xlarge ", "g5.xlarge"]), [
        "aws.instance_type: 'G4dn.xlarge' is not an EC2 instance type name; write it like g4dn.xlarge (family, a dot, "
        "the size, in lower case).",
        "aws.fallback_instance_types: 'g5-xlarge' is not an EC2 instance type name; write it like g4dn.xlarge (family, "
        "a dot, the size, in lower case).",
        "aws.fallback_instance_types: 'g6.xlarge ' is not an EC2 instance type name; write it like g4dn.xlarge (family, "
        "a dot, the size, in lower case).",
    ]),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_new_rule_refuses_with_its_exact_message(case: str) -> None:
    bad, messages = REFUSED[case]
    assert problems(bad) == messages


ACCEPTED = {
    "ipv4_slash_8": course(access__ssh_cidrs=["10.0.0.0/8"]),
    "ipv6_slash_32": course(access__ssh_cidrs=["2001:db8::/32"]),
    "one_address": course(access__ssh_cidrs=["150.244.10.7/32", "2001:db8::7/128"]),
    "wide_with_opt_in": course(access__ssh_cidrs=["0::/0", "0.0.0.0/1", "128.0.0.0/1", "10.0.0.0/7", "2000::/3"],
                               access__allow_world_ssh=True),
    "real_date": course(schedule__start_date="2028-02-29"),
    "plain_seat_names": course(seat_names=["alice", "bob-2"]),
    "longest_seat_name": course(seat_names=["s" * 63, "t" * 63]),
    "longest_name_prefix": course(name_prefix="p" * 60),
    "zones_of_the_region": course(aws__availability_zones=["eu-west-1c", "eu-west-1a", "eu-west-1-lhr-1a"]),
    "subnets": course(aws__subnet_ids=["subnet-0123456789abcdef0", "subnet-12345678"]),
    "subnet_id_first_of_subnet_ids": course(aws__subnet_id="subnet-12345678",
                                            aws__subnet_ids=["subnet-12345678", "subnet-87654321"]),
    "fallback_equal_to_the_main_type": course(aws__fallback_instance_types=["g4dn.xlarge", "g5.xlarge"]),
    "unusual_type_names": course(aws__instance_type="u-6tb1.metal",
                                 aws__fallback_instance_types=["c7i-flex.large", "r8g.metal-24xl"]),
}


@pytest.mark.parametrize("case", sorted(ACCEPTED))
def test_within_the_rules_passes(case: str) -> None:
    assert problems(ACCEPTED[case]) == []


def aws_choices(**changes) -> dict:
    """placements and instance_types of the normalised course GOOD with changes."""
    aws = course_filters.course_normalise(course(**changes), "unit", SCHEMA)["aws"]
    return {"placements": aws["placements"], "instance_types": aws["instance_types"]}


NO_PLACE = {"subnet_id": "", "availability_zone": ""}

CHOICES = {
    "none_given_the_region_picks": ({}, {"placements": [NO_PLACE], "instance_types": ["g4dn.xlarge"]}),
    "the_single_subnet": ({"aws__subnet_id": "subnet-12345678"}, {
        "placements": [{"subnet_id": "subnet-12345678", "availability_zone": ""}], "instance_types": ["g4dn.xlarge"]}),
    "subnets_in_order": ({"aws__subnet_ids": ["subnet-87654321", "subnet-12345678"]}, {
        "placements": [{"subnet_id": "subnet-87654321", "availability_zone": ""},
                       {"subnet_id": "subnet-12345678", "availability_zone": ""}],
        "instance_types": ["g4dn.xlarge"]}),
    "zones_in_order": ({"aws__availability_zones": ["eu-west-1c", "eu-west-1a"]}, {
        "placements": [{"subnet_id": "", "availability_zone": "eu-west-1c"},
                       {"subnet_id": "", "availability_zone": "eu-west-1a"}],
        "instance_types": ["g4dn.xlarge"]}),
    "fallbacks_after_the_main_type_which_is_not_repeated": (
        {"aws__fallback_instance_types": ["g5.xlarge", "g4dn.xlarge", "g6.xlarge"]},
        {"placements": [NO_PLACE], "instance_types": ["g4dn.xlarge", "g5.xlarge", "g6.xlarge"]}),
}


@pytest.mark.parametrize("case", sorted(CHOICES))
def test_aws_choices_are_normalised_in_order_of_preference(case: str) -> None:
    changes, expected = CHOICES[case]
    assert aws_choices(**changes) == expected


def test_subnet_ids_keep_their_first_subnet_as_subnet_id() -> None:
    """The course's VPC is the first subnet's: subnet_id names it whichever way the subnets were given."""
    normalised = course_filters.course_normalise(course(aws__subnet_ids=["subnet-87654321", "subnet-12345678"]),
                                                 "unit", SCHEMA)["aws"]
    assert normalised["subnet_id"] == "subnet-87654321"
    assert normalised["subnet_ids"] == ["subnet-87654321", "subnet-12345678"]


def test_a_course_of_another_provider_gets_no_aws_section() -> None:
    local = course(provider="local", aws=None, profile="scipion-3", disk_gb=40)
    assert course_filters.course_normalise(local, "unit", SCHEMA)["aws"] is None


def test_shipped_course_files_pass_the_checks() -> None:
    for path in sorted((PROJECT / "inventories/courses").glob("*.yml")):
        parsed = course_filters.course_file_parse(path.read_text(), str(path))
        assert problems(parsed, path.stem) == [], path


def test_the_course_file_keeps_dates_as_text() -> None:
    """Unquoted dates are text for the checks: an impossible one is named, not a YAML parser failure."""
    parsed = course_filters.course_file_parse("schedule:\n  start_date: 2026-02-30\n  other: 2026-02-14\nseats: 3\n")
    assert parsed == {"schedule": {"start_date": "2026-02-30", "other": "2026-02-14"}, "seats": 3}


def test_the_course_file_must_be_yaml() -> None:
    with pytest.raises(AnsibleFilterError, match="^x.yml is not valid YAML: "):
        course_filters.course_file_parse("seats: [3\n", "x.yml")
