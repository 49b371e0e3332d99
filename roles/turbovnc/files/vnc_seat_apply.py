#!/usr/bin/env python3
"""Write the student's VNC password file from the seat file, once per seat file.

Run as root by scipion-vnc-seat.service before the VNC session starts. The password
file (~/.vnc/passwd: full-control password, then view-only password) is rewritten only
when the seat file differs from the one last applied, or when the password file is
missing, so a reboot or a new login never changes the password a student was given.
Compatible with Python 3.5 (Ubuntu 16.04).
"""

import argparse
import hashlib
import os
import pwd
import subprocess
import sys

import yaml

MIN_LENGTH = 6  # vncpasswd refuses shorter passwords outside filter mode; so do we.


def read_seat(path):
    """The seat's two passwords, validated."""
    with open(path, "rb") as handle:
        raw = handle.read()
    seat = yaml.safe_load(raw.decode("utf-8")) or {}
    passwords = []
    for key in ("vnc_password", "vnc_view_password"):
        value = seat.get(key)
        if not isinstance(value, str) or len(value) < MIN_LENGTH or "\n" in value:
            raise ValueError("{0}: {1} must be a string of at least {2} characters".format(
                path, key, MIN_LENGTH))
        passwords.append(value)
    return passwords, hashlib.sha256(raw).hexdigest()


def needs_update(digest, stamp_path, passwd_path):
    """True when this seat file was not applied yet, or the password file is gone."""
    if not os.path.isfile(passwd_path) or os.path.getsize(passwd_path) == 0:
        return True
    try:
        with open(stamp_path) as handle:
            return handle.read().strip() != digest
    except OSError:
        return True


def encrypt(vncpasswd, passwords):
    """The password file contents, from the VNC server's own vncpasswd in filter mode."""
    stdin = "".join(p + "\n" for p in passwords).encode("utf-8")
    result = subprocess.run([vncpasswd, "-f"], input=stdin, stdout=subprocess.PIPE, check=True)
    if not result.stdout:
        raise RuntimeError("{0} -f wrote nothing".format(vncpasswd))
    return result.stdout


def write_owned(path, data, uid, gid, mode):
    """Write atomically, owned by the student, never readable by others."""
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chown(tmp, uid, gid)
    os.chmod(tmp, mode)
    os.rename(tmp, path)


def apply(args):
    """Apply the seat file; returns True when the password file was (re)written."""
    passwords, digest = read_seat(args.seat_file)
    user = pwd.getpwnam(args.user)
    vnc_dir = os.path.join(user.pw_dir, ".vnc")
    passwd_path = os.path.join(vnc_dir, "passwd")
    if not needs_update(digest, args.stamp, passwd_path):
        return False
    if not os.path.isdir(vnc_dir):
        os.mkdir(vnc_dir, 0o700)
        os.chown(vnc_dir, user.pw_uid, user.pw_gid)
    write_owned(passwd_path, encrypt(args.vncpasswd, passwords), user.pw_uid, user.pw_gid, 0o600)
    os.makedirs(os.path.dirname(args.stamp), exist_ok=True)
    write_owned(args.stamp, (digest + "\n").encode(), 0, 0, 0o600)
    return True


def restart_session(unit):
    """Make the running session use the new passwords (some servers copy the file at start)."""
    active = subprocess.run(["systemctl", "is-active", "--quiet", unit]).returncode == 0
    subprocess.run(["systemctl", "--no-block", "restart" if active else "start", unit], check=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seat-file", required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--vncpasswd", required=True)
    parser.add_argument("--stamp", required=True)
    parser.add_argument("--session-unit", help="unit to (re)start after a change")
    args = parser.parse_args(argv)
    try:
        changed = apply(args)
    except (OSError, ValueError, KeyError, RuntimeError, yaml.YAMLError,
            subprocess.CalledProcessError) as exc:
        print("vnc-seat-apply: {0}".format(exc), file=sys.stderr)
        return 1
    if changed:
        print("vnc-seat-apply: VNC passwords for {0} written from {1}".format(args.user, args.seat_file))
        if args.session_unit:
            restart_session(args.session_unit)
    else:
        print("vnc-seat-apply: {0} already applied; passwords unchanged".format(args.seat_file))
    return 0


if __name__ == "__main__":
    sys.exit(main())
