"""What plan.yml prints: the resources a course would create, the preflight results and which
of the profile's GPU programs can run on the course's GPU."""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleFilterError
from ansible_collections.i2pc.scipion_cloud.plugins.module_utils import course_names, gpu_support

NOT_RUN = "[--]  "


def _fix(check: dict[str, Any]) -> str:
    return check.get("fix") or "see the detail."


def course_preflight_lines(checks: list[dict[str, Any]]) -> list[str]:
    """One line per check: '[ok]   name: detail', '[FAIL] name: detail Fix: ...' or '[--]   name: not run: why'."""
    lines = []
    for item in checks:
        if item.get("ok"):
            lines.append(f"[ok]   {item['name']}: {item['detail']}")
        elif item.get("not_run"):
            lines.append(f"{NOT_RUN} {item['name']}: {item['detail']}")
        else:
            lines.append(f"[FAIL] {item['name']}: {item['detail']} Fix: {_fix(item)}")
    return lines


def _problems(checks: list[dict[str, Any]]) -> list[str]:
    """Each failed check with its fix, then the checks not run, grouped by what makes them run."""
    parts = [f"{c['name']}: {c['detail']} Fix: {_fix(c)}" for c in checks if not c.get("ok") and not c.get("not_run")]
    not_run: dict[str, list[str]] = {}
    for item in checks:
        if not item.get("ok") and item.get("not_run"):
            not_run.setdefault(_fix(item), []).append(item["name"])
    parts += [f"not run: {', '.join(names)}. Fix: {fix}" for fix, names in not_run.items()]
    return parts


def course_preflight_refusal(checks: list[dict[str, Any]], course: str) -> str:
    """The message that refuses a course: every failed check with what to do, and the checks not run
    ('' when every check passed)."""
    parts = _problems(checks)
    if not parts:
        return ""
    return f"Preflight refused course {course} before creating anything. " + " | ".join(parts)


def course_plan_refusal(checks: list[dict[str, Any]], course: str, estimate: dict[str, Any] | None = None,
                        sites: list[str] | None = None) -> str:
    """Everything to fix before the course can be created: failed checks, checks not run, a course the
    price table cannot price and a budget verdict that refuses it ('' when there is nothing). A course
    over several sites (``sites``; its checks are named "<site>: ...") is also told how to go ahead
    without the sites whose checks failed."""
    parts = _problems(checks)
    failing = [site for site in sites or [] if any(not c.get("ok") and c["name"].startswith(f"{site}: ") for c in checks)]
    estimate = estimate or {}
    if estimate.get("error"):
        parts.append(f"cost estimate: {estimate['error']}")
    elif estimate.get("budget") and not estimate["budget"].get("ok", True):
        parts.append(f"budget: {estimate['budget']['message']}")
    if not parts:
        return ""
    numbered = " ".join(f"({number}) {part}" for number, part in enumerate(parts, start=1))
    without = (f" To go ahead on the other sites while {' and '.join(failing)} cannot be fixed, leave "
               f"{'it' if len(failing) == 1 else 'them'} out: -e course_skip_sites={','.join(failing)} (the seats there are "
               "then reported missing, and a later run without it creates them)." if failing else "")
    return f"Plan refused course {course} before creating anything; {len(parts)} to fix: {numbered}{without}"


def _cidrs(values: list[str]) -> str:
    return ", ".join(values) if values else "nobody (closed)"


def course_placements(aws: dict[str, Any]) -> list[dict[str, str]]:
    """The placements that name a subnet or a zone, in order ([] when the region picks).

    Reads ``aws.placements`` (the normalised course); a course file of before placements
    gives its single ``aws.subnet_id``.
    """
    given = aws.get("placements")
    if given is None:
        given = [{"subnet_id": aws.get("subnet_id") or "", "availability_zone": ""}]
    chosen = []
    for entry in given:
        subnet = str(entry.get("subnet_id") or "").strip()
        zone = str(entry.get("availability_zone") or "").strip()
        if subnet or zone:
            chosen.append({"subnet_id": subnet, "availability_zone": zone})
    return chosen


def _choice_lines(aws: dict[str, Any], placements: list[dict[str, str]]) -> list[str]:
    """The fallback instance types and the placements, each in the order they are tried."""
    types = list(dict.fromkeys([aws["instance_type"], *(aws.get("instance_types") or [])]))
    lines = []
    if len(types) > 1:
        lines.append(f"Instance types, in order: {', '.join(types)} (a fallback is tried for a seat when the types "
                     "before it have no capacity)")
    if placements:
        named = [f"subnet {p['subnet_id']}" if p["subnet_id"] else f"zone {p['availability_zone']}" for p in placements]
        lines.append(f"Placements, in order: {', '.join(named)}")
    else:
        lines.append(f"Placements: any zone of {aws['region']} (AWS picks)")
    return lines


def _aws_resources(course: dict[str, Any]) -> list[str]:
    aws, access, name = course["aws"], course["access"], course["name"]
    placements = course_placements(aws)
    key = course_names.key_pair_name(name)
    group = course_names.security_group_name(name)
    rules = f"SSH 22/tcp from {_cidrs(access['ssh_cidrs'])}; HTTPS 443/tcp from {_cidrs(access['web_cidrs'])}"
    image = aws.get("image_id") or (
        f"newest AMI named {aws.get('image_name')} owned by {', '.join(aws.get('image_owners') or ['self'])}"
        if aws.get("image_name") else "none set (aws.image_id or aws.image_name)"
    )
    tags = {**course.get("tags", {}), **course_names.own_tags(name)}
    lines = [
        f"AWS region {aws['region']}, tags on everything: {', '.join(f'{k}={v}' for k, v in tags.items())}",
        (f"Key pair: {aws['key_pair']} (aws.key_pair, reused; {key} is created if it does not exist)"
         if aws.get("key_pair") else f"Key pair: {key} (new; private key in {course.get('output_dir', 'output/' + name)}/{key}.pem)"),
        (f"Security group: {aws['security_group']} (aws.security_group, reused as it is; {group} with {rules} "
         "is created if it does not exist)" if aws.get("security_group") else f"Security group: {group} (new): {rules}"),
        f"Instances: {course['seats']} x {aws['instance_type']} ({'spot' if aws.get('spot') else 'on-demand'}), "
        f"image {image}, encrypted gp3 root volume {course['disk_gb']} GB each"
        + ("" if any(p["subnet_id"] for p in placements) else ", default VPC"),
        *_choice_lines(aws, placements),
        "Machines: " + ", ".join(course["seat_names"]),
        (f"Elastic IPs: {course['seats']} (one per seat, kept across stop/start)" if aws.get("elastic_ips")
         else "Elastic IPs: none (each seat gets a new public IP at each start)"),
    ]
    return lines


def _openstack_resources(course: dict[str, Any]) -> list[str]:
    stack, access, name = course["openstack"], course["access"], course["name"]
    key, group = course_names.key_pair_name(name), course_names.security_group_name(name)
    where = ", ".join(x for x in (stack.get("site"), stack.get("vo")) if x)
    return [
        f"OpenStack cloud {stack['cloud']}" + (f" ({where})" if where else ""),
        f"Key pair: {stack['key_pair']} (reused)" if stack.get("key_pair") else f"Key pair: {key} (new)",
        (f"Security group: {stack['security_group']} (reused)" if stack.get("security_group") else
         f"Security group: {group} (new): SSH 22/tcp from {_cidrs(access['ssh_cidrs'])}; "
         f"HTTPS 443/tcp from {_cidrs(access['web_cidrs'])}"),
        f"Servers: {course['seats']} x flavour {stack['flavor']}, image {stack['image']}, disk {course['disk_gb']} GB"
        + (f", network {stack['network']}" if stack.get("network") else ""),
        "Machines: " + ", ".join(course["seat_names"]),
        (f"Floating IPs: {course['seats']}" + (f" from {stack['floating_ip_pool']}" if stack.get("floating_ip_pool") else "")
         if stack.get("floating_ips") else "Floating IPs: none"),
    ]


def _local_resources(course: dict[str, Any]) -> list[str]:
    local = course.get("local") or {}
    address, port = local.get("bind_address", "127.0.0.1"), int(local.get("base_port", 6901))
    seats = [f"{n} on https://{address}:{port + i}/vnc.html" for i, n in enumerate(course["seat_names"])]
    return [
        f"Local containers: {course['seats']} from image {local.get('image') or 'the local Debian 12 systemd image'}",
        "Machines: " + ", ".join(seats),
    ]


def course_plan_resources(course: dict[str, Any]) -> list[str]:
    """Lines naming every resource the course would create, per provider."""
    builders = {"aws": _aws_resources, "openstack": _openstack_resources, "local": _local_resources}
    head = f"Course {course['name']}: {course['seats']} seats on {course['provider']}, profile {course['profile']}"
    return [head, *builders[course["provider"]](course)]


def course_seat_lines(seats: dict[str, Any] | None, course: dict[str, Any]) -> list[str]:
    """Where the course's recorded machines are (type, zone), from the preflight's ``seats``."""
    if not seats:
        return []
    lines = [seats["note"]] if seats.get("note") else []
    recorded, machines = seats.get("recorded", 0), seats.get("machines")
    region = (course.get("aws") or {}).get("region", "")
    if not recorded:
        return lines
    if machines is None:
        return lines + [f"The course's record names {recorded} machine(s) in {region}; where they are is read "
                        "only with working credentials."]
    lines.append(f"The course already has {len(machines)} of its {recorded} recorded machine(s) in {region}:")
    lines += [f"  {m['name']}: {m['instance_type']} in {m['availability_zone'] or 'an unknown zone'}"
              + (f", subnet {m['subnet_id']}" if m.get("subnet_id") else "") + f" ({m['state']})" for m in machines]
    return lines


def _course_gpu(course: dict[str, Any], gpu_name: str | None) -> tuple[str | None, str, str]:
    """(GPU model or None, where it is, why it is not known) of a course's seats."""
    provider = course.get("provider")
    if provider == "aws":
        instance_type = course["aws"]["instance_type"]
        return gpu_name, instance_type, f"no NVIDIA GPU is known for {instance_type}"
    if provider == "openstack":
        flavour = course["openstack"]["flavor"]
        return gpu_name, f"flavour {flavour}", f"the GPU model of flavour {flavour} is not known"
    return gpu_name, "local containers", "local containers are given no known GPU model"


def course_gpu_fit(course: dict[str, Any], profile: dict[str, Any], table: dict[str, Any],
                   gpu_name: str | None = None) -> dict[str, Any]:
    """Which of the profile's gpu_programs can run on the course's GPU: {gpu, programs, lines}.

    ``gpu_name`` is the GPU model the provider named (AWS: DescribeInstanceTypes, else the family
    table of roles/course_aws/vars/instance_types.yml); without it the GPU stays unknown.
    ``table`` is the provider-neutral GPU support table (roles/course/vars/gpu_support.yml).
    """
    programs = profile.get("gpu_programs") or []
    name = profile.get("profile_name") or course.get("profile", "?")
    if not programs:
        return {"gpu": None, "programs": [], "lines": []}
    if not profile.get("gpu", False):
        return {"gpu": None, "programs": [],
                "lines": [f"GPU programs of profile {name}: the course runs without GPU components (gpu: false), "
                          "so they have no GPU to run on."]}
    gpu, where, unknown = _course_gpu(course, gpu_name)
    try:
        verdicts = gpu_support.programs_fit(table, programs, gpu, unknown)
    except gpu_support.GpuProgramError as exc:
        raise AnsibleFilterError(f"Profile {name}: {exc}") from exc
    capability = gpu_support.gpu_capability(table, gpu) if gpu else None
    if gpu and capability:
        head = (f"GPU programs of profile {name} on the {gpu} (compute capability "
                f"{gpu_support.capability_text(capability)}) of {where}:")
    elif gpu:
        head = f"GPU programs of profile {name} on the {gpu} of {where}:"
    else:
        head = f"GPU programs of profile {name} on {where}:"
    lines = [head, *(v["line"] for v in verdicts)]
    if gpu and any(v["verdict"] in ("needs_ptx", "unknown") for v in verdicts):
        lines.append(gpu_support.CHECK_ON_A_SEAT)
    return {"gpu": gpu, "programs": verdicts, "lines": lines}


class FilterModule:
    """Plan report filters."""

    def filters(self) -> dict[str, Any]:
        return {
            "course_preflight_lines": course_preflight_lines,
            "course_preflight_refusal": course_preflight_refusal,
            "course_plan_refusal": course_plan_refusal,
            "course_seat_lines": course_seat_lines,
            "course_plan_resources": course_plan_resources,
            "course_gpu_fit": course_gpu_fit,
        }
