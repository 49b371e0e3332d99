"""Log in to a seat's noVNC page with headless Chromium and check that a desktop renders.

Drives Chromium over the DevTools protocol in real time (a fixed virtual-time budget
does not wait for noVNC's WebSocket). Usable from tests and against live seats::

    python roles/verify/seat_checks/novnc_login.py https://203.0.113.7/vnc.html --screenshot out.png

reads the VNC password from the first line of stdin (a prompt that does not echo when
stdin is a terminal), never from the command line or the environment, where `ps` would
show it. Prints a JSON report and exits 0 when noVNC connected and the desktop is not
blank, 1 when it did not, and 2 with the reason in the report's status when the check
could not run (no Chromium, no DevTools endpoint...).
"""

from __future__ import annotations

import argparse
import base64
import getpass
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TextIO

import websocket

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--ignore-certificate-errors", "--remote-allow-origins=*", "--window-size=1280,800",
]

# Evaluated in the page: noVNC's connection state, its status line, and statistics of
# the desktop canvas (distinct colours, luminance standard deviation).
PAGE_STATE_JS = """(() => {
  const root = document.documentElement;
  const status = document.getElementById('noVNC_status');
  const resize = document.getElementById('noVNC_setting_resize');
  const state = {connected: root.classList.contains('noVNC_connected'),
                 status: status ? status.textContent.trim() : '',
                 resize: resize ? resize.value : null, width: 0, height: 0, colours: 0, stddev: 0};
  const canvas = document.querySelector('#noVNC_container canvas, .noVNC_screen canvas, canvas');
  if (!canvas || !canvas.width || !canvas.height) return JSON.stringify(state);
  state.width = canvas.width; state.height = canvas.height;
  const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  const colours = new Set(); let sum = 0, sq = 0, n = 0;
  for (let i = 0; i < data.length; i += 4 * 7) {
    colours.add((data[i] << 16) | (data[i + 1] << 8) | data[i + 2]);
    const y = 0.299 * data[i] + 0.587 * data[i + 1] + 0.114 * data[i + 2];
    sum += y; sq += y * y; n += 1;
  }
  state.colours = colours.size;
  state.stddev = Math.sqrt(Math.max(0, sq / n - (sum / n) ** 2));
  return JSON.stringify(state);
})()"""

FAILURE_WORDS = ("fail", "reject", "authentication", "disconnected", "unable")


@dataclass
class LoginResult:
    url: str
    connected: bool = False
    refused: bool = False
    status: str = ""
    resize: str | None = None
    width: int = 0
    height: int = 0
    colours: int = 0
    stddev: float = 0.0
    screenshot: str | None = None
    seconds: float = 0.0
    history: list[str] = field(default_factory=list)

    @property
    def rendered(self) -> bool:
        """A desktop, not a blank or uniform canvas."""
        return self.connected and self.colours >= 8 and self.stddev >= 4.0


def find_chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    raise FileNotFoundError("no Chromium found: install the Debian package `chromium`")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _page_websocket(port: int, deadline: float) -> str:
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=2) as resp:
                pages = [t for t in json.load(resp) if t.get("type") == "page"]
            if pages:
                return pages[0]["webSocketDebuggerUrl"]
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError("Chromium's DevTools endpoint did not come up")
        time.sleep(0.2)


class DevTools:
    """The few DevTools protocol calls we need, over one WebSocket."""

    def __init__(self, url: str) -> None:
        self.ws = websocket.create_connection(url, timeout=30, suppress_origin=True)
        self.next_id = 0

    def call(self, method: str, **params: object) -> dict:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    def evaluate(self, expression: str) -> object:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result.get("result", {}).get("value")

    def close(self) -> None:
        self.ws.close()


def login_url(page_url: str, password: str) -> str:
    """vnc.html with autoconnect and the password in the query, as an access sheet link would be."""
    parts = urllib.parse.urlsplit(page_url)
    query = urllib.parse.parse_qsl(parts.query) + [("autoconnect", "1"), ("password", password)]
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def _poll(tools: DevTools, result: LoginResult, deadline: float) -> None:
    """Until rendered, refused or out of time; keeps the last state in `result`."""
    while time.monotonic() < deadline:
        raw = tools.evaluate(PAGE_STATE_JS)
        if isinstance(raw, str):
            state = json.loads(raw)
            for key in ("connected", "status", "resize", "width", "height", "colours", "stddev"):
                setattr(result, key, state[key])
            if state["status"] and (not result.history or result.history[-1] != state["status"]):
                result.history.append(state["status"])
            result.refused = not result.connected and any(
                word in status.lower() for status in result.history for word in FAILURE_WORDS)
            if result.rendered or result.refused:
                return
        time.sleep(0.5)


def novnc_login(page_url: str, password: str, screenshot: Path | None = None,
                timeout: float = 45.0, settle: float = 2.0) -> LoginResult:
    """Open vnc.html, log in with `password`, wait for a rendered desktop (or a refusal)."""
    started = time.monotonic()
    result = LoginResult(url=page_url)
    port = _free_port()
    profile = tempfile.mkdtemp(prefix="novnc-chromium-")
    proc = subprocess.Popen(
        [find_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
         f"--remote-debugging-port={port}", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = started + timeout
        tools = DevTools(_page_websocket(port, deadline))
        try:
            tools.call("Page.enable")
            navigation = tools.call("Page.navigate", url=login_url(page_url, password))
            if navigation.get("errorText"):
                # Nothing answered (no noVNC there): say so now instead of waiting out the timeout.
                # Chromium shows no page then, so there is nothing to capture either.
                result.status = f"vnc.html did not load: {navigation['errorText']}"
                result.history.append(result.status)
                screenshot = None
            else:
                _poll(tools, result, deadline)
            if result.rendered and settle:
                time.sleep(settle)  # let the last updates of the desktop arrive
                _poll(tools, result, time.monotonic() + 5)
            if screenshot:
                shot = tools.call("Page.captureScreenshot", format="png")
                screenshot.parent.mkdir(parents=True, exist_ok=True)
                screenshot.write_bytes(base64.b64decode(shot["data"]))
                result.screenshot = str(screenshot)
        finally:
            tools.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(profile, ignore_errors=True)
    result.seconds = round(time.monotonic() - started, 1)
    return result


def read_password(stream: TextIO) -> str:
    """The first line of stdin, without its line end; a hidden prompt at a terminal."""
    if stream.isatty():
        return getpass.getpass("VNC password: ")
    return stream.readline().rstrip("\r\n")


def report(result: LoginResult) -> str:
    return json.dumps({**asdict(result), "rendered": result.rendered}, indent=2)


def main(argv: list[str] | None = None, stdin: TextIO | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="https://HOST[:PORT]/vnc.html")
    parser.add_argument("--screenshot", type=Path)
    parser.add_argument("--timeout", type=float, default=45.0)
    args = parser.parse_args(argv)
    password = read_password(stdin or sys.stdin)
    try:
        result = novnc_login(args.url, password, args.screenshot, args.timeout)
    except (OSError, RuntimeError, websocket.WebSocketException) as exc:
        reason = f"{type(exc).__name__}: {exc}"
        if password:
            reason = reason.replace(password, "********")
        failed = LoginResult(url=args.url, status=f"the browser check could not run: {reason}")
        print(report(failed))
        return 2
    print(report(result))
    return 0 if result.rendered else 1


if __name__ == "__main__":
    sys.exit(main())
