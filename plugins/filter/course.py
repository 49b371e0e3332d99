"""Course file checks that an argument spec cannot express, and normalisation.

The argument spec of the course role (roles/course/meta/argument_specs.yml, entry
point ``course_file``) is the single source of field names, types and defaults; these
filters apply its defaults and add the checks that need code: CIDRs, world-open SSH,
region formats, the schedule, seat names and the profile.
"""

from __future__ import annotations

import difflib
import glob
import ipaddress
import os
import re
from typing import Any

import yaml

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

MAX_SEATS = 100
WORLD_NETWORKS = ("0.0.0.0/0", "::/0")
COURSE_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
NAME_PREFIX_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,50}$")
AWS_REGION_RE = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d{1,2}$")
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _cidr_problems(field: str, values: list[str]) -> list[str]:
    problems = []
    for value in values:
        try:
            ipaddress.ip_network(value, strict=True)
        except ValueError as exc:
            problems.append(
                f"{field}: '{value}' is not a valid network in CIDR notation ({exc}); "
                "write it like 192.0.2.0/24, or 192.0.2.10/32 for one address."
            )
    return problems


def _schedule_problems(schedule: dict[str, Any]) -> list[str]:
    problems = []
    days = schedule.get("days")
    hours = schedule.get("hours_up_per_day")
    existing = schedule.get("hours_existing")
    if days is not None and days < 1:
        problems.append(f"schedule.days must be at least 1 (got {days}).")
    if hours is not None and not 0 < hours <= 24:
        problems.append(f"schedule.hours_up_per_day must be more than 0 and at most 24 (got {hours:g}).")
    if existing is not None and days and hours and days >= 1 and 0 < hours <= 24:
        up = days * hours
        if existing < up:
            problems.append(
                f"schedule.hours_existing ({existing:g}) is shorter than the hours the machines are up "
                f"({days} days x {hours:g} h = {up:g} h); raise it or leave it out (default days x 24)."
            )
    start = schedule.get("start_date")
    if start is not None and not DATE_RE.match(str(start)):
        problems.append(f"schedule.start_date must be YYYY-MM-DD (got '{start}').")
    return problems


def _role_variables(roles_dir: str) -> set[str]:
    """Public variables of every role: the keys of roles/*/defaults/main.yml."""
    names: set[str] = set()
    for defaults in glob.glob(os.path.join(roles_dir, "*", "defaults", "main.yml")):
        with open(defaults, encoding="utf-8") as handle:
            names |= set(yaml.safe_load(handle) or {})
    return names


def _profile_var_problems(overrides: dict[str, Any], profile: dict[str, Any], roles_dir: str) -> list[str]:
    known = set(profile) | _role_variables(roles_dir)
    problems = []
    for name in sorted(set(overrides) - known):
        close = difflib.get_close_matches(name, sorted(known), n=1)
        hint = f"did you mean {close[0]}?" if close else "profile_vars set the image roles' variables (roles/*/defaults/main.yml) or the profile's keys."
        problems.append(f"profile_vars.{name} is not a variable of any image role or of the profile; {hint}")
    return problems


def course_problems(course: dict[str, Any], course_name: str, profiles: dict[str, Any], roles_dir: str = "") -> list[str]:
    """Return every problem of a (spec-valid) course file, each saying what to do."""
    problems: list[str] = []
    if not COURSE_NAME_RE.match(course_name):
        problems.append(
            f"course name '{course_name}' must be lower-case letters, digits and '-' (at most 40 characters), as it names cloud resources."
        )

    seats = course["seats"]
    if seats < 1:
        problems.append(f"seats must be at least 1 (got {seats}).")
    elif seats > MAX_SEATS:
        problems.append(f"seats must be at most {MAX_SEATS} (got {seats}); split the class into several courses.")

    names = course.get("seat_names")
    if names is not None:
        if len(names) != seats:
            problems.append(f"seat_names lists {len(names)} names for {seats} seats; give exactly one name per seat.")
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            problems.append(f"seat_names must be unique; repeated: {', '.join(duplicates)}.")
    prefix = course.get("name_prefix")
    if prefix is not None and not NAME_PREFIX_RE.match(prefix):
        problems.append(f"name_prefix '{prefix}' may hold only letters, digits and '-'.")

    access = course["access"]
    problems += _cidr_problems("access.ssh_cidrs", access["ssh_cidrs"])
    problems += _cidr_problems("access.web_cidrs", access["web_cidrs"])
    world = [c for c in access["ssh_cidrs"] if c in WORLD_NETWORKS]
    if world and not access["allow_world_ssh"]:
        problems.append(
            f"access.ssh_cidrs opens SSH to the whole Internet ({', '.join(world)}). Limit it to your "
            "institute's range, or set access.allow_world_ssh: true to accept that risk explicitly."
        )

    problems += _schedule_problems(course["schedule"])

    provider = course["provider"]
    section = course.get(provider)
    if provider in ("aws", "openstack") and not section:
        needed = "region and instance_type" if provider == "aws" else "cloud, image and flavor"
        problems.append(f"provider is {provider} but the course has no '{provider}:' section; add one with {needed}.")
    if provider == "aws" and section:
        if not AWS_REGION_RE.match(section["region"]):
            problems.append(
                f"aws.region '{section['region']}' is not an AWS region name; write it like eu-west-1 or us-east-1."
            )
        if section.get("image_id") and section.get("image_name"):
            problems.append("aws: give either image_id or image_name, not both.")

    profile = profiles.get(course["profile"])
    if profile is None:
        known = ", ".join(sorted(profiles)) or "none"
        problems.append(f"profile '{course['profile']}' is unknown; known profiles (inventories/profiles): {known}.")
    else:
        minimum = profile.get("min_disk_gb", 0)
        if course["disk_gb"] < minimum:
            problems.append(
                f"disk_gb {course['disk_gb']} is below the {minimum} GB that profile {course['profile']} needs; "
                f"set disk_gb to {minimum} or more."
            )
        if roles_dir:
            problems += _profile_var_problems(course.get("profile_vars") or {}, profile, roles_dir)
    if course.get("budget_usd") is not None and course["budget_usd"] <= 0:
        problems.append(f"budget_usd must be positive (got {course['budget_usd']:g}); leave it out for no budget.")
    return problems


def course_normalise(course: dict[str, Any], course_name: str, spec: dict[str, Any]) -> dict[str, Any]:
    """Apply the argument spec's defaults and derive names, so every consumer sees one shape."""
    result = ArgumentSpecValidator(spec).validate(course)
    if result.error_messages:
        raise AnsibleFilterError("course file is invalid: " + "; ".join(result.error_messages))
    normalised = dict(result.validated_parameters)
    prefix = normalised.get("name_prefix") or f"{course_name}-training"
    width = max(2, len(str(normalised["seats"])))
    names = normalised.get("seat_names") or [f"{prefix}-{i:0{width}d}" for i in range(1, normalised["seats"] + 1)]
    schedule = dict(normalised["schedule"])
    if schedule.get("hours_existing") is None:
        schedule["hours_existing"] = float(schedule["days"] * 24)
    normalised.update(name=course_name, name_prefix=prefix, seat_names=names, schedule=schedule)
    return normalised


class FilterModule:
    """Course file filters."""

    def filters(self) -> dict[str, Any]:
        return {"course_problems": course_problems, "course_normalise": course_normalise}
