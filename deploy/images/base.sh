#!/bin/sh
# Make (or reuse) the base image localhost/ragship-base:<key> from base.conf with mmdebstrap.
# The tarball is cached under CACHE keyed by base.conf and the mirror, and made reproducibly
# (SOURCE_DATE_EPOCH from the snapshot date), so a second `make images` imports the same bytes.
# Usage: base.sh CACHE MIRROR; prints the image name on stdout.
set -eu
cache=$1 mirror=$2
here=$(dirname "$0")
. "$here/base.conf"
key=$( (grep -v '^#' "$here/base.conf"; echo "$mirror") | sha256sum | cut -c1-12)
image="localhost/ragship-base:$SUITE-$key"
tarball="$cache/base-$SUITE-$key.tar"
if ! podman image exists "$image"; then
  if [ ! -s "$tarball" ]; then
    mkdir -p "$cache"
    SOURCE_DATE_EPOCH=$(date -u -d "$SNAPSHOT" +%s) nice mmdebstrap --quiet --variant="$VARIANT" \
      --format=tar --components=main --include="$PACKAGES" \
      --customize-hook='rm -rf "$1"/var/cache/apt/* "$1"/var/lib/apt/lists/* "$1"/var/log/*.log' \
      "$SUITE" "$tarball.part" "$mirror" >&2
    mv "$tarball.part" "$tarball"
  fi
  podman import --quiet --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' --change 'CMD ["/bin/bash"]' "$tarball" "$image" >&2
fi
echo "$image"
