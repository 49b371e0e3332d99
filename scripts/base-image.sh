#!/usr/bin/env bash
# Make sure a local Debian systemd image exists in podman: Debian 12 (bookworm) for molecule
# and the local provider, Debian 11 (bullseye, DEBIAN_SUITE=bullseye) for the legacy runner's
# tests. Build it once with debootstrap, cache the saved image outside the
# repo, and reload it from the cache on later runs (seconds instead of a minute).
set -euo pipefail

suite="${DEBIAN_SUITE:-bookworm}"
case "$suite" in
  bookworm) release=12 ;;
  bullseye) release=11 ;;
  *) echo "base image: unknown DEBIAN_SUITE $suite (bookworm or bullseye)" >&2; exit 2 ;;
esac
image="${BASE_IMAGE:-localhost/scipion-cloud/debian$release-systemd:latest}"
cache_dir="${SCIPION_CLOUD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/scipion_cloud}"
cache_tar="$cache_dir/debian$release-systemd.tar"
packages="python3,python3-apt,systemd,systemd-sysv,dbus,sudo,iproute2,ca-certificates,gnupg"

if podman image exists "$image"; then
  exit 0
fi
mkdir -p "$cache_dir"
if [[ -s "$cache_tar" ]]; then
  echo "base image: loading $cache_tar"
  podman load -q < "$cache_tar" >/dev/null
  podman image exists "$image" && exit 0
fi

# Use the Debian mirror this host is configured with, so that hosts behind a local
# mirror build the same way; debootstrap's own default otherwise.
mirror=$(sed -n 's/^URIs:[[:space:]]*\([^[:space:]]*\/debian\)$/\1/p' \
           /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1 || true)
if [[ -z "$mirror" ]]; then
  mirror=$(awk '$1 == "deb" && $2 ~ /\/debian\/?$/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
fi

rootfs=$(mktemp -d)
trap 'rm -rf "$rootfs"' EXIT
echo "base image: debootstrap $suite (one-off, about a minute)"
debootstrap --variant=minbase --include="$packages" "$suite" "$rootfs" ${mirror:+"$mirror"} >/dev/null
# An empty machine-id lets systemd generate one per container.
: > "$rootfs/etc/machine-id"
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
# An emptied list folder must look stale, or apt (cache_valid_time) would skip the refresh.
touch -d @0 "$rootfs"/var/lib/apt/lists
tar -C "$rootfs" -c . | podman import -q \
  --change 'CMD ["/sbin/init"]' --change 'STOPSIGNAL SIGRTMIN+3' - "$image" >/dev/null
podman save -q "$image" > "$cache_tar.tmp" && mv "$cache_tar.tmp" "$cache_tar"
echo "base image: built $image and cached it in $cache_tar"
