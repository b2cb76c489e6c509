#!/usr/bin/env bash
# npm run bundle -- --arch x64|arm64 [--with-node] [--out DIR]
# Writes dustgate-<version>-linux-<arch>.tar.gz: the built CLI with its production node_modules for
# that arch (scripts/build-install.sh), an install.sh that needs no network, and with --with-node the
# Node 20 runtime for that arch. For boxes that cannot reach the npm registry: bring it on a USB stick.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ARCH=$(node -p process.arch); WITH_NODE=no; OUT=$ROOT
while [ $# -gt 0 ]; do
  case "$1" in
    --arch) ARCH=$2; shift 2 ;;
    --with-node) WITH_NODE=yes; shift ;;
    --out) OUT=$2; shift 2 ;;
    -h|--help) sed -n 2,5p "$0"; exit 0 ;;
    *) echo "bundle: unknown option $1 (see --help)" >&2; exit 1 ;;
  esac
done
case "$ARCH" in x64|arm64) ;; *) echo "bundle: --arch: expected x64 or arm64, got $ARCH" >&2; exit 1 ;; esac
VERSION=$(node -p "require('$ROOT/package.json').version")
NAME="dustgate-$VERSION-linux-$ARCH"
STAGE=$(mktemp -d /tmp/dustgate-bundle.XXXXXX)
trap 'rm -rf "$STAGE"' EXIT
(cd "$ROOT" && npx tsup >/dev/null)
bash "$ROOT/scripts/build-install.sh" "$ARCH" "$STAGE/$NAME/app"
rm -f "$STAGE/$NAME/app/package-lock.json" "$STAGE/$NAME"/app/build-*.log
if [ "$WITH_NODE" = yes ]; then
  mkdir -p "$STAGE/$NAME/node/bin"
  if [ "$ARCH" = arm64 ]; then cp "$(bash "$ROOT/scripts/node-arm64.sh")/bin/node" "$STAGE/$NAME/node/bin/"
  else cp "$(command -v node)" "$STAGE/$NAME/node/bin/"; fi
fi
cp "$ROOT/scripts/bundle-install.sh" "$STAGE/$NAME/install.sh"
chmod +x "$STAGE/$NAME/install.sh"
mkdir -p "$OUT"
tar -C "$STAGE" -czf "$OUT/$NAME.tar.gz" "$NAME"
echo "$OUT/$NAME.tar.gz"
