#!/usr/bin/env bash
# Builds the Next.js app unless .next holds a build newer than every file it is made from.
# Decks are read at run time, so content/ changes never need a rebuild.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -f .next/BUILD_ID ]; then
  newer=$(find app components lib proxy.ts next.config.ts tsconfig.json tsconfig.next.json package-lock.json \
    -newer .next/BUILD_ID -print -quit 2>/dev/null || true)
  if [ -z "$newer" ]; then
    exit 0
  fi
fi
# No request leaves the machine: Next.js would otherwise send anonymous telemetry.
export NEXT_TELEMETRY_DISABLED=1
node_modules/.bin/next build
