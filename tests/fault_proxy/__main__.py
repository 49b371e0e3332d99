"""Run the fault proxy by hand: python -m fault_proxy --upstream http://127.0.0.1:5000 --rules faults.yml (from tests/)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from .server import FaultProxy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--upstream", required=True, help="the moto server's URL")
    parser.add_argument("--rules", required=True, type=Path, help="the rule file (YAML or JSON; re-read when it changes)")
    parser.add_argument("--log", type=Path, help="a file to append one JSON line per request event to")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    proxy = FaultProxy(args.upstream, args.rules, args.log, args.port).start()
    print(f"fault proxy: AWS_ENDPOINT_URL={proxy.url} -> {args.upstream}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        proxy.stop()


if __name__ == "__main__":
    main()
