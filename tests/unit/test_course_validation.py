"""Bad course files are refused by the real playbook with a message that says what to do.

Each case writes a course file into a temporary catalogue and runs playbooks/plan.yml,
whose first play (course_load.yml) validates the course before anything else runs.
"""

from __future__ import annotations

import copy
import http.server
import threading

import pytest

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


@pytest.mark.parametrize("case", sorted(BAD_COURSES))
def test_bad_course_is_refused_with_a_helpful_message(case, run_playbook, course_catalogue):
    bad, message = BAD_COURSES[case]
    result = run_playbook("plan.yml", *course_catalogue(f"bad-{case.replace('_', '-')}", bad))
    assert result.returncode == 2, result.stdout
    assert one_line(message) in one_line(result.stdout), result.stdout


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
    opted_in = course(access__ssh_cidrs=["0.0.0.0/0"], access__allow_world_ssh=True)
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
