"""The verification report marks every check x seat, and a missing result is a failure."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("course_verify_report", PROJECT / "plugins/modules/course_verify_report.py")
report = importlib.util.module_from_spec(spec)
spec.loader.exec_module(report)

JUNIT = (
    '<?xml version="1.0"?><testsuites><testsuite name="pytest">\n'
    '<testcase classname="tests.testinfra.test_desktop" name="test_vnc_listens_on_localhost[podman://a]"/>\n'
    '<testcase classname="tests.testinfra.test_cuda" name="test_nvidia_smi[podman://a]">'
    '<skipped message="no GPU: /dev/nvidia0 absent"/></testcase>\n'
    '<testcase classname="tests.testinfra.test_scipion3" name="test_scipion3_runs[podman://a]">'
    '<failure message="scipion3 not found">AssertionError: scipion3 not found</failure></testcase>\n'
    "</testsuite></testsuites>"
)


def test_seat_checks_are_read_with_outcomes_and_details(tmp_path):
    (tmp_path / "seat-01-testinfra.xml").write_text(JUNIT)
    (tmp_path / "seat-01-browser.json").write_text(json.dumps({"rendered": True, "connected": True, "width": 1280}))
    checks = report.read_testinfra(str(tmp_path / "seat-01-testinfra.xml"))
    assert [(c["name"], c["outcome"]) for c in checks] == [
        ("test_desktop::test_vnc_listens_on_localhost[podman://a]", "passed"),
        ("test_cuda::test_nvidia_smi[podman://a]", "skipped"),
        ("test_scipion3::test_scipion3_runs[podman://a]", "failed"),
    ]
    assert checks[2]["detail"] == "scipion3 not found"
    assert report.read_browser(str(tmp_path / "seat-01-browser.json"))["outcome"] == "passed"


def test_missing_results_fail_the_seat(tmp_path):
    assert report.read_testinfra(str(tmp_path / "nope.xml"))[0]["outcome"] == "failed"
    assert report.read_browser(str(tmp_path / "nope.json"))["outcome"] == "failed"


def test_html_and_junit_hold_every_seat_and_the_failure_detail():
    table = {
        "seat-01": [{"name": "a", "outcome": "passed", "detail": ""}, {"name": "b", "outcome": "failed", "detail": "boom <x>"}],
        "seat-02": [{"name": "a", "outcome": "skipped", "detail": "no GPU"}],
    }
    page = report.render_html("demo", report.complete(table))
    assert page.count('<th class="seat">seat-0') == 2
    assert "boom &lt;x&gt;" in page and ">FAIL<" in page and ">skip<" in page
    junit = report.render_junit("demo", report.complete(table))
    assert '<testsuite name="seat-01" tests="2" failures="1" skipped="0">' in junit
    # Check b did not run on seat-02: a failure there, not a silent gap.
    assert '<testsuite name="seat-02" tests="2" failures="1" skipped="1">' in junit


def test_check_names_leave_out_the_host_so_seats_share_rows():
    assert report.testinfra_host_id("podman://madrid-training-01") == "podman://madrid-training-01"
    assert report.testinfra_host_id("ssh://ubuntu@203.0.113.10") == "ssh://203.0.113.10"
    strip = report.without_host_id
    assert strip("test_session_runs[podman://demo-training-01]", "podman://demo-training-01") == "test_session_runs"
    assert strip("test_unit[podman://demo-training-01-scipion-vnc.service]", "podman://demo-training-01") == \
        "test_unit[scipion-vnc.service]"
    assert strip("test_unit[ssh://203.0.113.10-scipion-vnc.service]", "ssh://203.0.113.10") == "test_unit[scipion-vnc.service]"
    # Another seat's id, or none given, leaves the name alone.
    assert strip("test_session_runs[podman://demo-training-012]", "podman://demo-training-01") == \
        "test_session_runs[podman://demo-training-012]"
    assert strip("test_page_over_tls", "podman://x") == "test_page_over_tls"


def seat_junit(seat: str, unit_ok: bool) -> str:
    failure = "" if unit_ok else '<failure message="scipion-vnc.service is not running">AssertionError</failure>'
    return f"""<?xml version="1.0"?><testsuites><testsuite name="pytest">
<testcase classname="tests.testinfra.seat.test_seat_desktop" name="test_unit_enabled_and_running[podman://{seat}-scipion-vnc.service]">{failure}</testcase>
<testcase classname="tests.testinfra.seat.test_seat_desktop" name="test_session_runs_as_the_student[podman://{seat}]"/>
</testsuite></testsuites>"""


def test_report_of_two_seats_has_one_row_per_check_and_one_column_per_seat(tmp_path):
    seats = ["demo-training-01", "demo-training-02", "demo-training-03"]
    for seat, ok in zip(seats[:2], (True, False), strict=True):
        (tmp_path / f"{seat}-testinfra.xml").write_text(seat_junit(seat, ok))
        (tmp_path / f"{seat}-browser.json").write_text(json.dumps({"rendered": ok, "screenshot": f"/x/{seat}.png"}))
    # Seat 3 was stopped: no result at all.
    table = report.complete({
        seat: report.read_testinfra(str(tmp_path / f"{seat}-testinfra.xml"), f"podman://{seat}")
        + [report.read_browser(str(tmp_path / f"{seat}-browser.json"))]
        for seat in seats
    })
    names = {seat: sorted(c["name"] for c in table[seat]) for seat in seats[:2]}
    assert names[seats[0]] == names[seats[1]] == [
        "novnc_login", "test_seat_desktop::test_session_runs_as_the_student",
        "test_seat_desktop::test_unit_enabled_and_running[scipion-vnc.service]"]
    # The stopped seat fails every check the others ran; its missing file is its own row only.
    assert all(c["outcome"] == "failed" for c in table[seats[2]]) and len(table[seats[2]]) == 4
    page = report.render_html("demo", table)
    assert page.count("<tr><th class=\"check\"") == 4  # three checks and the stopped seat's missing result
    assert "unit enabled and running: scipion-vnc.service" in page and "noVNC login with the seat&#x27;s password" in page
    assert "1 of 3 seats ready" in page
    assert page.count(">ready <a href=\"verify/demo-training-01.png\">desktop</a>") == 1
    assert "2 to fix" in page and "4 to fix" in page
    assert 'title="not a check of this seat">-</td>' in page
    assert "<b>demo-training-02</b>: desktop / unit enabled and running: scipion-vnc.service" in page


def test_a_seat_of_a_course_over_several_sites_is_shown_with_its_site():
    table = {"seat-01": [{"name": "a", "outcome": "passed", "detail": ""}],
             "seat-02": [{"name": "a", "outcome": "passed", "detail": ""}]}
    page = report.render_html("multi", table, {"seat-01": "iisas", "seat-02": "aws-ireland"})
    assert '<th class="seat">seat-01 (iisas)</th><th class="seat">seat-02 (aws-ireland)</th>' in page
    assert '<th class="seat">seat-01</th>' in report.render_html("one", table)


def test_summary_names_each_failed_check_with_the_first_line_of_its_detail():
    table = {
        "seat-01": [{"name": "a", "outcome": "passed", "detail": ""}],
        "seat-02": [{"name": "a", "outcome": "failed", "detail": "\nAssertionError: unit not running\n" + "x" * 900},
                    {"name": "novnc_login", "outcome": "failed", "detail": "y" * 400},
                    {"name": "c", "outcome": "skipped", "detail": "no GPU"}],
    }
    summary = report.summarise(table, {"seat-02": "cesnet"})
    assert summary[0] == {"seat": "seat-01", "site": "", "passed": 1, "failed": 0, "skipped": 0, "ok": True, "failures": []}
    assert summary[1]["site"] == "cesnet"
    assert summary[1]["ok"] is False and (summary[1]["failed"], summary[1]["skipped"]) == (2, 1)
    assert summary[1]["failures"] == [{"check": "a", "detail": "AssertionError: unit not running"},
                                      {"check": "novnc_login", "detail": "y" * 297 + "..."}]
