#!/usr/bin/env bash
# Fetch a stock Debian kernel built for cloud VMs (the package linux-image-cloud-amd64 points at) and
# unpack its vmlinuz to build/stock-kernel/vmlinuz, so test/linux-boot.test.ts can check that a
# distribution kernel boots on hvlab as well as the bundled one. Best effort: without apt the test
# is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
out=build/stock-kernel
[ -f "$out/vmlinuz" ] && exit 0
command -v apt-get >/dev/null || exit 0
pkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-/{print $2; exit}')
[ -n "$pkg" ] || exit 0
tmp=$(mktemp -d)
(cd "$tmp" && apt-get download "$pkg" >/dev/null 2>&1)
dpkg-deb -x "$tmp"/*.deb "$tmp/x"
mkdir -p "$out"
cp "$tmp"/x/boot/vmlinuz-* "$out/vmlinuz"
echo "$pkg" > "$out/PACKAGE"
rm -rf "$tmp"
