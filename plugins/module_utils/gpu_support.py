"""Which NVIDIA driver branch drives which GPU, from the table in roles/course/vars/gpu_support.yml.

The table maps GPU models to their architecture and the range of driver branches
that support them (``gpus``: ``first_branch`` inclusive, ``last_branch`` inclusive,
either may be absent), and lists the production branches (``branches``) used to name
working alternatives. A provider adds which GPU its machine types carry: the course_aws
role merges EC2 families (``families``) and the types it proposes (``instance_types``)
from roles/course_aws/vars/instance_types.yml. Shared by the preflight module and the
cost filters.
"""

from __future__ import annotations

import re
from typing import Any

BRANCH_RE = re.compile(r"^\s*(\d{3})(?:\.\d+)*\s*$")


def parse_branch(branch: Any) -> int | None:
    """Return the branch number of '470', 470 or '470.256.02'; None when it is not one."""
    match = BRANCH_RE.match(str(branch))
    return int(match.group(1)) if match else None


def family_of(instance_type: str) -> str:
    """EC2 family of an instance type: 'g4dn' for 'g4dn.xlarge'."""
    return instance_type.split(".", 1)[0]


def gpu_of_type(table: dict[str, Any], instance_type: str, api_gpu_name: str | None = None) -> str | None:
    """GPU model of an instance type: the API's answer when given, else the table's ``families`` (AWS's)."""
    if api_gpu_name:
        return api_gpu_name
    return table.get("families", {}).get(family_of(instance_type))


def branch_drives(table: dict[str, Any], branch: int, gpu: str) -> bool:
    """True when driver branch ``branch`` supports GPU model ``gpu`` (unknown GPUs: False)."""
    entry = table.get("gpus", {}).get(gpu)
    if entry is None:
        return False
    first = entry.get("first_branch")
    last = entry.get("last_branch")
    return (first is None or branch >= int(first)) and (last is None or branch <= int(last))


def support_range(table: dict[str, Any], gpu: str) -> str:
    """Plain words for the branches that support ``gpu``: 'branch 410 or later'."""
    entry = table.get("gpus", {}).get(gpu, {})
    first, last = entry.get("first_branch"), entry.get("last_branch")
    if first is not None and last is not None:
        return f"branches {first} to {last}"
    if first is not None:
        return f"branch {first} or later"
    if last is not None:
        return f"branch {last} or earlier"
    return "any branch"


def working_branches(table: dict[str, Any], gpu: str) -> list[int]:
    """The table's production branches that drive ``gpu``, oldest first."""
    return [b for b in sorted(int(x) for x in table.get("branches", [])) if branch_drives(table, b, gpu)]


def working_types(table: dict[str, Any], branch: int, candidates: list[str] | None = None) -> list[str]:
    """Instance types (the table's ``instance_types`` unless given) whose GPU the branch drives."""
    types = candidates if candidates is not None else list(table.get("instance_types", []))
    result = []
    for instance_type in types:
        gpu = gpu_of_type(table, instance_type)
        if gpu is not None and branch_drives(table, branch, gpu):
            result.append(instance_type)
    return result


def architecture(table: dict[str, Any], gpu: str) -> str:
    """Architecture name of a GPU model ('Turing' for 'T4'), or 'unknown architecture'."""
    return table.get("gpus", {}).get(gpu, {}).get("architecture", "unknown architecture")


# --- GPU programs of a profile against the course's GPU -------------------------------
#
# A profile declares its GPU programs as ``gpu_programs``: {name, version, cuda, build,
# architectures, ptx}. ``cuda`` is the toolkit the program was built with; ``build`` is
# ``vendor`` (a binary as its vendor ships it) or ``source`` (built on the machine);
# ``architectures`` are the compute capabilities it carries native code (SASS) for and
# ``ptx`` those it carries PTX for. An absent ``architectures`` or ``ptx`` means not known
# (``ptx: []`` means none). Native code for X.y runs on X.z with z >= y; PTX for X.y is
# JIT-compiled by the driver for any GPU of X.y or later.

CAPABILITY_DOTTED_RE = re.compile(r"^(\d+)\.(\d)$")
CAPABILITY_ARCH_RE = re.compile(r"^(?:sm_|compute_)?(\d+?)(\d)[af]?$")
PROGRAM_KEYS = ("name", "version", "cuda", "build", "architectures", "ptx")
BUILDS = ("vendor", "source")
TABLE_FILE = "roles/course/vars/gpu_support.yml"
CHECK_ON_A_SEAT = (
    "Only the files can tell: on a seat, cuobjdump --list-elf and --list-ptx (in the CUDA toolkit's bin) "
    "list the code a program carries; or run each program on one seat before the course."
)

Capability = tuple[int, int]


class GpuProgramError(ValueError):
    """A gpu_programs entry that cannot be read."""


def parse_capability(value: Any) -> Capability | None:
    """(7, 5) from '7.5', 7.5, 'sm_75', 'compute_75' or '75'; None when it is not one."""
    text = str(value).strip().lower()
    match = CAPABILITY_DOTTED_RE.match(text) or CAPABILITY_ARCH_RE.match(text)
    return (int(match.group(1)), int(match.group(2))) if match else None


def capability_text(capability: Capability) -> str:
    """'7.5' for (7, 5)."""
    return f"{capability[0]}.{capability[1]}"


def toolkit_key(cuda: Any) -> str:
    """'8.0' for 8, '8.0' or 8.0; '11.0' for '11'."""
    text = str(cuda).strip()
    return text if "." in text else f"{text}.0"


def gpu_capability(table: dict[str, Any], gpu: str) -> Capability | None:
    """Compute capability of a GPU model from the table, or None when it gives none."""
    value = table.get("gpus", {}).get(gpu, {}).get("compute_capability")
    return parse_capability(value) if value is not None else None


def toolkit_reach(table: dict[str, Any], cuda: Any) -> tuple[Capability, Capability] | None:
    """(lowest, highest) compute capability a CUDA toolkit builds native code for, or None."""
    entry = table.get("cuda_toolkits", {}).get(toolkit_key(cuda))
    if not entry:
        return None
    lowest, highest = parse_capability(entry.get("lowest")), parse_capability(entry.get("highest"))
    if lowest is None or highest is None:
        return None
    return lowest, highest


def _capability_list_problems(where: str, key: str, value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        return [f"{where}.{key} must be a list of compute capabilities such as [\"3.5\", \"5.2\"] (got {value!r})."]
    bad = [item for item in value if parse_capability(item) is None]
    if bad:
        return [f"{where}.{key}: {', '.join(repr(b) for b in bad)} is not a compute capability; "
                "write them as \"5.2\" or sm_52."]
    return []


def program_problems(programs: Any) -> list[str]:
    """Every problem of a profile's gpu_programs, each saying what to write instead."""
    if programs is None:
        return []
    if not isinstance(programs, list):
        return [f"gpu_programs must be a list of {{name, version, cuda}} entries (got {type(programs).__name__})."]
    problems: list[str] = []
    for index, program in enumerate(programs):
        where = f"gpu_programs[{index}]"
        if not isinstance(program, dict):
            problems.append(f"{where} must be a mapping with name, version and cuda (got {program!r}).")
            continue
        where = f"gpu_programs[{index}] ({program.get('name', 'unnamed')})"
        missing = [key for key in ("name", "version", "cuda") if program.get(key) in (None, "")]
        if missing:
            problems.append(f"{where} has no {', '.join(missing)}; each GPU program needs name, version and cuda "
                            "(the CUDA toolkit it was built with, such as \"7.5\").")
        unknown = sorted(set(program) - set(PROGRAM_KEYS))
        if unknown:
            problems.append(f"{where}: unknown key {', '.join(unknown)}; the keys are {', '.join(PROGRAM_KEYS)}.")
        if program.get("build", "vendor") not in BUILDS:
            problems.append(f"{where}.build is {program.get('build')!r}; choose vendor (a vendor's binary) or "
                            "source (built on the machine).")
        for key in ("architectures", "ptx"):
            problems += _capability_list_problems(where, key, program.get(key))
    return problems


def _capabilities(values: list[Any] | None) -> list[Capability] | None:
    if values is None:
        return None
    return sorted(c for c in (parse_capability(v) for v in values) if c is not None)


def _names(capabilities: list[Capability]) -> str:
    return ", ".join(capability_text(c) for c in capabilities)


def program_label(table: dict[str, Any], program: dict[str, Any]) -> str:
    """'Gctf 1.06 (CUDA 7.5 build, reaches compute capability 5.2)'."""
    cuda = toolkit_key(program["cuda"])
    reach = toolkit_reach(table, cuda)
    head = f"{program['name']} {program['version']} (CUDA {cuda} build"
    return head + (f", reaches compute capability {capability_text(reach[1])})" if reach else ")")


def _verdict(program: dict[str, Any], label: str, verdict: str, detail: str) -> dict[str, Any]:
    return {"name": str(program["name"]), "version": str(program["version"]), "cuda": toolkit_key(program["cuda"]),
            "verdict": verdict, "detail": detail, "line": f"{label}: {detail}."}


def _without_native(word: str, gpu_name: str, ptx: list[Capability] | None, gpu: Capability,
                    carried: str = "") -> tuple[str, str]:
    """Verdict and detail of a program with no native code for the GPU: its PTX decides."""
    head = f"no native code for the {gpu_name} ({capability_text(gpu)})" + (f": it carries {carried}" if carried else "")
    if ptx is None:
        return "needs_ptx", f"{head}; runs only if the {word} carries PTX, not known"
    usable = [c for c in ptx if c <= gpu]
    if usable:
        return "ptx", (f"{head}; runs through its PTX for {capability_text(usable[-1])}, compiled by the driver "
                       "at start-up")
    return "cannot", f"cannot run on the {gpu_name} ({capability_text(gpu)}): no native code and no PTX it can use"


def program_fit(table: dict[str, Any], program: dict[str, Any], gpu: str | None,
                unknown_gpu: str = "the GPU model is not known") -> dict[str, Any]:
    """Whether one GPU program can run on GPU model ``gpu`` (None: not known, ``unknown_gpu`` says why).

    Returns {name, version, cuda, verdict, detail, line}; verdict is one of native, ptx (runs
    through its PTX), needs_ptx (runs only if it carries PTX, which is not known), cannot, unknown.
    """
    label = program_label(table, program)
    cuda = toolkit_key(program["cuda"])
    word = "build" if program.get("build") == "source" else "binary"
    if gpu is None:
        return _verdict(program, label, "unknown", f"unknown: {unknown_gpu}")
    capability = gpu_capability(table, gpu)
    if capability is None:
        return _verdict(program, label, "unknown", f"unknown: {TABLE_FILE} gives no compute capability for the {gpu}")
    reach = toolkit_reach(table, cuda)
    if reach is None:
        return _verdict(program, label, "unknown",
                        f"unknown: {TABLE_FILE} does not say which compute capabilities CUDA {cuda} builds reach")
    lowest, highest = reach
    gpu_text = f"the {gpu} ({capability_text(capability)})"
    if capability < lowest:
        return _verdict(program, label, "cannot",
                        f"cannot run on {gpu_text}: CUDA {cuda} builds start at compute capability "
                        f"{capability_text(lowest)}")
    ptx = _capabilities(program.get("ptx"))
    if capability > highest:
        return _verdict(program, label, *_without_native(word, gpu, ptx, capability))
    native = _capabilities(program.get("architectures"))
    if native is None:
        return _verdict(program, label, "unknown",
                        f"unknown: a CUDA {cuda} build can carry native code for {gpu_text}, but which "
                        f"architectures this {word} carries is not known")
    fitting = [c for c in native if c[0] == capability[0] and c[1] <= capability[1]]
    if fitting:
        return _verdict(program, label, "native",
                        f"runs on {gpu_text} with its native code for {capability_text(fitting[-1])}")
    return _verdict(program, label, *_without_native(word, gpu, ptx, capability, _names(native) or "none"))


def programs_fit(table: dict[str, Any], programs: list[dict[str, Any]] | None, gpu: str | None,
                 unknown_gpu: str = "the GPU model is not known") -> list[dict[str, Any]]:
    """program_fit of every program; raises GpuProgramError naming every malformed entry."""
    problems = program_problems(programs)
    if problems:
        raise GpuProgramError(" ".join(problems))
    return [program_fit(table, program, gpu, unknown_gpu) for program in programs or []]
