#!/usr/bin/python
"""Combine per-seat verification results into one table (HTML) and one JUnit XML."""

from __future__ import annotations

DOCUMENTATION = r"""
module: course_verify_report
short_description: Write a course's seat-by-check verification report
description:
  - Reads, for each seat, the testinfra JUnit XML C(<seat>-testinfra.xml) and the browser login
    report C(<seat>-browser.json) from I(results_dir), and writes into I(output_dir) C(verify.html) (a
    seat x check table, green/red/grey, with the failing detail) and C(verify.xml) (JUnit, one test
    suite per seat).
  - A seat whose result files are missing counts as failed, so nothing passes by omission.
options:
  course:
    description: Course name, shown in the report.
    type: str
    required: true
  seats:
    description: Seat names to report on, in order.
    type: list
    elements: str
    required: true
  results_dir:
    description: Folder holding the per-seat result files.
    type: path
    required: true
  output_dir:
    description: Folder to write C(verify.html) and C(verify.xml) into.
    type: path
    required: true
author: I2PC scipion_cloud maintainers
"""

EXAMPLES = r"""
- name: Write the verification report
  i2pc.scipion_cloud.course_verify_report:
    course: madrid
    seats: [madrid-training-01, madrid-training-02]
    results_dir: output/madrid/verify
    output_dir: output/madrid
  register: report
"""

RETURN = r"""
seats:
  description: Per seat, the counts of passed, failed and skipped checks, and whether it is green.
  returned: always
  type: list
  elements: dict
failed_seats:
  description: Names of the seats with a failed or missing check.
  returned: always
  type: list
  elements: str
html:
  description: Path of the HTML report.
  returned: always
  type: str
junit:
  description: Path of the combined JUnit XML.
  returned: always
  type: str
"""

import html
import json
import os
import xml.etree.ElementTree as ET
from typing import Any

from ansible.module_utils.basic import AnsibleModule

PASS, FAIL, SKIP = "passed", "failed", "skipped"


def read_testinfra(path: str) -> list[dict[str, str]]:
    """Checks from a pytest JUnit XML: name, outcome and detail."""
    if not os.path.exists(path):
        return [{"name": "testinfra", "outcome": FAIL, "detail": f"no result file {os.path.basename(path)}"}]
    checks = []
    for case in ET.parse(path).getroot().iter("testcase"):
        name = f"{case.get('classname', '').rsplit('.', 1)[-1]}::{case.get('name')}".lstrip(":")
        outcome, detail = PASS, ""
        for child in case:
            if child.tag in ("failure", "error"):
                outcome, detail = FAIL, (child.get("message") or child.text or "")[:2000]
            elif child.tag == "skipped":
                outcome, detail = SKIP, child.get("message") or ""
        checks.append({"name": name, "outcome": outcome, "detail": detail})
    return checks or [{"name": "testinfra", "outcome": FAIL, "detail": "no test ran"}]


def read_browser(path: str) -> dict[str, str]:
    if not os.path.exists(path):
        return {"name": "novnc_login", "outcome": FAIL, "detail": f"no result file {os.path.basename(path)}"}
    try:
        report = json.loads(open(path, encoding="utf-8").read())
    except ValueError as exc:
        return {"name": "novnc_login", "outcome": FAIL, "detail": f"unreadable browser report: {exc}"}
    detail = (f"connected={report.get('connected')} status='{report.get('status', '')}' "
              f"canvas {report.get('width')}x{report.get('height')} colours={report.get('colours')}")
    return {"name": "novnc_login", "outcome": PASS if report.get("rendered") else FAIL, "detail": detail,
            "screenshot": report.get("screenshot") or ""}


def render_html(course: str, table: dict[str, list[dict[str, str]]]) -> str:
    checks = sorted({c["name"] for seat in table.values() for c in seat})
    colours = {PASS: "#2e7d32", FAIL: "#c62828", SKIP: "#9e9e9e", None: "#ffffff"}
    rows = []
    for seat, results in table.items():
        by_name = {c["name"]: c for c in results}
        cells = []
        for check in checks:
            c = by_name.get(check)
            outcome = c["outcome"] if c else None
            title = html.escape(c["detail"]) if c else "not run for this seat"
            label = {PASS: "ok", FAIL: "FAIL", SKIP: "skip", None: ""}[outcome]
            cells.append(f'<td style="background:{colours[outcome]};color:#fff" title="{title}">{label}</td>')
        rows.append(f"<tr><th>{html.escape(seat)}</th>{''.join(cells)}</tr>")
    failures = [f"<li><b>{html.escape(seat)}</b> {html.escape(c['name'])}: <pre>{html.escape(c['detail'])}</pre></li>"
                for seat, results in table.items() for c in results if c["outcome"] == FAIL]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in checks)
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(course)}: verification</title>"
        "<style>body{font-family:sans-serif}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
        "padding:3px 6px;font-size:12px}th{writing-mode:horizontal-tb}</style></head><body>"
        f"<h1>Course {html.escape(course)}: seat verification</h1>"
        f"<table><tr><th>seat</th>{head}</tr>{''.join(rows)}</table>"
        f"<h2>Failures</h2><ul>{''.join(failures) or '<li>none</li>'}</ul></body></html>\n"
    )


def render_junit(course: str, table: dict[str, list[dict[str, str]]]) -> str:
    root = ET.Element("testsuites", name=f"verify {course}")
    for seat, results in table.items():
        suite = ET.SubElement(root, "testsuite", name=seat, tests=str(len(results)),
                              failures=str(sum(c["outcome"] == FAIL for c in results)),
                              skipped=str(sum(c["outcome"] == SKIP for c in results)))
        for c in results:
            case = ET.SubElement(suite, "testcase", classname=seat, name=c["name"])
            if c["outcome"] == FAIL:
                ET.SubElement(case, "failure", message=c["detail"][:200]).text = c["detail"]
            elif c["outcome"] == SKIP:
                ET.SubElement(case, "skipped", message=c["detail"])
    return ET.tostring(root, encoding="unicode") + "\n"


def write_if_changed(path: str, content: str) -> bool:
    if os.path.exists(path) and open(path, encoding="utf-8").read() == content:
        return False
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(content)
    return True


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "course": {"type": "str", "required": True},
            "seats": {"type": "list", "elements": "str", "required": True},
            "results_dir": {"type": "path", "required": True},
            "output_dir": {"type": "path", "required": True},
        },
        supports_check_mode=True,
    )
    course, folder = module.params["course"], module.params["results_dir"]
    table = {
        seat: read_testinfra(os.path.join(folder, f"{seat}-testinfra.xml"))
        + [read_browser(os.path.join(folder, f"{seat}-browser.json"))]
        for seat in module.params["seats"]
    }
    summary: list[dict[str, Any]] = []
    for seat, results in table.items():
        counts = {k: sum(c["outcome"] == k for c in results) for k in (PASS, FAIL, SKIP)}
        summary.append({"seat": seat, **counts, "ok": counts[FAIL] == 0})
    out = module.params["output_dir"]
    html_path, junit_path = os.path.join(out, "verify.html"), os.path.join(out, "verify.xml")
    changed = False
    if not module.check_mode:
        changed = write_if_changed(html_path, render_html(course, table))
        changed = write_if_changed(junit_path, render_junit(course, table)) or changed
    module.exit_json(changed=changed, seats=summary, html=html_path, junit=junit_path,
                     failed_seats=[s["seat"] for s in summary if not s["ok"]])


if __name__ == "__main__":
    main()
