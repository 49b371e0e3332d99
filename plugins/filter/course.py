"""Course file checks that an argument spec cannot express, and normalisation.

The argument spec of the course role (roles/course/meta/argument_specs.yml, entry
point ``course_file``) is the single source of field names, types and defaults; these
filters apply its defaults and add the checks that need code: CIDRs, SSH opened to more
than a /8 (IPv4) or a /32 (IPv6), region formats, the AWS zones, subnets and instance
types a seat may be launched with, the schedule and its date, seat names and the profile.
Normalisation adds ``aws.placements`` and ``aws.instance_types``, the ordered choices of
where and as what each seat is launched. ``course_file_parse`` reads the course file's YAML with dates kept as
text, so that an impossible date is refused by name instead of failing the YAML parser.
"""

from __future__ import annotations

import datetime
import difflib
import glob
import ipaddress
import os
import re
from collections.abc import Mapping
from typing import Any, Union

import yaml

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible_collections.i2pc.scipion_cloud.plugins.module_utils import course_sites

Network = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]

MAX_SEATS = 100
# The widest SSH source a course may name without access.allow_world_ssh, per IP version.
SSH_WIDEST_PREFIX = {4: 8, 6: 32}
COURSE_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
# A seat name is a machine name and a hostname label: RFC 1123 letters, lower case.
SEAT_NAME_MAX = 63
SEAT_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")
NAME_CHARACTERS_RULE = "only lower-case letters, digits and '-', starting with a letter or digit"
SEAT_NAME_RULE = f"{NAME_CHARACTERS_RULE}, at most {SEAT_NAME_MAX} characters"
AWS_REGION_RE = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d{1,2}$")
# An instance type is <family>.<size>: g4dn.xlarge, u-6tb1.metal, c7i-flex.large.
AWS_INSTANCE_TYPE_RE = re.compile(r"^[a-z][a-z0-9-]*\.[a-z0-9][a-z0-9-]*$")
AWS_SUBNET_ID_RE = re.compile(r"^subnet-[0-9a-f]{8,17}$")
# The credentials file keeps the course's edition next to the seats' passwords.
RESERVED_SEAT_NAMES = ("edition",)
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# How the argument spec validator names an unknown field, said in the organiser's terms.
UNKNOWN_FIELD_RE = re.compile(r"^(.*)\. Supported parameters include: (.*)\.$")


class _TextDateLoader(yaml.SafeLoader):
    """YAML's safe loader without the timestamp type: 2026-02-30 stays the text '2026-02-30'."""


_TextDateLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def course_file_parse(text: str, path: str = "the course file") -> Any:
    """The course file's YAML, dates left as text for the course checks to judge."""
    try:
        return yaml.load(str(text), Loader=_TextDateLoader)  # a SafeLoader: plain data only
    except yaml.YAMLError as exc:
        raise AnsibleFilterError(f"{path} is not valid YAML: {exc}") from exc


def _address_count(network: Network) -> str:
    """How many addresses a network holds, in words an organiser can weigh."""
    if network.prefixlen == 0:
        return f"every IPv{network.version} address"
    if network.version == 4:
        return f"{network.num_addresses:,} addresses"
    return f"2^{network.max_prefixlen - network.prefixlen} addresses"


def _parse_network(field: str, value: str) -> tuple[Network | None, list[str]]:
    """The network a CIDR names (host bits cleared) and what is wrong with how it is written."""
    try:
        return ipaddress.ip_network(value, strict=True), []
    except ValueError as exc:
        strict_error = exc
    try:
        network = ipaddress.ip_network(value, strict=False)
    except ValueError:
        return None, [
            f"{field}: '{value}' is not a valid network in CIDR notation ({strict_error}); "
            "write it like 192.0.2.0/24, or 192.0.2.10/32 for one address."
        ]
    one_address = f"{value.split('/', 1)[0].strip()}/{network.max_prefixlen}"
    return network, [
        f"{field}: '{value}' has host bits set, so it is not a network; write {network} for the whole network, "
        f"or {one_address} for that one address."
    ]


def _cidr_problems(field: str, values: list[str]) -> list[str]:
    problems = []
    for value in values:
        problems += _parse_network(field, value)[1]
    return problems


def _wide_ssh_problems(ssh_cidrs: list[str]) -> list[str]:
    """SSH opened to more than a /8 (IPv4) or a /32 (IPv6), the whole Internet included."""
    networks = [(value, _parse_network("access.ssh_cidrs", value)[0]) for value in ssh_cidrs]
    world = [value for value, network in networks if network is not None and network.prefixlen == 0]
    problems = []
    if world:
        problems.append(
            f"access.ssh_cidrs opens SSH to the whole Internet ({', '.join(world)}). Limit it to your "
            "institute's range, or set access.allow_world_ssh: true to accept that risk explicitly."
        )
    for value, network in networks:
        if network is None or network.prefixlen == 0:
            continue
        widest = SSH_WIDEST_PREFIX[network.version]
        if network.prefixlen < widest:
            problems.append(
                f"access.ssh_cidrs: {value} opens SSH to {_address_count(network)} (a /{network.prefixlen}), more than "
                f"the /{widest} that an IPv{network.version} SSH range may cover. Narrow it to your institute's range "
                f"(a /{widest} or smaller), or set access.allow_world_ssh: true to accept that risk explicitly."
            )
    return problems


def _date_problems(field: str, value: Any) -> list[str]:
    text = str(value)
    if not DATE_RE.match(text):
        return [f"{field} must be YYYY-MM-DD (got '{text}')."]
    try:
        datetime.date.fromisoformat(text)
    except ValueError as exc:
        return [f"{field} '{text}' is not a real date ({exc}); write an existing day as YYYY-MM-DD."]
    return []


def _bad_seat_names(names: list[str]) -> list[str]:
    return [name for name in names if not SEAT_NAME_RE.match(name) or len(name) > SEAT_NAME_MAX]


def _seat_name_problems(course: dict[str, Any], course_name: str) -> list[str]:
    """Seat names (given, or derived as <name_prefix>-NN) and the prefix they come from."""
    prefix = course.get("name_prefix") or f"{course_name}-training"
    names = course.get("seat_names") or []
    derived = names == derived_seat_names(prefix, course["seats"])
    problems = []
    if not SEAT_NAME_RE.match(prefix):
        problems.append(
            f"name_prefix '{prefix}' is not a valid name prefix: use {NAME_CHARACTERS_RULE} "
            "(seat names are <name_prefix>-01 and up)."
        )
    elif derived and _bad_seat_names(names):
        longest = max(len(name) for name in names)
        problems.append(
            f"name_prefix '{prefix}' is too long: its seat names ({names[-1]}) would have {longest} characters, "
            f"more than {SEAT_NAME_MAX}; shorten it to at most {len(prefix) - (longest - SEAT_NAME_MAX)} characters."
        )
    bad = [] if derived else _bad_seat_names(names)
    if bad:
        listed = ", ".join(f"'{name}'" for name in bad)
        problems.append(f"seat_names: {listed} {'is not a valid seat name' if len(bad) == 1 else 'are not valid seat names'}: "
                        f"use {SEAT_NAME_RULE}.")
    reserved = [name for name in RESERVED_SEAT_NAMES if name in names]
    if reserved:
        problems.append(f"seat_names: '{reserved[0]}' is reserved (output/<course>/credentials.yml keeps the course's "
                        "edition under that name); choose another seat name.")
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
    if start is not None:
        problems += _date_problems("schedule.start_date", start)
    return problems


def _repeated(values: list[str]) -> list[str]:
    """Values listed more than once, each named once, in order of first appearance."""
    return list(dict.fromkeys(value for index, value in enumerate(values) if value in values[:index]))


def _unique(values: list[str]) -> list[str]:
    """The values without repeats, in their order."""
    return list(dict.fromkeys(values))


def _repeat_problems(field: str, values: list[str]) -> list[str]:
    repeated = _repeated(values)
    if not repeated:
        return []
    return [f"{field} lists {', '.join(repeated)} more than once; list each once, in order of preference."]


def _instance_type_problems(section: dict[str, Any]) -> list[str]:
    """Instance type names written wrong, and repeated fallbacks (a fallback equal to instance_type is just dropped)."""
    named = [("aws.instance_type", section["instance_type"])]
    named += [("aws.fallback_instance_types", value) for value in section["fallback_instance_types"]]
    problems = [
        f"{field}: '{value}' is not an EC2 instance type name; write it like g4dn.xlarge (family, a dot, the size, "
        "in lower case)."
        for field, value in named if not AWS_INSTANCE_TYPE_RE.match(value)
    ]
    return problems + _repeat_problems("aws.fallback_instance_types", section["fallback_instance_types"])


def _zone_problems(region: str, zones: list[str]) -> list[str]:
    """Zones that are not names of a zone of the course's region."""
    zone_re = re.compile(rf"^{re.escape(region)}([a-z]|-[a-z0-9][a-z0-9-]*)$")  # eu-west-1b, us-west-2-lax-1a
    foreign = [zone for zone in zones if not zone_re.match(zone)]
    if not foreign or not AWS_REGION_RE.match(region):
        return []
    listed = ", ".join(f"'{zone}'" for zone in foreign)
    return [
        f"aws.availability_zones: {listed} {'is not a zone' if len(foreign) == 1 else 'are not zones'} of region "
        f"{region}: a zone's name is the region's name and a letter (like {region}a). Name zones of {region}, or change "
        "aws.region."
    ]


def _placement_problems(section: dict[str, Any]) -> list[str]:
    """Zones and subnets: one or the other, each once, the zones of the course's region, subnet ids as AWS writes them."""
    zones, subnets = section["availability_zones"], section["subnet_ids"]
    problems = []
    if section.get("subnet_id") and subnets and section["subnet_id"] != subnets[0]:
        problems.append("aws: give either subnet_id or subnet_ids, not both (subnet_id is the one-subnet form of subnet_ids).")
    if zones and subnets:
        problems.append(
            "aws: give either availability_zones or subnet_ids (subnet_id), not both: a subnet already fixes its zone. "
            "List subnets of the zones you want in subnet_ids, or drop the subnets to launch in the zones' default subnets."
        )
    bad_ids = [subnet for subnet in subnets if not AWS_SUBNET_ID_RE.match(subnet)]
    if bad_ids:
        listed = ", ".join(f"'{subnet}'" for subnet in bad_ids)
        problems.append(f"aws.subnet_ids (subnet_id): {listed} {'is not a subnet id' if len(bad_ids) == 1 else 'are not subnet ids'}; "
                        "write them as AWS shows them, like subnet-0123456789abcdef0.")
    problems += _repeat_problems("aws.availability_zones", zones)
    problems += _repeat_problems("aws.subnet_ids", subnets)
    return problems + _zone_problems(section["region"], zones)


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
        hint = (f"did you mean {close[0]}?" if close
                else "profile_vars set the image roles' variables (roles/*/defaults/main.yml) or the profile's keys.")
        problems.append(f"profile_vars.{name} is not a variable of any image role or of the profile; {hint}")
    return problems


def course_problems(course: dict[str, Any], course_name: str, profiles: dict[str, Any], roles_dir: str = "") -> list[str]:
    """Return every problem of a (spec-valid, normalised) course file, each saying what to do."""
    if course.get("sites") or course.get("provider") is None:
        return _multi_site_problems(course, course_name, profiles, roles_dir)
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
    problems += _seat_name_problems(course, course_name)

    access = course["access"]
    problems += _cidr_problems("access.ssh_cidrs", access["ssh_cidrs"])
    problems += _cidr_problems("access.web_cidrs", access["web_cidrs"])
    if not access["allow_world_ssh"]:
        problems += _wide_ssh_problems(access["ssh_cidrs"])

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
        problems += _instance_type_problems(section)
        problems += _placement_problems(section)

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


def _multi_site_problems(course: dict[str, Any], course_name: str, profiles: dict[str, Any], roles_dir: str) -> list[str]:
    """Problems of a course over several sites: the sites list, then each site as the single-site
    course it stands for (the course's fields with the site's provider and section), by site."""
    if course.get("provider") is not None:
        return [f"provider: give either provider (a course on one site) or sites (a course over several), not both; "
                f"move provider {course['provider']} and its section into an entry of sites."]
    if not course.get("sites"):
        return ["provider: say where the seats run: provider (aws, openstack or local) with its section, or sites: "
                "a list of sites, each with name, provider, seats and that provider's section."]
    problems = course_sites.site_problems(course["sites"], course.get("seats"))
    if problems:
        return problems
    seen: list[str] = []
    for site in course["sites"]:
        if site.get("error"):
            problems.append(f"sites ({site['name']}): {site['error']}")
            continue
        for problem in course_problems(site["course"], course_name, profiles, roles_dir):
            # Problems of the course's own fields are the same on every site: named once, without a site.
            of_site = problem.startswith((f"{site['provider']}.", f"{site['provider']}:", "provider "))
            named = f"sites ({site['name']}): {problem}" if of_site else problem
            if named not in seen:
                seen.append(named)
                problems.append(named)
    return problems


def _site_course(course: dict[str, Any], site: dict[str, Any]) -> dict[str, Any]:
    """The single-site course file a site stands for: the course's own fields, the site's provider and section."""
    own = {k: v for k, v in course.items() if k not in ("sites", "name", "provider", *course_sites.PROVIDERS)}
    provider = site["provider"]
    own.update(provider=provider, seats=max(1, course.get("seats") or 1))
    if site.get(provider) is not None:
        own[provider] = site[provider]
    return own


def _normalise_sites(course: dict[str, Any], course_name: str, validator: ArgumentSpecValidator) -> list[dict[str, Any]]:
    """Each site with its single-site course (``course``, with the whole course's seats until
    course_site_specs places them) or the ``error`` of its section."""
    sites = []
    for site in course["sites"]:
        entry = dict(site)
        result = validator.validate(_site_course(course, site))
        if result.error_messages:
            entry["error"] = "; ".join(UNKNOWN_FIELD_RE.sub(r"unknown field \1 (a typo?); the fields are \2", message)
                                       for message in result.error_messages)
        else:
            entry["course"] = _normalise(result.validated_parameters, course_name, validator)
            entry["course"]["site"] = site["name"]
        sites.append(entry)
    return sites


def course_site_specs(course: dict[str, Any], counts: dict[str, int], placed: dict[str, str] | None = None,
                      output_dir: str = "") -> list[dict[str, Any]]:
    """The course of each site, its seats placed: ``seat_names`` (the course's names), ``seat_numbers``
    (name -> the seat's number in the whole course) and ``output_dir`` (<course output>/sites/<site>,
    where the site's record, key and clouds.yaml live). ``counts``: site -> seats; ``placed``: seat ->
    site from an earlier run, so that a seat keeps its site."""
    try:
        # Fill sites hold only the seats placed on them before until their share is known (course_site_fill).
        partial = any(site["seats"] == course_sites.FILL for site in course["sites"])
        seats = course_sites.assign_seats(course["seat_names"], counts, placed or {}, partial)
    except ValueError as error:
        raise AnsibleFilterError(str(error)) from error
    numbers = {name: index + 1 for index, name in enumerate(course["seat_names"])}
    specs = []
    for site in course["sites"]:
        spec = dict(site["course"])
        names = seats[site["name"]]
        # The budget is the whole course's: judged on the sites' sum (course_sites_estimate), not per site.
        spec.update(seat_names=names, seats=len(names), seat_numbers={n: numbers[n] for n in names}, budget_usd=None,
                    output_dir=f"{output_dir or course.get('output_dir', '')}/sites/{site['name']}")
        specs.append(spec)
    return specs


def derived_seat_names(prefix: str, seats: int) -> list[str]:
    """<prefix>-01 and up (three digits from 100 seats)."""
    width = max(2, len(str(seats)))
    return [f"{prefix}-{i:0{width}d}" for i in range(1, seats + 1)]


def _plain(value: Any) -> Any:
    """Template values as plain dicts, lists and strings: the argument spec validator deep-copies
    its spec and parameters, which costs a fifth of a second per call on Ansible's lazy, tagged
    containers and a millisecond on plain ones."""
    if isinstance(value, Mapping):
        return {_plain(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, str):
        return str(value)
    return value


def course_normalise(course: dict[str, Any], course_name: str, spec: dict[str, Any]) -> dict[str, Any]:
    """Apply the argument spec's defaults and derive names, so every consumer sees one shape."""
    return _normalise(_plain(course), course_name, ArgumentSpecValidator(_plain(spec)))


def _normalise(course: dict[str, Any], course_name: str, validator: ArgumentSpecValidator) -> dict[str, Any]:
    result = validator.validate(course)
    if result.error_messages:
        raise AnsibleFilterError("course file is invalid: " + "; ".join(result.error_messages))
    normalised = dict(result.validated_parameters)
    prefix = normalised.get("name_prefix") or f"{course_name}-training"
    names = normalised.get("seat_names") or derived_seat_names(prefix, normalised["seats"])
    schedule = dict(normalised["schedule"])
    if schedule.get("hours_existing") is None:
        schedule["hours_existing"] = float(schedule["days"] * 24)
    normalised.update(name=course_name, name_prefix=prefix, seat_names=names, schedule=schedule)
    if normalised.get("sites"):
        # Sites are checked by course_problems; only a valid list gets each site's course.
        normalised["sites"] = (_normalise_sites(normalised, course_name, validator)
                               if not course_sites.site_problems(normalised["sites"], normalised["seats"]) else normalised["sites"])
    else:
        normalised["sites"] = []
    if isinstance(normalised.get("aws"), dict):
        normalised["aws"] = _aws_choices(normalised["aws"])
    return normalised


def _aws_choices(section: dict[str, Any]) -> dict[str, Any]:
    """Where and as what a seat may be launched, in order of preference: ``placements`` and ``instance_types``.

    ``subnet_id`` counts as a one-subnet ``subnet_ids`` and stays the first subnet (its VPC is the course's).
    Subnets win over zones here; course_problems refuses a course that gives both.
    """
    aws = dict(section)
    subnets = _unique(aws.get("subnet_ids") or ([aws["subnet_id"]] if aws.get("subnet_id") else []))
    zones = _unique(aws.get("availability_zones") or [])
    if subnets:
        placements = [{"subnet_id": subnet, "availability_zone": ""} for subnet in subnets]
    elif zones:
        placements = [{"subnet_id": "", "availability_zone": zone} for zone in zones]
    else:
        placements = [{"subnet_id": "", "availability_zone": ""}]
    fallbacks = list(aws.get("fallback_instance_types") or [])
    aws.update(
        subnet_id=aws.get("subnet_id") or (subnets[0] if subnets else None),
        subnet_ids=list(aws.get("subnet_ids") or subnets),
        availability_zones=list(aws.get("availability_zones") or []),
        fallback_instance_types=fallbacks,
        placements=placements,
        instance_types=_unique([aws["instance_type"], *fallbacks]),
    )
    return aws


class FilterModule:
    """Course file filters."""

    def filters(self) -> dict[str, Any]:
        return {"course_problems": course_problems, "course_normalise": course_normalise,
                "course_file_parse": course_file_parse, "course_site_specs": course_site_specs}
