#!/usr/bin/env python3
"""Render argument specs as Markdown tables, and keep README sections in sync with them.

    argspec_docs.py                 rewrite every generated section in place
    argspec_docs.py --check         exit 1 when a section differs from its spec, or when an
                                    entry point has no section

A generated section sits between `<!-- argspec: ROLE ENTRY_POINT -->` and
`<!-- /argspec -->` in README.md or in a role's README.md. Every entry point that takes
options needs one, so that no role's variables are documented by hand.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import yaml

PROJECT = Path(__file__).resolve().parent.parent
SECTION = re.compile(r"(<!-- argspec: (\S+) (\S+) -->\n)(.*?)(<!-- /argspec -->)", re.S)


def _cell(text: Any) -> str:
    if isinstance(text, list):
        text = " ".join(str(t) for t in text)
    text = re.sub(r"[CI]\(([^)]*)\)", r"`\1`", str(text))
    return text.replace("|", "\\|").replace("\n", " ")


def _rows(options: dict[str, Any], prefix: str = "") -> list[str]:
    rows = []
    for name, opt in options.items():
        kind = opt.get("type", "str")
        if opt.get("elements"):
            kind = f"{kind} of {opt['elements']}"
        if "choices" in opt:
            kind += " (" + ", ".join(str(c) for c in opt["choices"]) + ")"
        required = "yes" if opt.get("required") else ""
        default = ""
        if "default" in opt:
            default = f"`{yaml.safe_dump(opt['default'], default_flow_style=True).strip().removesuffix('...').strip()}`"
        rows.append(f"| `{prefix}{name}` | {kind} | {required} | {default} | {_cell(opt.get('description', ''))} |")
        if opt.get("options"):
            rows += _rows(opt["options"], f"{prefix}{name}.")
    return rows


def render(role: str, entry: str) -> str:
    spec = yaml.safe_load((PROJECT / "roles" / role / "meta" / "argument_specs.yml").read_text())
    options = spec["argument_specs"][entry].get("options", {})
    head = ["| field | type | required | default | description |", "| --- | --- | --- | --- | --- |"]
    return "\n".join(head + _rows(options)) + "\n"


def sync(path: Path, check: bool) -> bool:
    text = path.read_text()
    new = SECTION.sub(lambda m: m.group(1) + render(m.group(2), m.group(3)) + m.group(5), text)
    if new == text:
        return True
    if check:
        print(f"{path.relative_to(PROJECT)}: generated tables differ from the argument specs; run scripts/argspec_docs.py")
        return False
    path.write_text(new)
    return True


# Entry points still documented only by their argument spec (ansible-doc -t role), each with
# what is missing. The check fails when one of them gets its section, so the list cannot go stale.
UNDOCUMENTED_ENTRY_POINTS = {
    ("course_openstack", "preflight"): "roles/course_openstack/README.md needs a section",
}


def entry_points_with_options() -> list[tuple[str, str]]:
    found = []
    for spec_file in sorted((PROJECT / "roles").glob("*/meta/argument_specs.yml")):
        specs = yaml.safe_load(spec_file.read_text())["argument_specs"]
        found += [(spec_file.parts[-3], entry) for entry, spec in specs.items() if spec.get("options")]
    return found


def missing_documentation(paths: list[Path]) -> list[str]:
    """Entry points without a generated section, or listed wrongly as such."""
    problems = []
    documented = {(m.group(2), m.group(3)) for p in paths if p.exists() for m in SECTION.finditer(p.read_text())}
    for role, entry in entry_points_with_options():
        listed = (role, entry) in UNDOCUMENTED_ENTRY_POINTS
        if (role, entry) in documented and listed:
            problems.append(f"{role} {entry} has its section now: remove it from UNDOCUMENTED_ENTRY_POINTS")
        elif (role, entry) not in documented and not listed:
            problems.append(f"{role} {entry}: no generated table; add '<!-- argspec: {role} {entry} -->' and "
                            f"'<!-- /argspec -->' to roles/{role}/README.md and run scripts/argspec_docs.py")
    return problems


def main() -> int:
    check = "--check" in sys.argv
    paths = [PROJECT / "README.md", *sorted((PROJECT / "roles").glob("*/README.md"))]
    results = [sync(p, check) for p in paths if p.exists()]
    problems = missing_documentation(paths)
    for problem in problems:
        print(problem)
    return 0 if all(results) and not problems else 1


if __name__ == "__main__":
    sys.exit(main())
