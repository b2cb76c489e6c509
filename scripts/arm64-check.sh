#!/usr/bin/env bash
# dustgate on linux-arm64, under emulation (qemu-user), as CI runs it (.ci/run calls this):
#  1. the install for arm64 (scripts/build-install.sh: native modules cross-compiled or from prebuilds);
#  2. under Node 20 for arm64: `dustgate --version`;
#  3. the unit tests that need no child processes (a forked worker would be an arm64 binary the
#     kernel cannot start without binfmt_misc): codecs, rules, HJ 212, readings, the record buffer on
#     SQLite (better-sqlite3 for arm64), the MQTT contract — in worker threads;
#  4. `dustgate read` of the simulated weather head on a real pty (the serialport binding for arm64);
#  5. a `dustgate demo` smoke: the page answers, telemetry reaches the embedded broker, frost blocks sprinkling;
#  6. the offline bundle for arm64: install.sh with no network and no npm, on a box whose `node` is
#     Node 20 for arm64 (under emulation), then the installed `dustgate doctor` on the demo site.
set -euo pipefail
# the checks below read the CLI's English lines: whatever the box's locale, speak English here
export LC_ALL=C.UTF-8 LC_MESSAGES= LANG=C.UTF-8
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/dustgate-arm64.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT
t0=$(date +%s)
say() { echo "arm64: $* ($(( $(date +%s) - t0 ))s)"; }
for tool in qemu-aarch64-static socat curl mosquitto_sub; do
  command -v "$tool" >/dev/null || { echo "arm64: $tool is missing: run bash scripts/install-system-deps.sh" >&2; exit 1; }
done
free_port() { node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"; }

say "building the install for linux-arm64"
bash "$ROOT/scripts/build-install.sh" arm64 "$WORK/install" --dev
NODE_ARM64=$(bash "$ROOT/scripts/node-arm64.sh")
Q=(qemu-aarch64-static -L /usr/aarch64-linux-gnu "$NODE_ARM64/bin/node")
cd "$WORK/install"

say "dustgate --version"
arch=$("${Q[@]}" -p 'process.arch')
[ "$arch" = arm64 ] || { echo "arm64: Node says it is $arch" >&2; exit 1; }
"${Q[@]}" dist/cli.js --version

say "unit tests under emulation"
"${Q[@]}" node_modules/vitest/vitest.mjs run --pool=threads --project shared \
  test/unit/codecs.test.ts test/unit/rules.test.ts test/unit/hj212.test.ts test/unit/reading.test.ts test/unit/record-buffer.test.ts test/unit/contract.test.ts

say "dustgate read over a real pty"
pty="$WORK/ttyV0"
sc=$(free_port)
(cd "$ROOT" && exec node dist/cli.js sim --scenario seeds/scenarios/frost-morning.yaml --pty "main=$pty" --control "127.0.0.1:$sc" --no-wire-time >"$WORK/sim.log" 2>&1) &
pids+=($!)
for _ in $(seq 100); do [ -e "$pty" ] && break; sleep 0.1; done
"${Q[@]}" dist/cli.js read --port "$pty" --driver cwt-weather-station --unit 1 --baud 9600 --timeout 2000 | tee "$WORK/read.txt"
grep -q temperature "$WORK/read.txt"

say "dustgate demo smoke"
hp=$(free_port); mp=$(free_port); cp=$(free_port)
"${Q[@]}" dist/cli.js demo --http-port "$hp" --mqtt-port "$mp" --control "127.0.0.1:$cp" --data "$WORK/data" >"$WORK/demo.log" 2>&1 &
demo=$!
pids+=($demo)
for _ in $(seq 600); do grep -q 'dustgate demo is running' "$WORK/demo.log" && break; kill -0 $demo 2>/dev/null || break; sleep 0.2; done
grep -q 'dustgate demo is running' "$WORK/demo.log" || { cat "$WORK/demo.log" >&2; echo "arm64: the demo did not come up" >&2; exit 1; }
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$hp/")
[ "$code" = 200 ] || { echo "arm64: the page answered $code" >&2; exit 1; }
mosquitto_sub -h 127.0.0.1 -p "$mp" -t 'dustgate/+/telemetry' -C 1 -W 30 >"$WORK/tele.txt"
grep -q '"readings"' "$WORK/tele.txt" || { echo "arm64: no telemetry at the broker" >&2; exit 1; }
curl -s -X PUT "http://127.0.0.1:$cp/devices/head/values" -d '{"temperature": 3.5}' >/dev/null
blocked=no
for _ in $(seq 150); do
  if curl -s "http://127.0.0.1:$hp/api/state" | grep -q '"reason":"temperature_below_min"'; then blocked=yes; break; fi
  sleep 0.2
done
[ "$blocked" = yes ] || { echo "arm64: frost did not block sprinkling" >&2; exit 1; }
kill -INT $demo
wait $demo || true
grep -q 'switching outputs off' "$WORK/demo.log"
say "offline bundle for arm64"
NATIVE_FROM="$WORK/install/node_modules" bash "$ROOT/scripts/bundle.sh" --arch arm64 --out "$WORK/bundle" >"$WORK/bundle.log" 2>&1 || { cat "$WORK/bundle.log" >&2; exit 1; }
tgz=$(tail -1 "$WORK/bundle.log")
tar -C "$WORK/bundle" -xzf "$tgz"
bdir="$WORK/bundle/$(basename "$tgz" .tar.gz)"
mkdir -p "$WORK/shim" "$WORK/home"
# the box's node: Node 20 for arm64 (here under emulation); an npm that fails if anything calls it
printf '#!/bin/sh\nexec qemu-aarch64-static -L /usr/aarch64-linux-gnu %s "$@"\n' "$NODE_ARM64/bin/node" >"$WORK/shim/node"
printf '#!/bin/sh\necho "npm was called: $*" >&2\nexit 99\n' >"$WORK/shim/npm"
printf '#!/bin/sh\necho yes\n' >"$WORK/shim/timedatectl"   # a box whose clock NTP has set
chmod +x "$WORK/shim/node" "$WORK/shim/npm" "$WORK/shim/timedatectl"
sp=$(free_port); bp=$(free_port)
(cd "$ROOT" && exec node dist/cli.js sim --scenario seeds/scenarios/demo.yaml --tcp "127.0.0.1:$sp" --control "127.0.0.1:$(free_port)" >"$WORK/sim2.log" 2>&1) &
pids+=($!)
mosquitto -p "$bp" >"$WORK/mosquitto.log" 2>&1 &
pids+=($!)
sed -e "s/port: 1502/port: $sp/" -e "s#^mqtt:.*#mqtt: { url: \"mqtt://127.0.0.1:$bp\" }#" "$ROOT/seeds/sites/demo.yaml" >"$WORK/site.yaml"
offline=(env -i PATH="$WORK/shim:/usr/sbin:/usr/bin:/sbin:/bin" HOME="$WORK/home" npm_config_offline=true npm_config_registry=http://127.0.0.1:9/)
"${offline[@]}" bash "$bdir/install.sh" "$WORK/site.yaml" --root "$WORK/root" --user dust | tee "$WORK/install.log"
grep -q "npm was called" "$WORK/install.log" && { echo "arm64: install.sh called npm" >&2; exit 1; }
sleep 2
(cd "$WORK" && "${offline[@]}" node "$WORK/root/opt/dustgate/app/dist/cli.js" doctor --config "$WORK/root/etc/dustgate/site.yaml") | tee "$WORK/doctor.log"
grep -Eq '^ok +device head' "$WORK/doctor.log"
say "ok: --version, unit tests, pty read, demo (page, telemetry, frost interlock, clean stop), offline bundle install and doctor"
