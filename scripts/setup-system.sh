#!/usr/bin/env bash
# Installs the system packages OSByExample needs from Debian's archive.
# Idempotent: when everything is present it only runs dpkg-query and exits in well under a second.
set -euo pipefail

packages=(
  gcc libc6-dev          # C toolchain for students' programs
  g++                    # C++ programs
  nasm                   # x86-64 assembly (NASM syntax); GNU as comes with binutils
  rustc-web cargo-web    # Rust toolchain in /usr, reachable by the sandbox user (rustup's lives in /root)
  rust-web-src           # Rust sources with vendored crates: offline -Z build-std for no_std kernels
  rust-web-llvm lld-22   # rust-lld (lld), which x86_64 kernel targets such as eduOS-rs's name as their linker
  llvm-22                # llvm-objcopy/-objdump/-size/-ar for the bootloader crate's build script and bootimage
  bubblewrap             # the default sandbox driver
  util-linux             # setpriv: drop to an unprivileged user before bwrap
  qemu-system-x86        # boots the teaching kernel
  binutils               # GNU ld links the teaching kernel (Debian's rustc-web has no rust-lld)
  chromium               # headless browser for the Playwright tests
  fonts-dejavu-core fonts-liberation2  # readable text in screenshots and PDFs
  redis-server           # shared state of replicas (REDIS_URL); tests start their own on a free port
  haproxy                # the reverse proxy in front of replicas (deploy/haproxy), used by the replica tests
  prometheus             # the scrape test and the replica bench read metrics through a real Prometheus
  docker.io              # the docker sandbox driver's Engine (tests start their own dockerd)
  mmdebstrap             # builds the toolchain image offline from Debian packages (deploy/images/)
)

missing=()
for p in "${packages[@]}"; do
  # "install ok installed" is the only state that means usable
  if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" != "install ok installed" ]; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -gt 0 ]; then

echo "setup: installing system packages: ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "setup: these Debian packages are missing and installing them needs root:" >&2
  echo "  sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# Update the package lists only when they are missing or older than a day, to stay quick.
if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mtime -1 -print -quit 2>/dev/null)" ]; then
  apt-get update -qq -o DPkg::Lock::Timeout=300
fi
# Another apt run (unattended upgrades, a parallel setup) holds the lock for a while: wait for it.
apt-get install -y -qq -o DPkg::Lock::Timeout=300 --no-install-recommends "${missing[@]}" >/dev/null
echo "setup: system packages installed"
fi

# The bootloader crate's build script and bootimage look for LLVM's tools where rustup's
# llvm-tools-preview puts them, under `rustc --print sysroot` (/usr); Debian has them in llvm-22.
tools=/usr/lib/rustlib/x86_64-unknown-linux-gnu/bin
for tool in objcopy objdump size ar; do
  if [ "$(readlink "$tools/llvm-$tool" 2>/dev/null)" != "../../../llvm-22/bin/llvm-$tool" ]; then
    [ "$(id -u)" -eq 0 ] || { echo "setup: linking llvm-$tool into $tools needs root" >&2; exit 1; }
    ln -sfn "../../../llvm-22/bin/llvm-$tool" "$tools/llvm-$tool"
  fi
done

# bootimage builds raw disk images of bootloader-0.9 kernels (eduOS-rs's current version), from
# the crate registry with Debian's cargo; in /usr/local/bin, which the sandbox sees under /usr.
bootimage_version=0.10.5
if [ "$(/usr/local/bin/bootimage --version 2>/dev/null)" != "bootimage $bootimage_version" ]; then
  [ "$(id -u)" -eq 0 ] || { echo "setup: installing bootimage into /usr/local needs root" >&2; exit 1; }
  echo "setup: installing bootimage $bootimage_version (cargo install, about half a minute)"
  home=$(mktemp -d)
  env -i PATH=/usr/bin:/bin HOME="$home" CARGO_HOME="$home" /usr/bin/cargo install --quiet --locked \
    --root /usr/local --version "$bootimage_version" bootimage
  rm -rf "$home"
fi
