"""The verification report marks every seat x check, and a missing result is a failure."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("course_verify_report", PROJECT / "plugins/modules/course_verify_report.py")
report = importlib.util.module_from_spec(spec)
spec.loader.exec_module(report)

JUNIT = """<?xml version="1.0"?><testsuites><testsuite name="pytest">
<testcase classname="tests.testinfra.test_desktop" name="test_vnc_listens_on_localhost[podman://a]"/>
<testcase classname="tests.testinfra.test_cuda" name="test_nvidia_smi[podman://a]"><skipped message="no GPU: /dev/nvidia0 absent"/></testcase>
<testcase classname="tests.testinfra.test_scipion3" name="test_scipion3_runs[podman://a]"><failure message="scipion3 not found">AssertionError: scipion3 not found</failure></testcase>
</testsuite></testsuites>"""


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
    page = report.render_html("demo", table)
    assert page.count("<tr><th>seat-0") == 2
    assert "boom &lt;x&gt;" in page and ">FAIL<" in page and ">skip<" in page
    junit = report.render_junit("demo", table)
    assert '<testsuite name="seat-01" tests="2" failures="1" skipped="0">' in junit
    assert '<testsuite name="seat-02" tests="1" failures="0" skipped="1">' in junit
