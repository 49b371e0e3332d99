"""The seat password script writes ~/.vnc/passwd once per seat file, never on a mere restart."""

from __future__ import annotations

import getpass
import importlib.util
import os
import pwd
from pathlib import Path
from types import SimpleNamespace

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "roles/turbovnc/files/vnc_seat_apply.py"
spec = importlib.util.spec_from_file_location("vnc_seat_apply", SCRIPT)
seat_apply = importlib.util.module_from_spec(spec)
spec.loader.exec_module(seat_apply)

# A vncpasswd -f double that echoes what it was given, so the test can see the input.
FAKE_VNCPASSWD = "#!/bin/sh\n[ \"$1\" = -f ] || exit 2\nexec cat\n"


@pytest.fixture
def env(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    user = getpass.getuser()
    real = pwd.getpwnam(user)
    account = SimpleNamespace(pw_dir=str(home), pw_uid=real.pw_uid, pw_gid=real.pw_gid)
    monkeypatch.setattr(seat_apply.pwd, "getpwnam", lambda name: account if name == user else pwd.getpwnam(name))
    vncpasswd = tmp_path / "vncpasswd"
    vncpasswd.write_text(FAKE_VNCPASSWD)
    vncpasswd.chmod(0o755)
    seat = tmp_path / "seat.yml"
    argv = ["--seat-file", str(seat), "--user", user, "--vncpasswd", str(vncpasswd),
            "--stamp", str(tmp_path / "state/stamp")]
    return seat, home / ".vnc/passwd", argv


def write_seat(seat: Path, password: str, view: str) -> None:
    seat.write_text(f"course: madrid\nseat: madrid-training-01\nvnc_password: '{password}'\n"
                    f"vnc_view_password: '{view}'\n")


def test_first_apply_writes_both_passwords_privately(env):
    seat, passwd, argv = env
    write_seat(seat, "abc:12#x", "view1234")
    assert seat_apply.main(argv) == 0
    assert passwd.read_bytes() == b"abc:12#x\nview1234\n"
    assert passwd.stat().st_mode & 0o777 == 0o600
    assert os.stat(passwd.parent).st_mode & 0o777 == 0o700


def test_restart_keeps_the_file_even_if_the_student_changed_it(env):
    seat, passwd, argv = env
    write_seat(seat, "abcdefgh", "view1234")
    seat_apply.main(argv)
    passwd.write_bytes(b"student's own\n")
    assert seat_apply.main(argv) == 0
    assert passwd.read_bytes() == b"student's own\n"


def test_new_seat_file_or_missing_passwd_rewrites(env):
    seat, passwd, argv = env
    write_seat(seat, "abcdefgh", "view1234")
    seat_apply.main(argv)
    write_seat(seat, "newpass1", "newview1")
    seat_apply.main(argv)
    assert passwd.read_bytes() == b"newpass1\nnewview1\n"
    passwd.unlink()
    seat_apply.main(argv)
    assert passwd.read_bytes() == b"newpass1\nnewview1\n"


@pytest.mark.parametrize("content", ["vnc_password: abcdefgh\n", "vnc_password: abc\nvnc_view_password: abcdefgh\n",
                                     "vnc_password: [1, 2]\nvnc_view_password: abcdefgh\n", ": : :\n"])
def test_bad_seat_file_fails_without_writing(env, content, capsys):
    seat, passwd, argv = env
    seat.write_text(content)
    assert seat_apply.main(argv) == 1
    assert not passwd.exists()
    assert "vnc-seat-apply:" in capsys.readouterr().err
