#!/usr/bin/env bash
# Builds the differential-test oracle: test/native/runner.c -> build/native/runner.
# Idempotent. CC overrides the compiler (default gcc).
#
# Only `hvlab difftest`, `bench mips` and the tests that compare with this CPU need the runner;
# booting a guest does not. So `npm ci` (the "prepare" script) and the test setup call this without
# options: with no compiler, or on a host that is not x86-64, it prints a note and exits 0, and
# the tests that need the runner skip with a reason. `--require` (`npm run native`) makes those
# cases errors (exit 1). A compiler that fails is always an error.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="$root/build/native"
cc="${CC:-gcc}"
require=0
for arg in "$@"; do
  case "$arg" in
    --require) require=1 ;;
    *) echo "test/native/build.sh: unknown option '$arg' (--require)" >&2; exit 2 ;;
  esac
done

# Cannot build here: an error with --require, otherwise a note (the rest of hvlab works without it).
unavailable() {
  if [ "$require" = 1 ]; then
    echo "test/native/build.sh: $1" >&2
    exit 1
  fi
  echo "test/native/build.sh: note: $1; skipping the native oracle (hvlab boot works without it; difftest, bench mips and the native tests need it)" >&2
  exit 0
}

if ! command -v "$cc" >/dev/null 2>&1; then
  unavailable "'$cc' not found (install gcc to build build/native/runner)"
fi
if [ "$(uname -m)" != "x86_64" ]; then
  unavailable "the native runner needs an x86_64 host (this is $(uname -m))"
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
