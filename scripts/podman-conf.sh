#!/usr/bin/env bash
# Decide whether podman needs the project's containers.conf: try a container with
# podman's defaults first, and only fall back to tests/podman/containers.conf when that
# fails. Writes "default" or "project" to $1 (read by the Makefile).
set -euo pipefail
out="$1"
image="${BASE_IMAGE:-localhost/scipion-cloud/debian12-systemd:latest}"
conf="$(cd "$(dirname "$0")/.." && pwd)/tests/podman/containers.conf"

if env -u CONTAINERS_CONF podman run --rm --network none "$image" /bin/true >/dev/null 2>&1; then
  echo default > "$out"
elif CONTAINERS_CONF="$conf" podman run --rm --network none "$image" /bin/true; then
  echo "podman: its defaults cannot run containers here; using $conf through CONTAINERS_CONF"
  echo project > "$out"
else
  echo "podman cannot run containers, even with $conf; see the error above" >&2
  exit 1
fi
