#!/usr/bin/env python3
"""Power the machine off when no VNC client has been connected for a while.

Run periodically by scipion-idle-stop.timer. A client counts as connected while a TCP
connection to one of the watched local ports is established (noVNC's proxy keeps one
to the VNC port for every browser tab). The time of the last connection seen is kept
in a state file under /run, so idle time counts from boot or from the last client.
Compatible with Python 3.5 (Ubuntu 16.04).
"""

import argparse
import json
import os
import subprocess
import sys
import time

PROC_TCP = ("/proc/net/tcp", "/proc/net/tcp6")
TCP_ESTABLISHED = "01"


def established_local_ports(lines):
    """Local ports of the established connections in /proc/net/tcp-style lines."""
    ports = set()
    for line in lines:
        fields = line.split()
        if len(fields) < 4 or fields[0] == "sl" or ":" not in fields[1]:
            continue
        if fields[3] == TCP_ESTABLISHED:
            ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def client_connected(ports, proc_files=None):
    """True when any watched port has an established connection."""
    seen = set()
    for path in proc_files or PROC_TCP:
        try:
            with open(path) as handle:
                seen |= established_local_ports(handle)
        except OSError:
            continue
    return bool(seen & set(ports))


def decide(now, last_active, connected, idle_seconds):
    """(new last-active time, whether to stop now)."""
    if connected or last_active is None:
        return now, False
    return last_active, now - last_active >= idle_seconds


def load_last_active(path):
    try:
        with open(path) as handle:
            return float(json.load(handle)["last_active"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def save_last_active(path, last_active):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as handle:
        json.dump({"last_active": last_active}, handle)
    os.rename(tmp, path)


def stop(marker, idle_seconds):
    """Power off, or in dry-run mode leave a marker saying the machine would have."""
    message = "idle-stop: no VNC client for {0} s: powering off".format(int(idle_seconds))
    if marker:
        os.makedirs(os.path.dirname(marker), exist_ok=True)
        with open(marker, "w") as handle:
            handle.write("{0} (dry run) at {1}\n".format(message, int(time.time())))
        print(message + " (dry run: wrote {0})".format(marker))
        return 0
    print(message)
    return subprocess.run(["systemctl", "poweroff"]).returncode


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ports", type=int, nargs="+", required=True)
    parser.add_argument("--idle-seconds", type=float, required=True)
    parser.add_argument("--state", required=True)
    parser.add_argument("--dry-run-marker", default="")
    args = parser.parse_args(argv)
    now = time.time()
    connected = client_connected(args.ports)
    last_active, must_stop = decide(now, load_last_active(args.state), connected, args.idle_seconds)
    save_last_active(args.state, last_active)
    if must_stop:
        return stop(args.dry_run_marker, args.idle_seconds)
    print("idle-stop: {0}; idle for {1} s of {2} s".format(
        "client connected" if connected else "no client", int(now - last_active), int(args.idle_seconds)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
