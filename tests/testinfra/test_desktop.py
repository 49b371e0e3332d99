"""The student's desktop in the browser (molecule scenario `desktop`).

Real TigerVNC, noVNC and websockify from Debian and a real Openbox session in a systemd
container; VirtualGL is a stand-in .deb (tests/fixtures/standins/vnc_debs.py) on the
no-GPU path. The browser tests drive headless Chromium on the host against the noVNC
port published on 127.0.0.1:16901 and keep their screenshots under output/.
"""

from __future__ import annotations

import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path
from xml.etree import ElementTree

import pytest
import yaml

PROJECT = Path(__file__).resolve().parents[2]
# The browser login and the seat helpers ship with the verify role.
sys.path.insert(0, str(PROJECT / "roles" / "verify" / "seat_checks"))
import novnc_login  # noqa: E402
from seat_procs import processes  # noqa: E402  (the image has no procps: /proc is read)

NOVNC = ("127.0.0.1", 16901)
PAGE = f"https://{NOVNC[0]}:{NOVNC[1]}/vnc.html"
SCREENSHOTS = PROJECT / "output" / "molecule-desktop"
HOME = "/home/ubuntu"
PASSWD = f"{HOME}/.vnc/passwd"
SEAT = "/etc/scipion_cloud/seat.yml"
UNITS = ["scipion-vnc.service", "scipion-novnc.service", "scipion-vnc-seat.path", "scipion-idle-stop.timer"]


@pytest.fixture(scope="module")
def seat(host) -> dict:
    with host.sudo():
        return yaml.safe_load(host.file(SEAT).content_string)


def encrypted(host, password: str, view: str) -> bytes:
    """What TigerVNC's own vncpasswd makes of the two passwords."""
    out = host.run(f"printf '%s\\n%s\\n' '{password}' '{view}' | tigervncpasswd -f | od -An -tx1")
    assert out.rc == 0, out.stderr
    return bytes.fromhex(out.stdout.replace(" ", "").replace("\n", ""))


def passwd_bytes(host) -> bytes:
    return bytes.fromhex(host.check_output(f"od -An -tx1 {PASSWD}").replace(" ", "").replace("\n", ""))


def wait_active(host, unit: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not host.service(unit).is_running:
        assert time.monotonic() < deadline, host.run(f"systemctl status {unit}").stdout
        time.sleep(0.5)


def wait_port(host, port: int, timeout: float = 30, address: str = "127.0.0.1") -> None:
    deadline = time.monotonic() + timeout
    while not host.socket(f"tcp://{address}:{port}").is_listening:
        assert time.monotonic() < deadline, f"nothing listens on {port}"
        time.sleep(0.5)


# --- units and listeners ----------------------------------------------------------------


@pytest.mark.parametrize("unit", UNITS)
def test_units_enabled_and_running(host, unit):
    service = host.service(unit)
    assert service.is_enabled
    assert service.is_running


def test_session_runs_as_the_student_on_display_1(host):
    unit = host.run("systemctl show -p User -p ExecStart scipion-vnc.service").stdout
    assert "User=ubuntu" in unit
    assert "tigervncserver :1 -fg" in unit and "-localhost yes" in unit and "VncAuth" in unit
    xvnc = processes(host, "ubuntu", "Xtigervnc")
    assert len(xvnc) == 1 and ":1" in xvnc[0]
    assert processes(host, "ubuntu", "openbox")
    assert processes(host, "ubuntu", "pcmanfm")


def test_vnc_listens_on_loopback_only(host):
    vnc = [s for s in host.socket.get_listening_sockets() if s.endswith(":5901")]
    assert vnc, "VNC is not listening"
    assert set(vnc) <= {"tcp://127.0.0.1:5901", "tcp://::1:5901"}, vnc


def test_websockify_listens_on_443_unprivileged(host):
    assert host.socket("tcp://0.0.0.0:443").is_listening or host.socket("tcp://:::443").is_listening
    procs = [args for args in processes(host, "novnc") if "websockify" in args]
    assert procs, "websockify does not run as the novnc user"
    assert "--ssl-only" in procs[0]


def test_tls_serves_vnc_html_with_remote_resizing():
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection(NOVNC, timeout=10) as raw, context.wrap_socket(raw) as tls:
        cert = tls.getpeercert(binary_form=True)
        tls.sendall(b"GET /vnc.html HTTP/1.0\r\nHost: seat\r\n\r\n")
        reply = b""
        while chunk := tls.recv(65536):
            reply += chunk
    assert reply.startswith(b"HTTP/1.") and b" 200 " in reply.split(b"\r\n")[0]
    assert b"noVNC" in reply
    assert cert, "no certificate presented"


def test_no_plain_http(host):
    with socket.create_connection(NOVNC, timeout=10) as raw:
        raw.sendall(b"GET /vnc.html HTTP/1.0\r\nHost: seat\r\n\r\n")
        raw.settimeout(10)
        try:
            reply = raw.recv(4096)
        except (ConnectionResetError, TimeoutError):
            reply = b""
    assert b"HTTP/" not in reply and b"noVNC" not in reply


def test_certificate_made_on_the_machine(host):
    with host.sudo():
        key = host.file("/etc/scipion_cloud/tls/novnc.key")
        assert key.mode == 0o640 and key.user == "root" and key.group == "novnc"
        subject = host.check_output("openssl x509 -in /etc/scipion_cloud/tls/novnc.crt -noout -subject")
    assert host.check_output("hostname") in subject


def test_ui_defaults_to_remote_resizing(host):
    assert "UI.initSetting('resize', 'remote')" in host.file("/usr/share/novnc/app/ui.js").content_string


# --- passwords ---------------------------------------------------------------------------


def test_passwd_file_comes_from_the_seat_file(host, seat):
    passwd = host.file(PASSWD)
    assert passwd.user == "ubuntu" and passwd.mode == 0o600
    assert passwd_bytes(host) == encrypted(host, seat["vnc_password"], seat["vnc_view_password"])


def test_restarting_the_units_keeps_the_password(host):
    before = (passwd_bytes(host), host.file(PASSWD).mtime)
    with host.sudo():
        host.check_output("systemctl restart scipion-vnc-seat.service scipion-vnc.service scipion-novnc.service")
    wait_active(host, "scipion-vnc.service")
    assert (passwd_bytes(host), host.file(PASSWD).mtime) == before
    wait_port(host, 5901)


def test_new_seat_file_is_applied_by_the_path_unit(host, seat):
    original = host.file(SEAT).content_string
    changed = dict(seat, vnc_password="N3wSeat1", vnc_view_password="N3wView1")
    try:
        host.check_output(f"printf '%s' '{yaml.safe_dump(changed)}' > {SEAT}")
        expected = encrypted(host, "N3wSeat1", "N3wView1")
        deadline = time.monotonic() + 20
        while passwd_bytes(host) != expected:
            assert time.monotonic() < deadline, "the new seat file was not applied"
            time.sleep(0.5)
    finally:
        host.check_output(f"printf '%s' '{original}' > {SEAT}")
    deadline = time.monotonic() + 20
    while passwd_bytes(host) != encrypted(host, seat["vnc_password"], seat["vnc_view_password"]):
        assert time.monotonic() < deadline, "the original seat file was not re-applied"
        time.sleep(0.5)
    wait_active(host, "scipion-vnc.service")
    wait_port(host, 5901)


# --- desktop, VirtualGL, logout ------------------------------------------------------------


def test_scipion_shortcut_goes_through_virtualgl(host):
    shortcut = host.file(f"{HOME}/Desktop/scipion.desktop")
    assert shortcut.user == "ubuntu"
    assert "Exec=/usr/local/bin/vglrun-desktop scipion3" in shortcut.content_string


def test_desktop_menu_has_no_exit(host):
    menu = ElementTree.fromstring(host.file(f"{HOME}/.config/openbox/menu.xml").content_string)
    ns = {"ob": "http://openbox.org/3.4/menu"}
    labels = [item.get("label") for item in menu.iterfind(".//ob:item", ns)]
    actions = {action.get("name") for action in menu.iterfind(".//ob:action", ns)}
    assert labels == ["Scipion", "Terminal", "Files"]
    assert actions == {"Execute"}  # no Exit, SessionLogout or Restart


def test_virtualgl_configured_for_egl(host):
    assert host.package("virtualgl").version == "3.1.1"
    log = host.file("/etc/opt/VirtualGL/standin-vglserver_config.log").content_string
    assert log.splitlines() == ["-config +s +f -t +egl"]


def test_wrapper_runs_directly_without_a_gpu_device(host):
    out = host.run("/usr/local/bin/vglrun-desktop sh -c 'echo display=$VGL_DISPLAY'")
    assert out.rc == 0 and out.stdout.strip() == "display="
    assert "/dev/dri/card0 is not present" in out.stderr


def test_wrapper_uses_vglrun_with_the_egl_device(host):
    with host.sudo():
        host.check_output("mkdir -p /dev/dri && touch /dev/dri/card0")
    try:
        out = host.run("/usr/local/bin/vglrun-desktop sh -c 'echo display=$VGL_DISPLAY'")
    finally:
        with host.sudo():
            host.check_output("rm -f /dev/dri/card0")
    assert out.rc == 0 and out.stdout.strip() == "display=/dev/dri/card0", out.stderr


def test_logout_starts_a_new_session(host):
    before = host.service("scipion-vnc.service").systemd_properties["MainPID"]
    host.check_output("su ubuntu -c 'DISPLAY=:1 openbox --exit'")
    deadline = time.monotonic() + 30
    while host.service("scipion-vnc.service").systemd_properties["MainPID"] in (before, "0"):
        assert time.monotonic() < deadline, "the session did not come back after logout"
        time.sleep(0.5)
    wait_active(host, "scipion-vnc.service")
    wait_port(host, 5901)
    deadline = time.monotonic() + 20
    while not processes(host, "ubuntu", "openbox"):
        assert time.monotonic() < deadline, "no new Openbox session"
        time.sleep(0.5)


# --- idle stop (dry run: a marker instead of a power-off) ----------------------------------


def idle_check(host, seconds: int, state: str = "/tmp/idle-test.json") -> subprocess.CompletedProcess:
    return host.run(f"/usr/local/libexec/scipion-cloud/idle-stop --ports 5901 --idle-seconds {seconds} "
                    f"--state {state} --dry-run-marker /tmp/idle-test.fired")


def test_idle_stop_timer_configured_as_dry_run(host):
    unit = host.run("systemctl cat scipion-idle-stop.service").stdout
    assert "--idle-seconds 1800" in unit and "--dry-run-marker /var/lib/scipion_cloud/idle-stop.fired" in unit
    with host.sudo():
        host.check_output("systemctl start scipion-idle-stop.service")
    assert not host.file("/var/lib/scipion_cloud/idle-stop.fired").exists


def test_idle_stop_fires_after_the_threshold_without_a_client(host):
    with host.sudo():
        host.run("rm -f /tmp/idle-test.json /tmp/idle-test.fired")
        assert idle_check(host, 2).rc == 0
        assert not host.file("/tmp/idle-test.fired").exists
        time.sleep(2.5)
        out = idle_check(host, 2)
        assert out.rc == 0 and "dry run" in out.stdout
        assert host.file("/tmp/idle-test.fired").exists


def test_idle_stop_holds_while_a_client_is_connected(host):
    with host.sudo():
        host.run("rm -f /tmp/idle-test.json /tmp/idle-test.fired")
        host.check_output("echo '{\"last_active\": 0}' > /tmp/idle-test.json")
        # A VNC client (a raw TCP connection to 5901) for the length of the check.
        host.check_output("nohup python3 -c 'import socket,time; s=socket.create_connection((\"127.0.0.1\",5901)); "
                          "time.sleep(8)' >/dev/null 2>&1 &")
        time.sleep(1)
        out = idle_check(host, 2)
        assert out.rc == 0 and "client connected" in out.stdout
        assert not host.file("/tmp/idle-test.fired").exists


# --- the browser ---------------------------------------------------------------------------


def test_browser_login_renders_the_desktop(seat):
    result = novnc_login.novnc_login(PAGE, seat["vnc_password"], SCREENSHOTS / "novnc-desktop.png")
    assert result.connected, result
    assert result.resize == "remote", result
    assert result.rendered, result
    assert Path(result.screenshot).stat().st_size > 10_000


def test_browser_view_only_password_connects(seat):
    result = novnc_login.novnc_login(PAGE, seat["vnc_view_password"])
    assert result.connected, result


def test_browser_wrong_password_is_refused(seat):
    result = novnc_login.novnc_login(PAGE, "wrongpw1", SCREENSHOTS / "novnc-wrong-password.png", timeout=30)
    assert not result.connected, result
    assert result.refused, result


def test_same_password_after_a_container_restart(host, seat):
    container = host.backend.name
    subprocess.run(["podman", "restart", "-t", "5", container], check=True, capture_output=True, timeout=120)
    subprocess.run(["podman", "exec", container, "systemctl", "is-system-running", "--wait"],
                   capture_output=True, timeout=120)
    wait_active(host, "scipion-vnc.service", timeout=60)
    wait_port(host, 5901, timeout=60)
    wait_active(host, "scipion-novnc.service", timeout=60)
    wait_port(host, 443, timeout=60, address="0.0.0.0")
    assert passwd_bytes(host) == encrypted(host, seat["vnc_password"], seat["vnc_view_password"])
    # Just after a restart, with the other test stream on the same cores, the browser and the
    # desktop session can take longer than the default 45 s to start (seen once in CI).
    result = novnc_login.novnc_login(PAGE, seat["vnc_password"], SCREENSHOTS / "novnc-after-restart.png", timeout=120)
    assert result.rendered, result
