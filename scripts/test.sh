#!/usr/bin/env bash
# npm test after bootstrap: the compiler, the linter, the unit and integration tests, the sample
# course (`npm run check`) and the browser tests, all with a TMPDIR of this run's own. Engines'
# default compile caches, sandbox and kernel-run folders land there instead of the machine's /tmp,
# which `npm run dev`, `npm start` and other checkouts share: nothing of theirs is read, nothing is
# left to them. At the end the folder must hold no run's or test's leftover (scripts/test-leftovers.ts);
# then it goes.
set -euo pipefail
cd "$(dirname "$0")/.."

run_tmp=$(mktemp -d "${TMPDIR:-/tmp}/osbe-npm-test.XXXXXX")
chmod 711 "$run_tmp" # sandbox users traverse it to their workspaces
trap 'rm -rf "$run_tmp" 2>/dev/null || echo "npm test: could not remove $run_tmp" >&2' EXIT
export TMPDIR="$run_tmp"

npm run typecheck
npm run lint
npm run test:unit
npm run check
npm run test:e2e
node_modules/.bin/tsx scripts/test-leftovers.ts "$run_tmp"
