#!/usr/bin/env bash
# Builds the toolchain image from Debian packages, without an image registry:
#   deploy/images/build-offline.sh [NAME]        (default NAME: osbyexample-toolchain:<recipe hash>)
# mmdebstrap makes a minimal bookworm root with the packages of toolchain/packages.txt, the
# layout of toolchain/layout.sh is applied, and `docker import` loads it into the Engine that
# DOCKER_HOST names (default: the local socket). The tag carries a hash of the recipe files, so an
# Engine that already holds this recipe's image is not asked to build it again (`--if-missing`).
# Takes about 2 minutes here (most of it unpacking rustc and QEMU); needs root and mmdebstrap.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
recipe=(toolchain/packages.txt toolchain/layout.sh build-offline.sh)

recipe_hash() {
  (cd "$here" && cat "${recipe[@]}") | sha256sum | cut -c1-12
}

if_missing=0
if [ "${1:-}" = "--if-missing" ]; then if_missing=1; shift; fi
if [ "${1:-}" = "--print-name" ]; then echo "osbyexample-toolchain:$(recipe_hash)"; exit 0; fi
name="${1:-osbyexample-toolchain:$(recipe_hash)}"

# One build at a time on this machine (two test files or servers may ask at once); the second finds it built.
exec 9>"${TMPDIR:-/tmp}/osbyexample-image-build.lock"
flock 9
if [ "$if_missing" = 1 ] && docker image inspect "$name" >/dev/null 2>&1; then
  echo "image $name is present"
  exit 0
fi
command -v mmdebstrap >/dev/null || { echo "mmdebstrap is missing: run scripts/setup-system.sh" >&2; exit 1; }

packages="$(grep -v '^\s*#' "$here/toolchain/packages.txt" | grep -v '^\s*$' | paste -sd, -)"
started=$(date +%s)
echo "building image $name from Debian packages ($packages); this takes a few minutes once"
# force-unsafe-io: no fsync per file (the tarball is what counts); no documentation in the image.
mmdebstrap --quiet --variant=minbase --include="$packages" \
  --dpkgopt=force-unsafe-io \
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*' \
  --customize-hook="sh '$here/toolchain/layout.sh' \"\$1\"" \
  --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
  bookworm - \
  "deb http://deb.debian.org/debian bookworm main" \
  "deb http://deb.debian.org/debian bookworm-updates main" \
  "deb http://deb.debian.org/debian-security bookworm-security main" \
  | docker import --change 'ENV PATH=/usr/bin:/bin' --change 'ENV LANG=C.UTF-8' --change 'WORKDIR /work' \
      --message "OSByExample toolchain image (deploy/images/build-offline.sh)" - "$name" >/dev/null
docker tag "$name" osbyexample-toolchain:latest
echo "image $name built in $(( $(date +%s) - started )) s"
