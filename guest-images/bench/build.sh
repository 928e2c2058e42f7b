#!/bin/bash
# Builds the initramfs of the benches (`hvlab bench sched`, the overcommit tests): the bundled
# guest-images/initramfs.cpio.gz followed by a second gzip-compressed newc cpio archive holding
# /bin/locks (locks.c) and /bin/memtouch (memtouch.c), static. Linux unpacks concatenated initramfs
# archives in order, so the bundled image stays untouched and the guest gains the binaries.
#
#   guest-images/bench/build.sh     -> build/bench-initramfs/bin/{locks,memtouch}, build/bench-initramfs.cpio.gz
#
# Idempotent and reproducible: every run rebuilds (a compile takes well under a second) and the
# same toolchain gives the same bytes (fixed mtimes, owner 0, gzip -n). Each output is written to a
# temporary name and renamed, so a test and a bench that build at the same time never see a torn file.
# Needs gcc with glibc's static libraries (Debian: gcc, libc6-dev) and cpio.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
root="$repo/build/bench-initramfs"
out="$repo/build/bench-initramfs.cpio.gz"
bundled="$repo/guest-images/initramfs.cpio.gz"

fail() { echo "guest-images/bench/build.sh: $*" >&2; exit 2; }
command -v gcc >/dev/null || fail "gcc not found (Debian: apt-get install gcc libc6-dev)"
command -v cpio >/dev/null || fail "cpio not found (Debian: apt-get install cpio)"
command -v gzip >/dev/null || fail "gzip not found (Debian: apt-get install gzip)"
# gcc prints the bare name back when it has no such file: no static glibc to link against.
[[ "$(gcc -print-file-name=libc.a)" == /* ]] || fail "glibc's static libc.a not found (Debian: apt-get install libc6-dev)"
[[ -f "$bundled" ]] || fail "$bundled is missing"

mkdir -p "$root/bin"
tmp="$(mktemp -d "$repo/build/.bench-initramfs.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

programs=(locks memtouch)
for p in "${programs[@]}"; do
  gcc -static -O2 -pthread -Wall -Wextra -Werror -o "$tmp/$p" "$here/$p.c"
  strip "$tmp/$p" 2>/dev/null || true
  chmod 0755 "$tmp/$p"
  mv -f "$tmp/$p" "$root/bin/$p"
done

# The second archive is assembled from a copy with fixed timestamps, so its bytes do not depend on
# when it was built.
mkdir -p "$tmp/root/bin"
for p in "${programs[@]}"; do cp "$root/bin/$p" "$tmp/root/bin/$p"; done
find "$tmp/root" -exec touch -h -d @0 {} +
(cd "$tmp/root" && { echo bin; for p in "${programs[@]}"; do echo "bin/$p"; done; } | cpio --quiet -o -H newc --owner=0:0 --reproducible) | gzip -n -9 > "$tmp/bench.cpio.gz"
cat "$bundled" "$tmp/bench.cpio.gz" > "$tmp/initramfs.cpio.gz"
mv -f "$tmp/initramfs.cpio.gz" "$out"
echo "$out"
