#!/usr/bin/env bash
# Installs the Debian packages dustgate's tests need: socat (pty pairs), mosquitto (interop broker),
# openssl (test certificates), mbpoll and pymodbus (independent Modbus peers), chromium (page tests)
# with a Chinese font (fonts-wqy-microhei: the zh-CN page screenshots),
# time (GNU time: peak RSS in the CLI start-up bench), postgresql (dustgate ingest's database test), and for the arm64 check under emulation
# qemu-user-static, the aarch64 C library and the g++-aarch64-linux-gnu cross compiler.
# Run as root (or with sudo available).
set -euo pipefail
pkgs=(socat mosquitto mosquitto-clients openssl mbpoll python3-pymodbus python3-serial python3-serial-asyncio chromium fonts-wqy-microhei time postgresql curl file qemu-user-static libc6-arm64-cross libstdc++6-arm64-cross g++-aarch64-linux-gnu)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-system-deps: all present (${pkgs[*]})"
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "install-system-deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-system-deps: done"
