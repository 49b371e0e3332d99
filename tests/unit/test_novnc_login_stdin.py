"""roles/verify/seat_checks/novnc_login.py takes the VNC password from stdin only, and says why it could not run.

The browser itself is replaced by a recorder of what the script hands it (the real login is
exercised by verify.yml on live and demo seats).
"""

from __future__ import annotations

import importlib.util
import io
import json
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("novnc_login", PROJECT / "roles/verify/seat_checks/novnc_login.py")
novnc_login = importlib.util.module_from_spec(_spec)
sys.modules["novnc_login"] = novnc_login  # dataclasses look their module up by name
_spec.loader.exec_module(novnc_login)

URL = "https://127.0.0.1:6901/vnc.html"


def test_the_password_is_the_first_line_of_stdin(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    seen = {}

    def login(url, password, screenshot=None, timeout=45.0):
        seen.update(url=url, password=password)
        return novnc_login.LoginResult(url=url, connected=True, colours=40, stddev=12.0)

    monkeypatch.setattr(novnc_login, "novnc_login", login)
    monkeypatch.setenv("NOVNC_PASSWORD", "from-the-environment")
    assert novnc_login.main([URL], stdin=io.StringIO("s3cretPw\nsecond line\n")) == 0
    assert seen == {"url": URL, "password": "s3cretPw"}
    report = json.loads(capsys.readouterr().out)
    assert report["rendered"] is True and "s3cretPw" not in json.dumps(report)


def test_a_password_on_the_command_line_is_refused() -> None:
    with pytest.raises(SystemExit) as exit_info:
        novnc_login.main([URL, "s3cretPw"], stdin=io.StringIO(""))
    assert exit_info.value.code == 2


def test_a_check_that_cannot_run_says_why_without_the_password(monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture) -> None:
    def login(url, password, screenshot=None, timeout=45.0):
        raise RuntimeError(f"Page.navigate: cannot open {url}?password={password}")

    monkeypatch.setattr(novnc_login, "novnc_login", login)
    assert novnc_login.main([URL], stdin=io.StringIO("s3cretPw\n")) == 2
    report = json.loads(capsys.readouterr().out)
    assert report["rendered"] is False
    assert report["status"] == (f"the browser check could not run: RuntimeError: Page.navigate: cannot open {URL}?password=********")
