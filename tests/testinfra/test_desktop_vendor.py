"""The 2018 profile's vendor files through the real role code (molecule scenario `desktop_vendor`).

TurboVNC 2.1.1, VirtualGL 2.5.2 and noVNC 1.0.0 are stand-ins with the real names,
package names, paths and command-line contract (tests/fixtures/standins/vnc_debs.py);
websockify is Debian's. The stand-in Xvnc answers with the RFB banner, so a WebSocket
through websockify's TLS port shows the whole chain works.
"""

from __future__ import annotations

import hashlib
import os
import ssl

import pytest
import websocket
import yaml

HOME = "/home/ubuntu"
# Where the scenario publishes noVNC (desktop_vendor 16902; scipion11_legacy sets its own).
NOVNC_PORT = os.environ.get("SCIPION_TEST_NOVNC_PORT", "16902")
SEAT = "/etc/scipion_cloud/seat.yml"


def standin_encrypted(password: str, view: str) -> bytes:
    """The stand-in vncpasswd's output for the two passwords (see vnc_debs.py)."""
    return b"".join(hashlib.sha256(b"standin-vncpasswd:" + p.encode()[:8]).digest()[:8] for p in (password, view))


@pytest.mark.parametrize(("package", "version"), [("turbovnc", "2.1.1"), ("virtualgl", "2.5.2")])
def test_vendor_debs_installed(host, package, version):
    assert host.package(package).is_installed
    assert host.package(package).version == version


def test_turbovnc_runtime_dependencies_installed(host):
    # The .deb declares none; the role installs them.
    for package in ("perl", "xauth", "x11-xkb-utils", "xfonts-base", "libglu1-mesa", "python3-yaml"):
        assert host.package(package).is_installed, package


def test_vnc_unit_runs_turbovnc_with_the_2x_options(host):
    exec_start = host.run("systemctl show -p ExecStart scipion-vnc.service").stdout
    assert "/opt/TurboVNC/bin/vncserver :1 -fg" in exec_start
    assert "-localhost -securitytypes VNC -nohttpd" in exec_start
    assert f"-rfbauth {HOME}/.vnc/passwd -xstartup /etc/scipion_cloud/xstartup" in exec_start
    assert host.service("scipion-vnc.service").is_running


def test_vnc_listens_on_loopback_only(host):
    vnc = [s for s in host.socket.get_listening_sockets() if s.endswith(":5901")]
    assert vnc and set(vnc) <= {"tcp://127.0.0.1:5901", "tcp://::1:5901"}, vnc


def test_passwd_written_by_turbovnc_vncpasswd_from_the_seat_file(host):
    with host.sudo():
        seat = yaml.safe_load(host.file(SEAT).content_string)
    passwd = host.file(f"{HOME}/.vnc/passwd")
    assert passwd.user == "ubuntu" and passwd.mode == 0o600
    raw = bytes.fromhex(host.check_output(f"od -An -tx1 {HOME}/.vnc/passwd").replace(" ", "").replace("\n", ""))
    if host.file("/usr/bin/tigervncpasswd").exists:
        # A real VNC server serves the display (the stand-in vncpasswd hands over to TigerVNC's).
        expected = bytes.fromhex(host.check_output(
            f"printf '%s\\n%s\\n' {seat['vnc_password']} {seat['vnc_view_password']} | tigervncpasswd -f | od -An -tx1"
        ).replace(" ", "").replace("\n", ""))
        assert raw == expected
    else:
        assert raw == standin_encrypted(seat["vnc_password"], seat["vnc_view_password"])


def test_vglserver_config_ran_with_the_2018_options(host):
    log = host.file("/etc/opt/VirtualGL/standin-vglserver_config.log").content_string
    assert log.splitlines() == ["-config +s +f -t"]


def test_no_3d_x_server_without_a_gpu(host):
    assert not host.file("/etc/systemd/system/scipion-vgl-xserver.service").exists
    out = host.run("/usr/local/bin/vglrun-desktop true")
    assert out.rc == 0 and "the 3D X server :0 is not running" in out.stderr


def test_novnc_release_unpacked_and_linked(host):
    assert host.file("/opt/noVNC").linked_to == "/opt/noVNC-1.0.0"
    assert "UI.initSetting('resize', 'remote')" in host.file("/opt/noVNC/app/ui.js").content_string
    assert "--web /opt/noVNC" in host.run("systemctl show -p ExecStart scipion-novnc.service").stdout


def test_websocket_over_tls_reaches_the_vnc_server():
    ws = websocket.create_connection(f"wss://127.0.0.1:{NOVNC_PORT}/websockify", subprotocols=["binary"],
                                     sslopt={"cert_reqs": ssl.CERT_NONE, "check_hostname": False}, timeout=15)
    try:
        assert ws.recv() == b"RFB 003.008\n"
    finally:
        ws.close()
