"""The plan report's filters: check lines (passed, failed, not run), the final refusal, the resources with
fallback types and placements, and where a course's machines are."""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(PROJECT / "collections"))

from ansible_collections.i2pc.scipion_cloud.plugins.filter import plan  # noqa: E402

NO_CREDENTIALS = {"name": "credentials", "ok": False, "detail": "No usable AWS credentials were found.",
                  "fix": "Set AWS_PROFILE."}
NOT_RUN_FIX = "Make the credentials work (see the credentials check), then run again."


def unrun(name: str, fix: str = NOT_RUN_FIX) -> dict[str, Any]:
    return {"name": name, "ok": False, "not_run": True, "detail": "not run: no credentials (set AWS_PROFILE).",
            "fix": fix}


CHECKS = [
    NO_CREDENTIALS,
    unrun("image"),
    {"name": "GPU and driver", "ok": True, "detail": "driver branch 470 drives the T4.", "fix": ""},
    {"name": "fallback instance type p2.xlarge", "ok": False, "detail": "Relion cannot run on the K80.",
     "fix": "Remove p2.xlarge from aws.fallback_instance_types."},
    unrun("vCPU quota"),
    unrun("OpenStack flavour", "Make the login work."),
]


def test_lines_mark_passed_failed_and_not_run_checks() -> None:
    assert plan.course_preflight_lines(CHECKS) == [
        "[FAIL] credentials: No usable AWS credentials were found. Fix: Set AWS_PROFILE.",
        "[--]   image: not run: no credentials (set AWS_PROFILE).",
        "[ok]   GPU and driver: driver branch 470 drives the T4.",
        "[FAIL] fallback instance type p2.xlarge: Relion cannot run on the K80. Fix: Remove p2.xlarge from "
        "aws.fallback_instance_types.",
        "[--]   vCPU quota: not run: no credentials (set AWS_PROFILE).",
        "[--]   OpenStack flavour: not run: no credentials (set AWS_PROFILE).",
    ]


def test_refusal_names_failed_checks_then_unrun_ones_grouped_by_fix_then_the_budget() -> None:
    estimate = {"error": None, "budget": {"ok": False, "message": "366.28 $ exceeds the budget of 300.00 $."}}
    assert plan.course_plan_refusal(CHECKS, "madrid", estimate) == (
        "Plan refused course madrid before creating anything; 5 to fix: "
        "(1) credentials: No usable AWS credentials were found. Fix: Set AWS_PROFILE. "
        "(2) fallback instance type p2.xlarge: Relion cannot run on the K80. Fix: Remove p2.xlarge from "
        "aws.fallback_instance_types. "
        f"(3) not run: image, vCPU quota. Fix: {NOT_RUN_FIX} "
        "(4) not run: OpenStack flavour. Fix: Make the login work. "
        "(5) budget: 366.28 $ exceeds the budget of 300.00 $."
    )


def test_refusal_names_a_course_the_table_cannot_price_and_is_empty_when_all_is_well() -> None:
    passed = [CHECKS[2]]
    assert plan.course_plan_refusal(passed, "c", {"error": "no price for g6.xlarge.", "budget": None}) == (
        "Plan refused course c before creating anything; 1 to fix: (1) cost estimate: no price for g6.xlarge.")
    assert plan.course_plan_refusal(passed, "c", {"error": None, "budget": {"ok": True, "message": "fits"}}) == ""
    assert plan.course_plan_refusal([], "c") == ""
    # The provider roles' own refusal (OpenStack create.yml) keeps its wording.
    assert plan.course_preflight_refusal(CHECKS[:2], "c") == (
        "Preflight refused course c before creating anything. credentials: No usable AWS credentials were found. "
        f"Fix: Set AWS_PROFILE. | not run: image. Fix: {NOT_RUN_FIX}")


AWS_COURSE: dict[str, Any] = {
    "name": "madrid", "provider": "aws", "profile": "scipion-1.1", "seats": 2, "disk_gb": 30,
    "seat_names": ["madrid-training-01", "madrid-training-02"], "tags": {},
    "access": {"ssh_cidrs": ["10.0.0.0/8"], "web_cidrs": ["0.0.0.0/0"]},
    "aws": {"region": "eu-west-1", "instance_type": "g4dn.xlarge", "image_name": "course*", "image_owners": ["self"],
            "elastic_ips": False, "spot": False},
}


def aws_course(**aws: Any) -> dict[str, Any]:
    course = copy.deepcopy(AWS_COURSE)
    course["aws"].update(aws)
    return course


def resource_lines(course: dict[str, Any]) -> list[str]:
    return [line for line in plan.course_plan_resources(course) if line.startswith(("Instance", "Placements"))]


def test_resources_list_the_fallback_types_and_zones_in_order() -> None:
    course = aws_course(instance_types=["g4dn.xlarge", "g5.xlarge", "p4d.24xlarge"],
                        placements=[{"subnet_id": "", "availability_zone": "eu-west-1c"},
                                    {"subnet_id": "", "availability_zone": "eu-west-1a"}])
    assert resource_lines(course) == [
        "Instances: 2 x g4dn.xlarge (on-demand), image newest AMI named course* owned by self, encrypted gp3 root "
        "volume 30 GB each, default VPC",
        "Instance types, in order: g4dn.xlarge, g5.xlarge, p4d.24xlarge (a fallback is tried for a seat when the types "
        "before it have no capacity)",
        "Placements, in order: zone eu-west-1c, zone eu-west-1a",
    ]


def test_resources_with_subnets_with_no_placement_and_from_an_older_course_spec() -> None:
    subnets = aws_course(placements=[{"subnet_id": "subnet-b", "availability_zone": ""},
                                     {"subnet_id": "subnet-a", "availability_zone": ""}])
    assert resource_lines(subnets)[0].endswith("encrypted gp3 root volume 30 GB each")
    assert resource_lines(subnets)[1:] == ["Placements, in order: subnet subnet-b, subnet subnet-a"]
    region_picks = aws_course(instance_types=["g4dn.xlarge"], placements=[{"subnet_id": "", "availability_zone": ""}])
    assert resource_lines(region_picks)[1:] == ["Placements: any zone of eu-west-1 (AWS picks)"]
    # A course spec without placements (before the field existed) gives its single subnet_id.
    assert resource_lines(aws_course(subnet_id="subnet-1"))[1:] == ["Placements, in order: subnet subnet-1"]
    assert plan.course_placements({"subnet_id": None}) == []


def test_seat_lines_say_where_the_machines_are_or_why_not() -> None:
    assert plan.course_seat_lines(None, AWS_COURSE) == []
    assert plan.course_seat_lines({"recorded": 0, "machines": None, "note": ""}, AWS_COURSE) == []
    assert plan.course_seat_lines({"recorded": 2, "machines": None, "note": ""}, AWS_COURSE) == [
        "The course's record names 2 machine(s) in eu-west-1; where they are is read only with working credentials."]
    machines = [
        {"name": "madrid-training-01", "instance_id": "i-1", "instance_type": "g4dn.xlarge",
         "availability_zone": "eu-west-1b", "subnet_id": "subnet-1", "state": "running"},
        {"name": "madrid-training-02", "instance_id": "i-2", "instance_type": "g5.xlarge",
         "availability_zone": "", "subnet_id": "", "state": "stopped"},
    ]
    assert plan.course_seat_lines({"recorded": 3, "machines": machines, "note": ""}, AWS_COURSE) == [
        "The course already has 2 of its 3 recorded machine(s) in eu-west-1:",
        "  madrid-training-01: g4dn.xlarge in eu-west-1b, subnet subnet-1 (running)",
        "  madrid-training-02: g5.xlarge in an unknown zone (stopped)",
    ]
    broken = {"recorded": 0, "machines": None, "note": "The course record cannot be read: not JSON."}
    assert plan.course_seat_lines(broken, AWS_COURSE) == ["The course record cannot be read: not JSON."]
