#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read-only OpenStack checks before a course creates anything."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: openstack_course_preflight
short_description: Check that an OpenStack project can run a course, before anything is created
version_added: 0.1.0
description:
  - Read-only checks with openstacksdk against the clouds.yaml entry O(cloud) (C(OS_CLIENT_CONFIG_FILE) and the
    other usual openstacksdk settings apply).
  - Checks, in order, the login, that the flavour exists and its root disk holds O(disk_gb), that the image exists,
    that an image built by the image role was built from the course's O(profile), the network and floating IP pool,
    the key pair O(key_pair), that no server the course did not create uses a seat name, that the servers with the
    course's metadata are in its record (O(unrecorded)), that a security group named O(own_security_group) is the
    course's, that the course did not shrink by accident, and that the project's quotas (instances, cores, RAM,
    floating IPs) hold the seats still to create.
  - Never fails on a failed check; returns every check with C(ok), C(detail) and C(fix), and the caller
    (playbooks/course_plan.yml, or the course_openstack role before it creates anything) refuses the course after
    the whole report. A read the cloud refuses fails the module with the cloud's answer, so that the caller can try
    a passing failure (502, 503, 504, 409) again.
  - With O(login_failure) it does not talk to the cloud at all. The login check is returned failed with what to do,
    and every other check with C(not_run=true), C(ok=false) and a C(detail) starting with C(not run).
  - Which servers are the course's own is decided beforehand from its record (O(owned_servers), O(unrecorded));
    the module does not read the record.
author:
  - I2PC scipion_cloud maintainers (@I2PC)
requirements:
  - openstacksdk >= 1.0.0
options:
  cloud:
    description: Name of the clouds.yaml entry to log in with (C(openstack.cloud) of the course).
    type: str
    required: true
  course:
    description: Course name.
    type: str
    required: true
  seat_names:
    description: The seats' server names.
    type: list
    elements: str
    default: []
  flavor:
    description: Flavour name of the seats (C(openstack.flavor)).
    type: str
    default: ""
  disk_gb:
    description: Root disk size the course needs, in GB (C(disk_gb)); a flavour with a root disk of 0 takes any size.
    type: int
    default: 0
  image:
    description: Image name of the seats (C(openstack.image)).
    type: str
    default: ""
  profile:
    description: >-
      The course's profile, which an image built by the image role (properties C(ManagedBy=scipion_cloud)
      and C(Profile)) must carry.
    type: str
    default: ""
  check_image_profile:
    description: Refuse an image built from another profile (C(course_image_profile_check)); when false it is only said.
    type: bool
    default: true
  network:
    description: Network of the seats (C(openstack.network)), by name or id; empty means the project's only network.
    type: str
    default: ""
  floating_ips:
    description: Whether each seat gets a floating IP (C(openstack.floating_ips)).
    type: bool
    default: true
  floating_ip_pool:
    description: External network to take floating IPs from (C(openstack.floating_ip_pool)); empty means any.
    type: str
    default: ""
  key_pair:
    description: Existing key pair the course reuses (C(openstack.key_pair)); empty means the course's own.
    type: str
    default: ""
  own_key_pair:
    description: Name of the course's own key pair, used when O(key_pair) is empty; default C(<course>-key).
    type: str
    default: ""
  security_group:
    description: Existing security group the course reuses as it is (C(openstack.security_group)).
    type: str
    default: ""
  own_security_group:
    description: Name of the course's own security group; default C(<course>-sg).
    type: str
    default: ""
  owned_servers:
    description: Ids of the servers that are the course's own (its record, adopted ones, claimed pending ones).
    type: list
    elements: str
    default: []
  unrecorded:
    description: Why servers with the course's metadata are not the course's own ('' when none are); fails the record check.
    type: str
    default: ""
  security_group_record:
    description:
      - The record's entry for the course's own security group, C({name, id}); C({}) when there is none.
      - An empty C(id) is an intent (the group was about to be created when a run stopped).
    type: dict
    default: {}
  adopt:
    description: Ids adopted into the record (C(course_adopt)), or C(all).
    type: list
    elements: str
    default: []
  allow_shrink:
    description: Whether the course may delete its servers beyond its seats (C(course_openstack_allow_shrink)).
    type: bool
    default: false
  record:
    description: Path of the course's record, for the messages.
    type: str
    default: ""
  auth:
    description: How the login was made, for the login check.
    type: str
    choices: [clouds_yaml, egi_token]
    default: clouds_yaml
  site:
    description: EGI site of the course (C(openstack.site)); empty for a plain clouds.yaml entry.
    type: str
    default: ""
  vo:
    description: EGI VO of the course (C(openstack.vo)), for the advice after a refused token.
    type: str
    default: ""
  login_failure:
    description:
      - The login failed before the checks; report it and every other check as not run, without a read.
      - Omitted when the login worked.
    type: dict
    suboptions:
      step:
        description: Name of the login task that failed.
        type: str
        default: ""
      output_hidden:
        description: Whether that task hid its output (it handles the access token); its message is then not repeated.
        type: bool
        default: false
      error:
        description: What the failed task said.
        type: str
        default: ""
notes:
  - Supports check mode; it reads only.
"""

EXAMPLES = r"""
- name: Check the project before a course
  i2pc.scipion_cloud.openstack_course_preflight:
    cloud: IISAS-FedCloud-cloud
    course: madrid
    seat_names: [madrid-training-01, madrid-training-02]
    flavor: g1.c06r12
    disk_gb: 30
    image: scipion-1.1-course
    profile: scipion-1.1
    record: output/madrid/resources.json
    owned_servers: "{{ ownership.owned | map(attribute='id') | list }}"
    unrecorded: "{{ ownership.unrecorded }}"
    security_group_record: "{{ ownership.entry.security_group | default({}) }}"
    auth: egi_token
    site: IISAS-FedCloud-cloud
    vo: training.egi.eu
  register: preflight

- name: Report a failed login and the checks it leaves not run
  i2pc.scipion_cloud.openstack_course_preflight:
    cloud: my-cloud
    course: madrid
    login_failure:
      step: Read the course's flavour
      error: "Cloud my-cloud was not found."
  register: preflight
"""

RETURN = r"""
checks:
  description: One entry per check, in order, each C({name, ok, detail, fix}); a check not run has C(not_run=true).
  returned: always
  type: list
  elements: dict
  sample:
    - {name: OpenStack login, ok: true, detail: "Logged in to cloud my-cloud (clouds.yaml).", fix: ""}
    - name: "OpenStack quota: instances"
      ok: false
      detail: "the course needs 3 more (3 seats to create of flavour g1.c06r12), the project has 2 free (quota 2, 0 in use)."
      fix: "Lower seats, choose a smaller flavour, ..."
course_servers:
  description: The course's own servers, each C({id, name, status}) (null after a failed login).
  returned: always
  type: list
  elements: dict
  sample: [{id: 6f1c0d2e-0000-4000-8000-000000000001, name: madrid-training-01, status: ACTIVE}]
missing:
  description: Seats without a server of the course, in seat order (null after a failed login).
  returned: always
  type: list
  elements: str
surplus:
  description: The course's servers that are not among its seats (the course shrank; null after a failed login).
  returned: always
  type: list
  elements: str
security_group:
  description:
    - The group the seats get (null after a failed login). C(state) is C(reused) (O(security_group) exists and is
      used as it is), C(create) (the course's own group does not exist), C(ours) (it exists and is the course's) or
      C(foreign) (a group of the course's name that the course did not create; the check fails).
    - C(id) is the id of the group of the course's own name ('' when there is none).
  returned: always
  type: dict
  sample: {state: create, id: ""}
needs:
  description: What the seats still to create need, per quota (null after a failed login).
  returned: always
  type: dict
  sample: {instances: 2, cores: 12, ram_mb: 24576, floating_ips: 2}
quota:
  description: Limit and usage per quota, as M(i2pc.scipion_cloud.openstack_quota_info) returns it (null after a failed login).
  returned: always
  type: dict
  sample: {instances: {limit: 4, used: 0}, cores: {limit: 24, used: 0}, ram_mb: {limit: 49152, used: 0},
           floating_ips: {limit: 2, used: 0}}
room:
  description:
    - How many seats more than the course asks of this project (O(seat_names)) the free quota still holds, with the
      course's flavour O(flavor) (cores, RAM, an instance and, with O(floating_ips), a floating IP per seat).
    - 0 when the quota is already short (never negative); null when no quota limits it (every limit -1), when the
      flavour is unknown, or after a failed login.
  returned: always
  type: int
  sample: 1
"""

import re
from typing import Any

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.i2pc.scipion_cloud.plugins.module_utils.course_names import MANAGED_BY, key_pair_name, security_group_name
from ansible_collections.i2pc.scipion_cloud.plugins.module_utils.openstack_quota import QUOTA_RESOURCES, project_quota

try:
    import openstack
    from keystoneauth1.exceptions import ClientException as KeystoneError
except ImportError:  # pragma: no cover - reported by the module
    openstack = None

LOGIN = "OpenStack login"
QUOTA_LABELS = {"instances": "instances", "cores": "cores", "ram_mb": "RAM (MB)", "floating_ips": "floating IPs"}
# Every check after the login, in the order they are reported.
CHECK_NAMES = [
    "OpenStack flavour",
    "OpenStack image",
    "OpenStack image profile",
    "OpenStack network",
    "OpenStack key pair",
    "OpenStack seat names",
    "OpenStack record of the course's servers",
    "OpenStack security group",
    "OpenStack seats to remove",
    *(f"OpenStack quota: {QUOTA_LABELS[res]}" for res in QUOTA_RESOURCES),
]
QUOTA_FIX = ("Lower seats, choose a smaller flavour, free resources in the project, or ask the site (on EGI, through "
             "the VO manager) for more quota or a reservation.")


def check(name: str, ok: bool, detail: str, fix: str = "") -> dict[str, Any]:
    """One preflight result; the fix is only said for a failed check."""
    return {"name": name, "ok": bool(ok), "detail": detail, "fix": "" if ok else fix}


def own_names(params: dict[str, Any]) -> tuple[str, str]:
    """The course's own security group and key pair names."""
    course = params["course"]
    return params.get("own_security_group") or security_group_name(course), params.get("own_key_pair") or key_pair_name(course)


# --- the login ----------------------------------------------------------------------

# What an API says when it is not there (not when it refuses): HTTP 502, 503, 504.
UNAVAILABLE = re.compile(r"\b50[234]\b|Service Unavailable|Bad Gateway|Gateway Time-?out")


def login_fix(params: dict[str, Any]) -> str:
    if params.get("site"):
        return (f"Get a fresh EGI Check-in access token of a member of VO {params.get('vo') or '?'} "
                "(export EGI_ACCESS_TOKEN=$(oidc-token egi) with oidc-agent, or from https://aai.egi.eu/token), "
                "then run again.")
    return (f"Add an entry named {params['cloud']} (openstack.cloud) to a clouds.yaml (OS_CLIENT_CONFIG_FILE, "
            "./clouds.yaml, ~/.config/openstack/clouds.yaml or /etc/openstack/clouds.yaml) with a valid password or "
            "application credential, then run again.")


def login_refused(params: dict[str, Any]) -> list[dict[str, Any]]:
    """The failed login, then every other check not run."""
    failure = params["login_failure"]
    if failure.get("output_hidden"):
        detail = (f"The login step \"{failure.get('step') or '?'}\" failed (its output is hidden: it handles the "
                  "access token).")
    else:
        detail = failure.get("error") or "The login failed."
    # A cloud that kept answering 502/503/504 did not refuse the login: it was not there.
    unavailable = not failure.get("output_hidden") and UNAVAILABLE.search(detail)
    reason = f"not run: no login to cloud {params['cloud']} (see the OpenStack login check)."
    fix = "Make the login work (see the OpenStack login check), then run again."
    login_hint = ("The cloud did not answer (it may be down, overloaded or in maintenance): run again later; a course over "
                  "several sites can go ahead without it with -e course_skip_sites=<its name in the course file>."
                  if unavailable else login_fix(params))
    return [check(LOGIN, False, detail, login_hint),
            *({"name": name, "ok": False, "not_run": True, "detail": reason, "fix": fix} for name in CHECK_NAMES)]


def login_check(params: dict[str, Any]) -> dict[str, Any]:
    how = f" (EGI site {params['site']}, Check-in token)" if params["auth"] == "egi_token" else " (clouds.yaml)"
    return check(LOGIN, True, f"Logged in to cloud {params['cloud']}{how}.")


# --- what the project has, decided ----------------------------------------------------

def properties(image: dict[str, Any] | None) -> dict[str, Any]:
    return (image or {}).get("properties") or {}


def image_profile(image: dict[str, Any] | None) -> str:
    """The profile an image built by the image role carries ('' for any other image)."""
    props = properties(image)
    return str(props.get("Profile") or "") if props.get("ManagedBy") == MANAGED_BY else ""


def profile_mismatch(params: dict[str, Any], images: list[dict[str, Any]]) -> bool:
    """Whether the course image was built from another profile than the course's."""
    return image_profile(images[0] if images else None) not in ("", params["profile"])


def has_floating_ip(server: dict[str, Any]) -> bool:
    return any(address.get("OS-EXT-IPS:type") == "floating"
               for addresses in (server.get("addresses") or {}).values() for address in addresses or [])


def seat_plan(params: dict[str, Any], servers: list[dict[str, Any]]) -> dict[str, Any]:
    """The course's own servers, the seats still without one, its servers beyond the seats, and other servers
    named like seats."""
    owned = set(params["owned_servers"])
    seats = params["seat_names"]
    mine = [s for s in servers if s["id"] in owned]
    mine_names = {s["name"] for s in mine}
    clashes = [s["name"] for s in servers if s["id"] not in owned and s["name"] in seats]
    return {
        "mine": mine,
        "missing": [name for name in seats if name not in mine_names],
        "surplus": [s["name"] for s in mine if s["name"] not in seats],
        "clashes": list(dict.fromkeys(clashes)),
    }


def security_group_state(params: dict[str, Any], groups: list[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    """reused | create | ours | foreign, and the group of the course's own name ({} when none).

    The course's own group is the course's when its record names its id, when it is adopted, or when it has the
    course's description and the record names it as about to be created (a run killed in between) or every
    server is adopted (course_adopt=all). Any other is refused, never taken over.
    """
    own_group, _own_key_pair = own_names(params)
    named = [g for g in groups if params["security_group"] and g["name"] == params["security_group"]]
    own = [g for g in groups if g["name"] == own_group]
    first = own[0] if own else {}
    if named:
        return "reused", first
    if not own:
        return "create", first
    record, adopt = params["security_group_record"] or {}, params["adopt"]
    described = str(first.get("description") or "").startswith(f"{MANAGED_BY} course {params['course']}:")
    ours = len(own) == 1 and (first["id"] == (record.get("id") or "") or first["id"] in adopt
                              or described and (record == {"name": own_group, "id": ""} or "all" in adopt))
    return ("ours" if ours else "foreign"), first


def needs(params: dict[str, Any], flavor: dict[str, Any] | None, plan: dict[str, Any]) -> dict[str, int]:
    """What the seats still to create take from each quota (floating IPs: also the course's servers without one)."""
    to_create = len(plan["missing"])
    flavor = flavor or {}
    with_ip = [s for s in plan["mine"] if has_floating_ip(s)]
    return {
        "instances": to_create,
        "cores": to_create * int(flavor.get("vcpus") or 0),
        "ram_mb": to_create * int(flavor.get("ram") or 0),
        "floating_ips": to_create + len(plan["mine"]) - len(with_ip) if params["floating_ips"] else 0,
    }


def room(params: dict[str, Any], flavor: dict[str, Any] | None, need: dict[str, int],
         quota: dict[str, dict[str, int]]) -> int | None:
    """How many seats more than the course's the free quota holds with its flavour (0 when short; None when no quota
    limits it, or the flavour is unknown). ``need`` (see needs) already leaves out the course's servers, which
    ``used`` counts."""
    if not flavor:
        return None
    per_seat = {"instances": 1, "cores": int(flavor.get("vcpus") or 0), "ram_mb": int(flavor.get("ram") or 0),
                "floating_ips": 1 if params["floating_ips"] else 0}
    holds = [(max(quota[res]["limit"] - quota[res]["used"], 0) - need[res]) // per_seat[res]
             for res in QUOTA_RESOURCES if quota[res]["limit"] >= 0 and per_seat[res] > 0]
    return max(min(holds), 0) if holds else None


# --- the checks -------------------------------------------------------------------------

def flavor_check(params: dict[str, Any], flavor: dict[str, Any] | None) -> dict[str, Any]:
    name = params["flavor"]
    if not flavor:
        return check("OpenStack flavour", False,
                     f"Flavour {name} (openstack.flavor) does not exist or is not visible to the project.",
                     "Set openstack.flavor to one of: openstack flavor list.")
    disk = int(flavor.get("disk") or 0)
    disk_ok = disk == 0 or disk >= params["disk_gb"]
    detail = (f"Flavour {name}: {flavor.get('vcpus')} cores, {flavor.get('ram')} MB RAM, {disk} GB root disk"
              + ("" if disk_ok else f", smaller than disk_gb ({params['disk_gb']} GB)") + ".")
    return check("OpenStack flavour", disk_ok, detail,
                 "Choose a flavour with a larger disk, or lower disk_gb if the profile allows it.")


def image_check(params: dict[str, Any], images: list[dict[str, Any]]) -> dict[str, Any]:
    name = params["image"]
    return check("OpenStack image", bool(images),
                 f"Image {name} found." if images else f"Image {name} (openstack.image) was not found.",
                 "Set openstack.image to one of openstack image list (on EGI, the VO's images come from the "
                 "AppDB/marketplace sync).")


def image_profile_check(params: dict[str, Any], images: list[dict[str, Any]],
                        all_images: list[dict[str, Any]] | None) -> dict[str, Any]:
    """An image built from another profile would give the seats the wrong software; a site's own image is not judged.

    ``all_images`` is the project's image list, read only when the image is refused (None otherwise).
    """
    name, profile = params["image"], params["profile"]
    built_from = image_profile(images[0] if images else None)
    refused = profile_mismatch(params, images) and params["check_image_profile"]
    if profile_mismatch(params, images):
        detail = (f"Image {name} was built from profile {built_from}, but the course uses profile {profile}."
                  + ("" if refused else " Not refused: course_image_profile_check=false."))
    elif built_from:
        detail = f"Image {name} was built from profile {profile}."
    else:
        detail = f"Image {name} was not built by the image role (no ManagedBy/Profile properties): its software is not checked."
    fitting = [i["name"] for i in all_images or [] if image_profile(i) == profile]
    if fitting:
        fix = f"Images built from {profile}: {', '.join(fitting)}; set openstack.image to one of them."
    else:
        fix = (f"No image of profile {profile} exists here: build one with ansible-playbook playbooks/image.yml "
               f"-e profile={profile} -e provider=openstack.")
    return check("OpenStack image profile", not refused, detail,
                 fix + " To use this image anyway, run with -e course_image_profile_check=false.")


def network_check(params: dict[str, Any], networks: list[dict[str, Any]]) -> dict[str, Any]:
    external = [n["name"] for n in networks if n.get("is_router_external")]
    internal = [n["name"] for n in networks if not n.get("is_router_external")]
    network, pool = params["network"], params["floating_ip_pool"]
    network_ok = any(network in (n["name"], n["id"]) for n in networks) if network else len(internal) == 1
    pool_ok = not params["floating_ips"] or (pool in external if pool else bool(external))
    parts = [f"Networks: {', '.join(internal) or 'none'}; external (floating IP pools): {', '.join(external) or 'none'}."]
    if not network_ok:
        parts.append(f"Network {network} (openstack.network) was not found." if network
                     else f"The project has {len(internal)} networks and the course names none.")
    if not pool_ok:
        parts.append(f"Floating IP pool {pool} (openstack.floating_ip_pool) is not an external network." if pool
                     else "There is no external network to take floating IPs from.")
    return check("OpenStack network", network_ok and pool_ok, " ".join(parts),
                 "Set openstack.network to one of the networks and openstack.floating_ip_pool to one of the external "
                 "ones (or openstack.floating_ips: false when the course network is routable).")


def key_pair_check(params: dict[str, Any], keypairs: list[dict[str, Any]] | None) -> dict[str, Any]:
    """``keypairs`` is read only when the course reuses a key pair (None otherwise)."""
    name = params["key_pair"]
    if not name:
        return check("OpenStack key pair", True, f"The course uses its own key pair {own_names(params)[1]}.")
    exists = name in [k["name"] for k in keypairs or []]
    return check("OpenStack key pair", exists,
                 f"Key pair {name} (openstack.key_pair) {'exists.' if exists else 'does not exist.'}",
                 f"Import it (openstack keypair create --public-key FILE {name}), or leave openstack.key_pair out to "
                 "let the course create its own.")


def seat_name_check(params: dict[str, Any], clashes: list[str]) -> dict[str, Any]:
    detail = (f"Servers named {', '.join(clashes)} exist but were not created by the course (they are not in its "
              f"record {params['record']}); they would be mistaken for seats." if clashes
              else "No other server uses a seat name.")
    return check("OpenStack seat names", not clashes, detail,
                 "Rename those servers, or set name_prefix or seat_names in the course file; if the course created "
                 "them (before it kept records), adopt them with -e course_adopt=ID,... (ids: openstack server list).")


def record_check(params: dict[str, Any]) -> dict[str, Any]:
    unrecorded = params["unrecorded"]
    return check("OpenStack record of the course's servers", not unrecorded,
                 unrecorded or f"The course's servers are in its record {params['record']}.",
                 "Adopt the servers that are the course's with -e course_adopt=all or -e course_adopt=ID,..., "
                 "as said above.")


def security_group_check(params: dict[str, Any], state: str, own: dict[str, Any]) -> dict[str, Any]:
    own_group = own_names(params)[0]
    if state == "foreign":
        detail = (f"Security group {own_group} ({own.get('id')}) exists in cloud {params['cloud']} but the course did "
                  f"not create it (it is not in its record {params['record']}), so the course does not take it over: "
                  "converging would replace its rules, and teardown would delete it.")
    elif state == "reused":
        detail = f"The course reuses security group {params['security_group']} as it is."
    else:
        detail = f"The course uses its own security group {own_group}."
    return check("OpenStack security group", state != "foreign", detail,
                 f"To launch the seats in it as it is, set openstack.security_group: {own_group} (a reused group is "
                 "never changed or deleted); otherwise rename or delete it. If the course created it before it kept "
                 f"records, adopt it: -e course_adopt={own.get('id') or 'ID'}.")


def shrink_check(params: dict[str, Any], surplus: list[str]) -> dict[str, Any]:
    shrink = params["allow_shrink"]
    if surplus:
        detail = (f"Servers {', '.join(surplus)} belong to the course but not to its {len(params['seat_names'])} seats "
                  f"(the course shrank){'; they will be deleted.' if shrink else '.'}")
    else:
        detail = "The course has no server beyond its seats."
    return check("OpenStack seats to remove", not surplus or shrink, detail,
                 "Raise seats again, or run with -e course_openstack_allow_shrink=true to delete them.")


def quota_checks(params: dict[str, Any], need: dict[str, int], quota: dict[str, dict[str, int]],
                 to_create: int) -> list[dict[str, Any]]:
    checks = []
    for res in QUOTA_RESOURCES:
        limit, used = quota[res]["limit"], quota[res]["used"]
        free = max(limit - used, 0)
        has = "no limit" if limit < 0 else f"{free} free (quota {limit}, {used} in use)"
        checks.append(check(f"OpenStack quota: {QUOTA_LABELS[res]}", limit < 0 or need[res] <= free,
                            f"the course needs {need[res]} more ({to_create} seats to create of flavour "
                            f"{params['flavor']}), the project has {has}.", QUOTA_FIX))
    return checks


def decide(params: dict[str, Any], project: dict[str, Any]) -> dict[str, Any]:
    """Every check, and what create needs, from what the project has (see read_project)."""
    plan = seat_plan(params, project["servers"])
    state, own_group = security_group_state(params, project["security_groups"])
    need = needs(params, project["flavor"], plan)
    checks = [
        login_check(params),
        flavor_check(params, project["flavor"]),
        image_check(params, project["images"]),
        image_profile_check(params, project["images"], project["all_images"]),
        network_check(params, project["networks"]),
        key_pair_check(params, project["keypairs"]),
        seat_name_check(params, plan["clashes"]),
        record_check(params),
        security_group_check(params, state, own_group),
        shrink_check(params, plan["surplus"]),
        *quota_checks(params, need, project["quota"], len(plan["missing"])),
    ]
    return {
        "checks": checks,
        "course_servers": [{"id": s["id"], "name": s["name"], "status": s.get("status", "")} for s in plan["mine"]],
        "missing": plan["missing"],
        "surplus": plan["surplus"],
        "security_group": {"state": state, "id": own_group.get("id", "")},
        "needs": need,
        "quota": project["quota"],
        "room": room(params, project["flavor"], need, project["quota"]),
    }


# --- the reads ----------------------------------------------------------------------------

def plain(resource: Any) -> dict[str, Any]:
    """An openstacksdk resource as the openstack.cloud info modules return it."""
    return resource.to_dict(computed=False)


def read_project(conn: Any, params: dict[str, Any]) -> dict[str, Any]:
    """What the checks need from the project, read with the calls the openstack.cloud info modules make."""
    flavor = conn.compute.find_flavor(params["flavor"]) if params["flavor"] else None
    images = [plain(i) for i in conn.search_images(name_or_id=params["image"])] if params["image"] else []
    # The whole image list only to name the images of the course's profile, when the image is refused.
    listed = profile_mismatch(params, images) and params["check_image_profile"]
    _project_id, quota = project_quota(conn)
    return {
        "flavor": plain(flavor) if flavor else None,
        "images": images,
        "all_images": [plain(i) for i in conn.search_images()] if listed else None,
        "networks": [plain(n) for n in conn.search_networks()],
        "keypairs": [plain(k) for k in conn.search_keypairs()] if params["key_pair"] else None,
        "servers": [plain(s) for s in conn.search_servers()],
        "security_groups": [plain(g) for g in conn.network.security_groups()],
        "quota": quota,
    }


NOT_READ = {"course_servers": None, "missing": None, "surplus": None, "security_group": None, "needs": None, "quota": None,
            "room": None}

ARGUMENT_SPEC: dict[str, Any] = {
    "cloud": {"type": "str", "required": True},
    "course": {"type": "str", "required": True},
    "seat_names": {"type": "list", "elements": "str", "default": []},
    "flavor": {"type": "str", "default": ""},
    "disk_gb": {"type": "int", "default": 0},
    "image": {"type": "str", "default": ""},
    "profile": {"type": "str", "default": ""},
    "check_image_profile": {"type": "bool", "default": True},
    "network": {"type": "str", "default": ""},
    "floating_ips": {"type": "bool", "default": True},
    "floating_ip_pool": {"type": "str", "default": ""},
    # Names of key pairs, not secrets.
    "key_pair": {"type": "str", "default": "", "no_log": False},
    "own_key_pair": {"type": "str", "default": "", "no_log": False},
    "security_group": {"type": "str", "default": ""},
    "own_security_group": {"type": "str", "default": ""},
    "owned_servers": {"type": "list", "elements": "str", "default": []},
    "unrecorded": {"type": "str", "default": ""},
    "security_group_record": {"type": "dict", "default": {}},
    "adopt": {"type": "list", "elements": "str", "default": []},
    "allow_shrink": {"type": "bool", "default": False},
    "record": {"type": "str", "default": ""},
    "auth": {"type": "str", "choices": ["clouds_yaml", "egi_token"], "default": "clouds_yaml"},
    "site": {"type": "str", "default": ""},
    "vo": {"type": "str", "default": ""},
    "login_failure": {"type": "dict", "options": {
        "step": {"type": "str", "default": ""},
        "output_hidden": {"type": "bool", "default": False},
        "error": {"type": "str", "default": ""},
    }},
}


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    params = module.params
    if params["login_failure"] is not None:
        module.exit_json(changed=False, checks=login_refused(params), **NOT_READ)
    if openstack is None:
        module.fail_json(msg=missing_required_lib("openstacksdk"))
    try:
        conn = openstack.connect(cloud=params["cloud"])
        project = read_project(conn, params)
    except (openstack.exceptions.SDKException, KeystoneError) as exc:
        # The cloud's answer as it is: the caller tries a passing one (502, 503, 504, 409) again.
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, **decide(params, project))


if __name__ == "__main__":
    main()
