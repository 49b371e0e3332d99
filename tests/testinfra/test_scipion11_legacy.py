"""The scipion-1.1 profile configured through the legacy runner (molecule scenario `scipion11_legacy`).

The machine is a Debian 11 container (Python 3.9) standing in for Ubuntu 16.04 (Python 3.5):
these checks show that configure.yml handed it to ansible-core 2.15 and that what the roles
installed runs there (the idle stop, the seat-password service, the desktop in a browser).
Python 3.5 itself, xenial's package names and a GPU are not exercised here.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import yaml

PROJECT = Path(__file__).resolve().parents[2]
SEAT = "/etc/scipion_cloud/seat.yml"
PASSWD = "/home/ubuntu/.vnc/passwd"
URL = "https://127.0.0.1:16903/vnc.html"


def record(host) -> dict:
    with host.sudo():
        return json.loads(host.file("/etc/scipion_cloud/configured.json").content_string)


def seat(host) -> dict:
    with host.sudo():
        return yaml.safe_load(host.file(SEAT).content_string)


def test_configured_by_the_legacy_runner_on_the_debian11_standin(host):
    done = record(host)
    assert done["runner"] == "legacy", done["runner"]
    assert done["ansible_core"].startswith("2.15."), done["ansible_core"]
    assert done["profile"] == "scipion-1.1"
    # What it really ran on, recorded by the machine itself (not the profile's Ubuntu 16.04).
    assert done["machine"]["os"].startswith("Debian 11"), done["machine"]
    assert done["profile_data"]["base_os"] == {"distribution": "Ubuntu", "version": "16.04"}


def test_idle_stop_timer_is_on_and_its_service_runs_with_the_machines_python(host):
    assert host.service("scipion-idle-stop.timer").is_enabled
    assert host.service("scipion-idle-stop.timer").is_running
    with host.sudo():
        run = host.run("systemctl start scipion-idle-stop.service")
        assert run.rc == 0, run.stderr
        result = host.check_output("systemctl show -p Result --value scipion-idle-stop.service")
    assert result == "success", host.run("journalctl -u scipion-idle-stop.service --no-pager -n 20").stdout


def wait_for_the_desktop(host) -> None:
    """The VNC server restarts when the seat file changes: wait until it serves again."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if host.service("scipion-vnc.service").is_running and \
                any(s.endswith(":5901") for s in host.socket.get_listening_sockets()):
            return
        time.sleep(2)
    raise AssertionError(host.run("systemctl status --no-pager scipion-vnc.service").stdout[-1500:])


def test_desktop_login_in_chromium_with_the_seat_password(host, tmp_path):
    wait_for_the_desktop(host)
    login = subprocess.run(
        [sys.executable, str(PROJECT / "roles/verify/seat_checks/novnc_login.py"), URL, "--screenshot", str(tmp_path / "desktop.png")],
        input=_seat_password() + "\n", text=True, capture_output=True, timeout=240)
    report = json.loads(login.stdout or "{}")
    assert login.returncode == 0, (login.stdout, login.stderr[-2000:])
    assert report["connected"] and report["colours"] >= 8, report


def _seat_password() -> str:
    out = subprocess.run(["podman", "exec", "molecule-scipion11_legacy-instance", "cat", SEAT],
                         check=True, capture_output=True, text=True, timeout=60).stdout
    return yaml.safe_load(out)["vnc_password"]


def _passwd_bytes(host) -> bytes:
    with host.sudo():
        return bytes.fromhex(host.check_output(f"od -An -tx1 {PASSWD}").replace(" ", "").replace("\n", ""))


def test_seat_password_service_applies_a_changed_seat_file(host):
    before = _passwd_bytes(host)
    original = seat(host)
    changed = dict(original, vnc_password="N3wSeat1")
    try:
        with host.sudo():
            host.run(f"cat > {SEAT} <<'EOF'\n{yaml.safe_dump(changed)}EOF")
        deadline = time.monotonic() + 60
        while _passwd_bytes(host) == before and time.monotonic() < deadline:
            time.sleep(1)
        after = _passwd_bytes(host)
        with host.sudo():
            expected = host.check_output(
                f"printf '%s\\n%s\\n' N3wSeat1 {original['vnc_view_password']} | tigervncpasswd -f | od -An -tx1")
        assert after == bytes.fromhex(expected.replace(" ", "").replace("\n", "")), "the new seat password was not applied"
    finally:
        with host.sudo():
            host.run(f"cat > {SEAT} <<'EOF'\n{yaml.safe_dump(original)}EOF")
        wait_for_the_desktop(host)
