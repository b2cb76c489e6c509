#!/usr/bin/env bash
# Installs this dustgate bundle, with no network:
#   sudo ./install.sh SITE-CONFIG [--user USER] [--prefix DIR] [--data-dir DIR] [--root DIR] [--watchdog-sec S]
# Copies the gateway to PREFIX (/opt/dustgate), the site config to /etc/dustgate/site.yaml, creates
# the service user (in group dialout) and its data folder, checks the config, then writes and
# enables the systemd unit with `dustgate install-service`. --root installs into an image or a test
# folder instead of / (no user is created and nothing is enabled there).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
CONFIG=""; SVC_USER=dustgate; PREFIX=/opt/dustgate; DATA=/var/lib/dustgate; ROOT=/; WD=30
while [ $# -gt 0 ]; do
  case "$1" in
    --user) SVC_USER=$2; shift 2 ;;
    --prefix) PREFIX=$2; shift 2 ;;
    --data-dir) DATA=$2; shift 2 ;;
    --root) ROOT=$2; shift 2 ;;
    --watchdog-sec) WD=$2; shift 2 ;;
    -h|--help) sed -n 2,8p "$0"; exit 0 ;;
    -*) echo "install.sh: unknown option $1 (see --help)" >&2; exit 1 ;;
    *) CONFIG=$1; shift ;;
  esac
done
[ -n "$CONFIG" ] || { echo "install.sh: give the site config: ./install.sh site.yaml (examples in app/seeds/sites/)" >&2; exit 1; }
[ -f "$CONFIG" ] || { echo "install.sh: $CONFIG: no such file" >&2; exit 1; }
ROOT=$(mkdir -p "$ROOT" && cd "$ROOT" && pwd)
R=${ROOT%/}
if [ -x "$HERE/node/bin/node" ]; then NODE_SRC="$HERE/node/bin/node"; NODE="$PREFIX/node/bin/node"
else NODE_SRC=$(command -v node || true); NODE=$NODE_SRC; fi
[ -n "$NODE_SRC" ] || { echo "install.sh: no Node.js: install Node 20 (or use a bundle made with --with-node)" >&2; exit 1; }
major=$("$NODE_SRC" -p 'process.versions.node.split(".")[0]')
[ "$major" -ge 20 ] || { echo "install.sh: Node $major is too old: dustgate needs Node 20 or later" >&2; exit 1; }
"$NODE_SRC" -e "require('$HERE/app/node_modules/better-sqlite3')" 2>/dev/null ||
  { echo "install.sh: this bundle's native modules do not load here (a bundle for another architecture? this box is $(uname -m))" >&2; exit 1; }

mkdir -p "$R$PREFIX" "$R/etc/dustgate" "$R$DATA"
rm -rf "$R$PREFIX/app" && cp -r "$HERE/app" "$R$PREFIX/app"
if [ -x "$HERE/node/bin/node" ]; then mkdir -p "$R$PREFIX/node/bin" && cp "$HERE/node/bin/node" "$R$PREFIX/node/bin/"; fi
cp "$CONFIG" "$R/etc/dustgate/site.yaml"
if [ "$ROOT" = / ]; then
  id "$SVC_USER" >/dev/null 2>&1 || useradd --system --no-create-home --home-dir "$DATA" --shell /usr/sbin/nologin --groups dialout "$SVC_USER"
  chown -R "$SVC_USER:$SVC_USER" "$DATA"
  # `dustgate` on the PATH, run by the Node the service runs
  printf '#!/bin/sh\nexec %s --max-semi-space-size=4 %s "$@"\n' "$NODE" "$PREFIX/app/dist/cli.js" >/usr/local/bin/dustgate
  chmod 755 /usr/local/bin/dustgate
fi
"$NODE_SRC" "$R$PREFIX/app/dist/cli.js" install-service --config "$R/etc/dustgate/site.yaml" --root "$ROOT" \
  --user "$SVC_USER" --data-dir "$DATA" --cli "$PREFIX/app/dist/cli.js" --node "$NODE" --watchdog-sec "$WD"
echo "installed dustgate in $R$PREFIX; config $R/etc/dustgate/site.yaml; check the site with: dustgate doctor --config /etc/dustgate/site.yaml"
