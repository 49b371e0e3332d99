"""The course file guards through the real playbook: SSH wider than a /8 or a /32, an
impossible start date and unsafe seat names stop playbooks/plan.yml in course_load.yml,
before any cloud call.

One run covers every rule (the exact messages of each rule are in
tests/unit/test_course_validation.py): the course file is written as text, with the date
unquoted as an organiser would write it, and AWS is a recording endpoint that must see no
request.
"""

from __future__ import annotations

import http.server
import threading
from typing import Callable, Iterator

import pytest

BAD_COURSE = """\
description: every new guard at once
provider: aws
profile: scipion-1.1
seats: 3
seat_names: [../../etc/x, Seat_1, a b]
access:
  ssh_cidrs: [0::/0, 0.0.0.0/1, 128.0.0.0/1, 10.0.0.0/7, 2000::/3]
schedule:
  start_date: 2026-02-30
  days: 2
  hours_up_per_day: 8
aws:
  region: eu-west-1
  instance_type: g4dn.xlarge
  image_id: ami-12345678
"""

EXPECTED = [
    "access.ssh_cidrs opens SSH to the whole Internet (0::/0).",
    "access.ssh_cidrs: 0.0.0.0/1 opens SSH to 2,147,483,648 addresses (a /1)",
    "access.ssh_cidrs: 128.0.0.0/1 opens SSH to 2,147,483,648 addresses (a /1)",
    "access.ssh_cidrs: 10.0.0.0/7 opens SSH to 33,554,432 addresses (a /7), more than the /8",
    "access.ssh_cidrs: 2000::/3 opens SSH to 2^125 addresses (a /3), more than the /32",
    "Narrow it to your institute's range (a /8 or smaller), or set access.allow_world_ssh: true",
    "schedule.start_date '2026-02-30' is not a real date (day is out of range for month)",
    "seat_names: '../../etc/x', 'Seat_1', 'a b' are not valid seat names: use only lower-case letters, digits and '-', "
    "starting with a letter or digit, at most 63 characters.",
]


class _Recorder(http.server.BaseHTTPRequestHandler):
    """Stands in for the AWS endpoint: records every request, answers 500."""

    requests: list[str] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server API)
        self.requests.append(self.path)
        self.send_response(500)
        self.end_headers()

    do_GET = do_POST  # noqa: N815

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def aws_recorder() -> Iterator[dict[str, str]]:
    _Recorder.requests = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{server.server_address[1]}",
               "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "AWS_DEFAULT_REGION": "eu-west-1"}
    finally:
        server.shutdown()


def test_plan_refuses_wide_ssh_impossible_dates_and_unsafe_seat_names_before_any_cloud_call(
        run_playbook: Callable, course_catalogue: Callable, aws_recorder: dict[str, str]) -> None:
    result = run_playbook("plan.yml", *course_catalogue("guards", BAD_COURSE), env=aws_recorder)
    output = " ".join(result.stdout.split())
    assert result.returncode == 2, result.stdout[-3000:]
    assert "Course file " in output and "/guards.yml: " in output, result.stdout[-3000:]
    missing = [message for message in EXPECTED if message not in output]
    assert missing == [], result.stdout[-3000:]
    assert "TASK [Run the preflight checks]" not in result.stdout
    assert _Recorder.requests == []
