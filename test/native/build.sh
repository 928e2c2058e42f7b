#!/usr/bin/env bash
# Builds the differential-test oracle: test/native/runner.c -> build/native/runner.
# Idempotent; exits non-zero on failure. CC overrides the compiler (default gcc).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="$root/build/native"
cc="${CC:-gcc}"

if ! command -v "$cc" >/dev/null 2>&1; then
  echo "test/native/build.sh: '$cc' not found; install gcc to build the native runner" >&2
  exit 1
fi
if [ "$(uname -m)" != "x86_64" ]; then
  echo "test/native/build.sh: the native runner needs an x86_64 host (this is $(uname -m))" >&2
  exit 1
fi

mkdir -p "$out"
# PIE keeps the binary away from the fixed guest windows at 0x100000..0x1300000 (a non-PIE
# executable would load at 0x400000, inside bench mode's data region). No stack protector:
# the signal handler runs while FS may still hold a guest value (the canary lives at fs:0x28).
# Build to a temporary name and rename, so concurrent builds never expose a partial binary.
tmp="$out/runner.tmp.$$"
trap 'rm -f "$tmp"' EXIT
"$cc" -O2 -std=gnu11 -Wall -Wextra -fPIE -pie -fno-stack-protector -fcf-protection=none \
  -U_FORTIFY_SOURCE -D_GNU_SOURCE -o "$tmp" "$here/runner.c"
mv -f "$tmp" "$out/runner"
