"""The idle-stop decision: connections seen or not, time thresholds, the /proc parser."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "roles/desktop/files/idle_stop.py"
spec = importlib.util.spec_from_file_location("idle_stop", SCRIPT)
idle_stop = importlib.util.module_from_spec(spec)
spec.loader.exec_module(idle_stop)

# /proc/net/tcp lines: a listener on 5901, one established client on 5901 (and the
# proxy's end of it, local port 0xC350 = 50000), and a TIME_WAIT on 443.
PROC_TCP = """  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:170D 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 1 1
   1: 0100007F:170D 0100007F:C350 01 00000000:00000000 00:00000000 00000000  1000        0 2 1
   2: 0100007F:C350 0100007F:170D 01 00000000:00000000 00:00000000 00000000   999        0 3 1
   3: 0200A8C0:01BB 0300A8C0:D431 06 00000000:00000000 00:00000000 00000000     0        0 0 3
"""


def test_parser_reads_established_local_ports_only():
    assert idle_stop.established_local_ports(PROC_TCP.splitlines()) == {5901, 50000}


def test_connected_when_a_watched_port_has_a_connection(tmp_path):
    proc = tmp_path / "tcp"
    proc.write_text(PROC_TCP)
    assert idle_stop.client_connected([5901], [str(proc), str(tmp_path / "missing")])
    assert not idle_stop.client_connected([443], [str(proc)])


@pytest.mark.parametrize(
    ("now", "last_active", "connected", "expected"),
    [
        (1000.0, None, False, (1000.0, False)),   # first check after boot: the clock starts
        (1000.0, 900.0, True, (1000.0, False)),   # a client: never stop, clock reset
        (1000.0, 900.0, False, (900.0, False)),   # idle 100 s of 300: keep going
        (1200.0, 900.0, False, (900.0, True)),    # idle exactly 300 s: stop
        (5000.0, 900.0, False, (900.0, True)),    # long idle: stop
        (5000.0, 900.0, True, (5000.0, False)),   # long idle but a client now: keep going
    ],
)
def test_decide(now, last_active, connected, expected):
    assert idle_stop.decide(now, last_active, connected, 300) == expected


def test_dry_run_writes_the_marker_once_idle(tmp_path, monkeypatch):
    proc = tmp_path / "tcp"
    proc.write_text(PROC_TCP)
    monkeypatch.setattr(idle_stop, "PROC_TCP", (str(proc),))
    state, marker = tmp_path / "run/state.json", tmp_path / "lib/fired"
    argv = ["--ports", "443", "--idle-seconds", "60", "--state", str(state), "--dry-run-marker", str(marker)]
    assert idle_stop.main(argv) == 0 and not marker.exists()          # clock starts
    state.write_text(json.dumps({"last_active": 0}))                  # pretend long idle
    assert idle_stop.main(argv) == 0 and "dry run" in marker.read_text()


def test_a_connection_resets_the_clock(tmp_path, monkeypatch):
    proc = tmp_path / "tcp"
    proc.write_text(PROC_TCP)
    monkeypatch.setattr(idle_stop, "PROC_TCP", (str(proc),))
    state, marker = tmp_path / "state.json", tmp_path / "fired"
    state.write_text(json.dumps({"last_active": 0}))
    argv = ["--ports", "5901", "--idle-seconds", "60", "--state", str(state), "--dry-run-marker", str(marker)]
    assert idle_stop.main(argv) == 0
    assert not marker.exists()
    assert json.loads(state.read_text())["last_active"] > 0
