"""Run the OpenStack double by hand: python -m openstack_double --port 8774 (from tests/)."""

from __future__ import annotations

import argparse
import time

from .server import OpenStackDouble


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    double = OpenStackDouble(port=args.port, verbose=args.verbose).start()
    print(f"OpenStack double: auth_url {double.auth_url} (user course-admin / s3cret, "
          f"OIDC access token egi-access-token)", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        double.stop()


if __name__ == "__main__":
    main()
