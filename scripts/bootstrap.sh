#!/usr/bin/env bash
# Everything `npm start` and `npm test` need before they run: system packages, then npm packages.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup-system.sh

# Install npm packages when node_modules is missing or older than the lock file.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: installing npm packages"
  npm ci --no-audit --no-fund --loglevel=error
fi

# Warm build trees of the kernel lab (about 25 s the first time, a fraction of a second after).
node_modules/.bin/tsx scripts/build-kernels.ts

# The Rust crates examples may use (libc, nix, rand, …), built once with the crate registry
# reachable (a few minutes the first time, a fraction of a second after); runs are offline.
node_modules/.bin/tsx scripts/build-crates.ts
