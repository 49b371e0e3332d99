"""Helpers shared by the seat suites."""

from __future__ import annotations

import json

# Processes are read from /proc (minimal images have no procps).
PROCS_PY = ("import os,pwd,json; out=[]\n"
            "for p in filter(str.isdigit, os.listdir('/proc')):\n"
            "  try: out.append([pwd.getpwuid(os.stat('/proc/'+p).st_uid).pw_name, open('/proc/'+p+'/comm').read().strip(),"
            " open('/proc/'+p+'/cmdline').read().replace(chr(0),' ').strip()])\n"
            "  except (OSError, KeyError): pass\n"
            "print(json.dumps(out))")


def processes(host, user: str | None = None, comm: str | None = None) -> list[str]:
    """Command lines of the seat's processes, optionally only `user`'s and named `comm`."""
    rows = json.loads(host.check_output(f"python3 -c \"{PROCS_PY}\""))
    return [args for owner, name, args in rows if (user is None or owner == user) and (comm is None or name == comm)]
