#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Combine per-seat verification results into one table (HTML) and one JUnit XML."""

from __future__ import annotations

DOCUMENTATION = r"""
module: course_verify_report
short_description: Write a course's check-by-seat verification report
description:
  - Reads, for each seat, the testinfra JUnit XML C(<seat>-testinfra.xml) and the browser login
    report C(<seat>-browser.json) from I(results_dir), and writes into I(output_dir) C(verify.html) (a
    check x seat table, green/red/grey, one row a check and one column a seat, with a summary row, the
    failing detail on hover and listed below) and C(verify.xml) (JUnit, one test suite per seat).
  - Check names leave out testinfra's host id (C(podman://NAME), C(ssh://IP)), so that the same check
    has the same name on every seat.
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
  testinfra_hosts:
    description:
      - Per seat, the host that testinfra was given (C(--hosts), for example C(podman://NAME) or
        C(ssh://USER@IP)); its id in the test ids is left out of the check names. Seats not listed
        keep their check names as pytest wrote them.
    type: dict
    default: {}
  sites:
    description:
      - Per seat, the site that holds it (a course over several sites), shown beside the seat's name in the
        report and returned with the seat. Seats not listed show no site.
    type: dict
    default: {}
  results_dir:
    description: Folder holding the per-seat result files.
    type: path
    required: true
  output_dir:
    description: Folder to write C(verify.html) and C(verify.xml) into.
    type: path
    required: true
author: I2PC scipion_cloud maintainers (@I2PC)
"""

EXAMPLES = r"""
- name: Write the verification report
  i2pc.scipion_cloud.course_verify_report:
    course: madrid
    seats: [madrid-training-01, madrid-training-02]
    testinfra_hosts: {madrid-training-01: "ssh://ubuntu@203.0.113.10", madrid-training-02: "ssh://ubuntu@203.0.113.11"}
    results_dir: output/madrid/verify
    output_dir: output/madrid
  register: report
"""

RETURN = r"""
seats:
  description:
    - Per seat, the counts of passed, failed and skipped checks, and whether it is green.
    - C(failures) lists each failed check of the seat with the first line of its detail (at most 300 characters),
      so that the run's own output says what failed without opening the report.
    - C(site) is the seat's site from O(sites) ("" when not given).
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
import re
import xml.etree.ElementTree as ET
from typing import Any

from ansible.module_utils.basic import AnsibleModule

# One assignment a name: ansible-doc reads module-level names and cannot read a tuple assignment.
PASS = "passed"
FAIL = "failed"
SKIP = "skipped"


def testinfra_host_id(host: str) -> str:
    """The id testinfra gives a host in test ids: `ssh://user@ip` -> `ssh://ip` (its backend's
    connection type and host name), `podman://name` unchanged."""
    scheme, sep, rest = host.partition("://")
    if not sep:
        return host
    return f"{scheme}://{rest.split('?', 1)[0].rpartition('@')[2]}"


def without_host_id(test_name: str, host_id: str) -> str:
    """`check[podman://seat]` -> `check`, `check[podman://seat-unit]` -> `check[unit]`."""
    if not host_id:
        return test_name
    base, bracket, params = test_name.partition("[")
    if not bracket or not params.startswith(host_id):
        return test_name
    rest = params[len(host_id):]
    if rest == "]":
        return base
    return f"{base}[{rest[1:]}" if rest.startswith("-") else test_name


def read_testinfra(path: str, host_id: str = "") -> list[dict[str, str]]:
    """Checks from a pytest JUnit XML: name, outcome and detail."""
    if not os.path.exists(path):
        return [{"name": "testinfra", "outcome": FAIL, "detail": f"no result file {os.path.basename(path)}", "seat_only": True}]
    checks = []
    for case in ET.parse(path).getroot().iter("testcase"):
        test_name = without_host_id(case.get("name") or "", host_id)
        name = f"{case.get('classname', '').rsplit('.', 1)[-1]}::{test_name}".lstrip(":")
        outcome, detail = PASS, ""
        for child in case:
            if child.tag in ("failure", "error"):
                outcome, detail = FAIL, (child.get("message") or child.text or "")[:2000]
            elif child.tag == "skipped":
                outcome, detail = SKIP, child.get("message") or ""
        checks.append({"name": name, "outcome": outcome, "detail": detail})
    return checks or [{"name": "testinfra", "outcome": FAIL, "detail": "no test ran", "seat_only": True}]


def read_browser(path: str) -> dict[str, str]:
    if not os.path.exists(path):
        return {"name": "novnc_login", "outcome": FAIL, "detail": f"no result file {os.path.basename(path)}"}
    try:
        with open(path, encoding="utf-8") as handle:
            report = json.load(handle)
    except ValueError as exc:
        return {"name": "novnc_login", "outcome": FAIL, "detail": f"unreadable browser report: {exc}"}
    detail = (f"connected={report.get('connected')} status='{report.get('status', '')}' "
              f"canvas {report.get('width')}x{report.get('height')} colours={report.get('colours')}")
    return {"name": "novnc_login", "outcome": PASS if report.get("rendered") else FAIL, "detail": detail,
            "screenshot": report.get("screenshot") or ""}


def check_label(name: str) -> tuple[str, str]:
    """(group, words) of a check: `test_seat_desktop::test_unit_enabled_and_running[x]` ->
    ("desktop", "unit enabled and running: x")."""
    if name == "novnc_login":
        return "browser", "noVNC login with the seat's password"
    module, _separator, test = name.rpartition("::")
    group = re.sub(r"^test_(seat_)?", "", module).replace("_", " ") or "checks"
    base, _bracket, params = test.partition("[")
    words = re.sub(r"^test_", "", base).replace("_", " ")
    return group, f"{words}: {params[:-1]}" if params else words


def complete(table: dict[str, list[dict[str, str]]]) -> dict[str, list[dict[str, str]]]:
    """Every seat gets every check that ran anywhere: one missing on a seat is a failure there.
    A seat's own trouble (no result file) is not asked of the other seats."""
    names = list(dict.fromkeys(c["name"] for results in table.values() for c in results if not c.get("seat_only")))
    done = {}
    for seat, results in table.items():
        have = {c["name"] for c in results}
        done[seat] = results + [{"name": n, "outcome": FAIL, "detail": "no result for this seat: the check did not run there"}
                                for n in names if n not in have]
    return done


def render_html(course: str, table: dict[str, list[dict[str, str]]], sites: dict[str, str] | None = None) -> str:
    """One row a check, one column a seat (with its site, if any); the first row sums up each seat."""
    sites = sites or {}
    seats = list(table)
    by_seat = {seat: {c["name"]: c for c in results} for seat, results in table.items()}
    checks = sorted({c["name"] for results in table.values() for c in results}, key=lambda n: (check_label(n), n))
    colours = {PASS: "#2e7d32", FAIL: "#c62828", SKIP: "#9e9e9e"}
    labels = {PASS: "ok", FAIL: "FAIL", SKIP: "skip"}

    def cell(seat: str, check: str) -> str:
        c = by_seat[seat].get(check)
        if c is None:  # another seat's own trouble (its result file is missing)
            return '<td class="na" title="not a check of this seat">-</td>'
        return f'<td style="background:{colours[c["outcome"]]}" title="{html.escape(c["detail"])}">{labels[c["outcome"]]}</td>'

    summary, ready = [], 0
    for seat in seats:
        bad = sum(c["outcome"] == FAIL for c in table[seat])
        ready += not bad
        shot = next((c.get("screenshot") for c in table[seat] if c.get("screenshot")), "")
        link = f' <a href="verify/{html.escape(os.path.basename(shot))}">desktop</a>' if shot else ""
        text = f"{bad} to fix" if bad else "ready"
        summary.append(f'<td class="sum" style="background:{colours[FAIL if bad else PASS]}">{text}{link}</td>')
    rows, group_seen = [], None
    for check in checks:
        group, words = check_label(check)
        if group != group_seen:
            rows.append(f'<tr class="group"><th colspan="{len(seats) + 1}">{html.escape(group)}</th></tr>')
            group_seen = group
        rows.append(f'<tr><th class="check" title="{html.escape(check)}">{html.escape(words)}</th>'
                    f'{"".join(cell(seat, check) for seat in seats)}</tr>')
    failures = [f"<li><b>{html.escape(seat)}</b>: {html.escape(' / '.join(check_label(c['name'])))}"
                f"<pre>{html.escape(c['detail'])}</pre></li>"
                for seat, results in table.items() for c in results if c["outcome"] == FAIL]
    head = "".join(f'<th class="seat">{html.escape(seat + (f" ({sites[seat]})" if sites.get(seat) else ""))}</th>'
                   for seat in seats)
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(course)}: verification</title>"
        "<style>body{font-family:sans-serif}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
        "padding:3px 6px;font-size:12px}td{color:#fff;text-align:center}th.check{text-align:left;font-weight:normal}"
        "th.seat{writing-mode:vertical-rl;transform:rotate(180deg);white-space:nowrap}"
        "tr.group th{text-align:left;background:#eee}td.sum a{color:#fff}td.na{color:#000}</style></head><body>"
        f"<h1>Course {html.escape(course)}: seat verification</h1>"
        f"<p>{ready} of {len(seats)} seats ready. Hover over a cell for its detail; failures are listed below the table.</p>"
        f"<table><tr><th>check</th>{head}</tr><tr><th class='check'><b>seat ready?</b></th>{''.join(summary)}</tr>"
        f"{''.join(rows)}</table>"
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


def first_line(detail: str, limit: int = 300) -> str:
    """The first non-empty line of a check's detail, cut to `limit` characters."""
    line = next((ln.strip() for ln in detail.splitlines() if ln.strip()), "")
    return line if len(line) <= limit else line[:limit - 3] + "..."


def summarise(table: dict[str, list[dict[str, str]]], sites: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Per seat: its site, the counts, whether it is green, and each failed check with its first line."""
    sites = sites or {}
    summary = []
    for seat, results in table.items():
        counts = {k: sum(c["outcome"] == k for c in results) for k in (PASS, FAIL, SKIP)}
        failures = [{"check": c["name"], "detail": first_line(c.get("detail", ""))} for c in results if c["outcome"] == FAIL]
        summary.append({"seat": seat, "site": sites.get(seat, ""), **counts, "ok": counts[FAIL] == 0, "failures": failures})
    return summary


def write_if_changed(path: str, content: str) -> bool:
    if os.path.exists(path):
        with open(path, encoding="utf-8") as handle:
            if handle.read() == content:
                return False
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(content)
    return True


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "course": {"type": "str", "required": True},
            "seats": {"type": "list", "elements": "str", "required": True},
            "testinfra_hosts": {"type": "dict", "default": {}},
            "sites": {"type": "dict", "default": {}},
            "results_dir": {"type": "path", "required": True},
            "output_dir": {"type": "path", "required": True},
        },
        supports_check_mode=True,
    )
    course, folder = module.params["course"], module.params["results_dir"]
    table = {
        seat: read_testinfra(os.path.join(folder, f"{seat}-testinfra.xml"),
                             testinfra_host_id(module.params["testinfra_hosts"].get(seat, "")))
        + [read_browser(os.path.join(folder, f"{seat}-browser.json"))]
        for seat in module.params["seats"]
    }
    table = complete(table)
    summary = summarise(table, module.params["sites"])
    out = module.params["output_dir"]
    html_path, junit_path = os.path.join(out, "verify.html"), os.path.join(out, "verify.xml")
    changed = False
    if not module.check_mode:
        changed = write_if_changed(html_path, render_html(course, table, module.params["sites"]))
        changed = write_if_changed(junit_path, render_junit(course, table)) or changed
    module.exit_json(changed=changed, seats=summary, html=html_path, junit=junit_path,
                     failed_seats=[s["seat"] for s in summary if not s["ok"]])


if __name__ == "__main__":
    main()
