"""A seat's desktop in the browser: VNC session, noVNC over TLS, the seat's own password."""

from __future__ import annotations

import socket
import ssl
import time
from urllib.parse import urlsplit

import pytest
import yaml
from seat_procs import processes

UNITS = ["scipion-vnc.service", "scipion-novnc.service", "scipion-vnc-seat.path"]
SEAT_FILE = "/etc/scipion_cloud/seat.yml"


def settled_state(host, unit: str, seconds: float = 60.0) -> str:
    """The unit's active state once it is no longer starting or restarting (a seat file that just
    changed restarts the session), or what it still is after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        state = host.run(f"systemctl is-active {unit}").stdout.strip()
        if state not in ("activating", "deactivating", "reloading") or time.monotonic() > deadline:
            return state
        time.sleep(2)


@pytest.mark.parametrize("unit", UNITS)
def test_unit_enabled_and_running(host, unit):
    service = host.service(unit)
    assert service.is_enabled, f"{unit} is not enabled: it would not come back after a reboot"
    state = settled_state(host, unit)
    assert state == "active", f"{unit} is not running ({state}): {host.run(f'systemctl status --no-pager {unit}').stdout[-600:]}"


def test_session_runs_as_the_student(host, profile):
    user = profile["desktop_user"]
    servers = [a for a in processes(host, user) if "Xvnc" in a or "Xtigervnc" in a]
    assert servers, f"no VNC X server runs as {user}"
    assert f":{profile['turbovnc_display']}" in servers[0], servers[0]


def test_vnc_listens_on_loopback_only(host, profile):
    port = 5900 + int(profile["turbovnc_display"])
    vnc = [s for s in host.socket.get_listening_sockets() if s.endswith(f":{port}")]
    assert vnc, f"nothing listens on the VNC port {port}"
    assert set(vnc) <= {f"tcp://127.0.0.1:{port}", f"tcp://::1:{port}"}, f"VNC reachable beyond loopback: {vnc}"


def test_websockify_serves_tls_only_as_its_own_user(host):
    procs = [a for a in processes(host, "novnc") if "websockify" in a]
    assert procs, "websockify does not run as the novnc user"
    assert "--ssl-only" in procs[0], f"websockify accepts plain connections: {procs[0]}"


def test_seat_password_is_applied(host, profile):
    with host.sudo():
        seat = yaml.safe_load(host.file(SEAT_FILE).content_string) or {}
        passwd = host.file(f"/home/{profile['desktop_user']}/.vnc/passwd")
        assert seat.get("vnc_password"), f"{SEAT_FILE} holds no vnc_password"
        assert passwd.exists, "the student's VNC password file is missing"
        assert passwd.user == profile["desktop_user"] and passwd.mode == 0o600, \
            f"VNC password file is {passwd.user} {oct(passwd.mode)}, expected {profile['desktop_user']} 0o600"


def test_novnc_page_over_tls_from_the_controller(seat_url):
    if not seat_url:
        pytest.skip("no seat URL given")
    url = urlsplit(seat_url)
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # per-machine self-signed certificate
    with socket.create_connection((url.hostname, url.port or 443), timeout=15) as raw, \
            context.wrap_socket(raw, server_hostname=url.hostname) as tls:
        tls.sendall(f"GET {url.path or '/vnc.html'} HTTP/1.0\r\nHost: {url.hostname}\r\n\r\n".encode())
        reply = b""
        while chunk := tls.recv(65536):
            reply += chunk
    status = reply.split(b"\r\n", 1)[0].decode(errors="replace")
    assert " 200 " in status, f"{seat_url} answered {status!r}"
    assert b"noVNC" in reply, f"{seat_url} is not the noVNC page"
