#!/usr/bin/env python3
"""Lint the shipped IAM policies offline with parliament (its own and its community auditors).

    scripts/lint-iam-policies.py            lint both policies; exit 1 on any finding not accepted below
    scripts/lint-iam-policies.py --show     also print the operator policy rendered for the sample course

Policies: docs/iam/provisioning-policy.json, and the operator policy
roles/course_aws_operator/templates/operator-policy.json.j2 rendered for a sample course.
Every finding fails the lint, whatever its severity, unless ACCEPTED lists it with the reason.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import parliament
import yaml

PROJECT = Path(__file__).resolve().parent.parent
PROVISIONING = PROJECT / "docs/iam/provisioning-policy.json"
OPERATOR_ROLE = PROJECT / "roles/course_aws_operator"
OPERATOR_TEMPLATE = OPERATOR_ROLE / "templates/operator-policy.json.j2"
SAMPLE_COURSE = {"name": "sample-course", "provider": "aws", "aws": {"region": "eu-west-1"}}
COMMUNITY_OVERRIDES = Path(parliament.__file__).parent / "community_auditors/config_override.yaml"


@dataclass(frozen=True)
class Accepted:
    """A finding accepted for one policy (and one statement, by Sid, when the finding names a line), with why."""

    policy: str
    issue: str
    reason: str
    sids: tuple[str, ...] = ()


SPLIT_BY_RESOURCE = (
    "AWS checks each resource of one RunInstances, CreateSecurityGroup or CreateImage call against the statements "
    "separately, and a tag condition can hold only for the resources that carry the tags (the new instance and volume, "
    "the new security group, our builder instance). So those resources have a statement with the condition and the "
    "others (image, subnet, network interface, VPC, the new image and snapshot) one without: the pattern AWS documents "
    "for tags at launch. Parliament wants every required resource type of the action in one statement."
)

ACCEPTED = [
    Accepted("provisioning", "RESOURCE_MISMATCH", SPLIT_BY_RESOURCE,
             ("LaunchTaggedMachines", "LaunchFromImagesIntoNetworks", "CreateGroupsInAnyNetwork", "CaptureOwnBuilders",
              "CaptureAndCopyImages")),
    Accepted(
        "operator", "RESOURCE_STAR",
        "ec2:Describe* on every resource is part of the operator's design: it only reads, lifecycle.yml needs "
        "ec2:DescribeInstances and ec2:DescribeAddresses, and the AWS console and CLI need the rest to show the "
        "machines; the attribute-level Describe actions parliament names are read-only too.",
        ("DescribeEc2",),
    ),
    Accepted(
        "provisioning", "PERMISSIONS_MANAGEMENT_ACTIONS",
        "operator.yml creates and teardown.yml deletes each course's operator (an IAM user, its group, the group's "
        "inline policy and its access key); the policy lets it manage users and groups under the path /scipion-cloud/ "
        "only (statements ManageOperatorUsers and ManageOperatorGroups).",
    ),
    Accepted(
        "provisioning", "PRIVILEGE_ESCALATION",
        "the same IAM rights (iam:PutGroupPolicy, iam:AddUserToGroup, iam:CreateAccessKey on /scipion-cloud/ users and "
        "groups) would let the holder make a /scipion-cloud/ user with any policy. docs/iam/README.md says so: hand the "
        "policy only to organisers trusted with the account, or drop its three IAM statements and make operators "
        "(operator.yml, and its step in teardown.yml) with an administrator's credentials.",
    ),
    Accepted(
        "provisioning", "CREDENTIALS_EXPOSURE",
        "iam:CreateAccessKey returns the operator's secret key once, which operator.yml writes to "
        "output/<course>/operator.credentials (0600): that is the point of the operator account.",
    ),
]


def render_operator_policy(course: dict[str, Any] = SAMPLE_COURSE) -> str:
    """The operator policy as the course_aws_operator role renders it for ``course``."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(OPERATOR_TEMPLATE.parent), undefined=jinja2.StrictUndefined)
    env.filters["to_json"] = json.dumps
    env.filters["i2pc.scipion_cloud.course_resource_names"] = _course_resource_names()
    role_vars = yaml.safe_load((OPERATOR_ROLE / "vars/main.yml").read_text())
    # The role's variables may be templates themselves (the ManagedBy value): render them as Ansible would.
    role_vars = {name: env.from_string(value).render(course_spec=course) if isinstance(value, str) else value
                 for name, value in role_vars.items()}
    return env.get_template(OPERATOR_TEMPLATE.name).render(course_spec=course, **role_vars)


def _course_resource_names() -> Any:
    """The collection's filter course_resource_names, imported as Ansible would find it."""
    sys.path.insert(0, str(PROJECT / "collections"))
    from ansible_collections.i2pc.scipion_cloud.plugins.filter.names import course_resource_names

    return course_resource_names


def findings(policy_text: str, name: str) -> list[Any]:
    """Parliament's findings on one policy, with their severity and title filled in."""
    policy = parliament.analyze_policy_string(policy_text, filepath=name, include_community_auditors=True)
    return [parliament.enhance_finding(f) for f in policy.findings]


def statement_sid(policy_text: str, line: int | None) -> str | None:
    """The Sid of the statement holding ``line`` (1-based): parliament names a statement's opening line, just above its
    Sid in our files, or a line inside it."""
    if not line:
        return None
    sids = [(number, match.group(1)) for number, text in enumerate(policy_text.splitlines(), 1)
            if (match := re.search(r'"Sid"\s*:\s*"([^"]*)"', text))]
    before = [sid for number, sid in sids if number <= line + 1]
    return before[-1] if before else None


def accepted_for(policy: str, issue: str, sid: str | None) -> Accepted | None:
    for accepted in ACCEPTED:
        if accepted.policy == policy and accepted.issue == issue and (not accepted.sids or sid in accepted.sids):
            return accepted
    return None


def lint(policies: dict[str, str]) -> list[str]:
    """Lines to print; the lint fails when one starts with FAIL (a finding not accepted, or an acceptance never used)."""
    lines = []
    used: set[Accepted] = set()
    for name, text in policies.items():
        found = findings(text, name)
        for finding in found:
            sid = statement_sid(text, (finding.location or {}).get("line"))
            accepted = accepted_for(name, finding.issue, sid)
            where = f" in {sid}" if sid else ""
            if accepted:
                used.add(accepted)
                lines.append(f"ok   {name}{where}: {finding.severity} {finding.issue} (accepted, see ACCEPTED)")
            else:
                lines.append(f"FAIL {name}{where}: {finding.severity} {finding.issue} {finding.detail or ''} "
                             f"{finding.location} - fix the policy, or accept it in ACCEPTED with the reason")
        if not found:
            lines.append(f"ok   {name}: no findings")
    for accepted in ACCEPTED:
        if accepted not in used and accepted.policy in policies:
            lines.append(f"FAIL {accepted.policy}: {accepted.issue} is accepted but parliament no longer finds it; "
                         "remove it from ACCEPTED")
    return lines


def main(argv: list[str]) -> int:
    parliament.override_config(COMMUNITY_OVERRIDES)
    operator = render_operator_policy()
    if "--show" in argv:
        print(operator)
    policies = {"provisioning": PROVISIONING.read_text(), "operator": operator}
    lines = lint(policies)
    print("\n".join(lines))
    failed = [line for line in lines if line.startswith("FAIL")]
    accepted = sum(1 for line in lines if "(accepted" in line)
    print(f"IAM policies: {len(failed)} problem(s) to fix" if failed
          else f"IAM policies: no finding of parliament beyond the {accepted} accepted in ACCEPTED")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
