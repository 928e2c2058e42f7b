#!/usr/bin/env bash
# Rebuilds the hvlab guest: a small x86-64 Linux kernel (bzImage) from Debian's
# linux-source-6.1 and a busybox initramfs (initramfs.cpio.gz) from Debian's
# busybox-static. See README.md.
#
# Usage: ./build.sh [all|config|kernel|initramfs|sums]
#   all        kernel + initramfs + SHA256SUMS (default; uses committed linux.config)
#   config     regenerate linux.config from tinyconfig + linux.fragment.config
#   kernel     build bzImage from linux.config
#   initramfs  build initramfs.cpio.gz from busybox-static and ./init
#   sums       rewrite SHA256SUMS
# Environment: JOBS (default 2).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
WORK=$HERE/.work
SOURCE_PACKAGE=linux-source-6.1
SOURCE_TARBALL=/usr/src/$SOURCE_PACKAGE.tar.xz
SRC=$WORK/$SOURCE_PACKAGE
BUSYBOX=/bin/busybox
JOBS=${JOBS:-2}

log() { printf '[build.sh] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

package_version() { dpkg-query -W -f='${Version}' "$1"; }

# Reproducible timestamps: the date of the kernel package's newest changelog
# entry, so rebuilding the same package versions gives identical outputs.
source_date_epoch() {
  local stamp
  stamp=$(zcat "/usr/share/doc/$SOURCE_PACKAGE/changelog.Debian.gz" \
    | sed -n 's/^ -- .*>  //p' | head -n1)
  date -u -d "$stamp" +%s
}

check_prerequisites() {
  local tool
  for tool in make gcc flex bison bc cpio gzip xz tar dpkg-query; do
    command -v "$tool" >/dev/null || die "missing tool: $tool"
  done
  [[ -f $SOURCE_TARBALL ]] || die "$SOURCE_TARBALL missing: apt-get install $SOURCE_PACKAGE"
  [[ -x $BUSYBOX ]] || die "$BUSYBOX missing: apt-get install busybox-static"
  [[ -f /usr/include/libelf.h ]] || die "libelf.h missing: apt-get install libelf-dev"
}

# Unpacks the tarball once per package version (the stamp records which one).
unpack_source() {
  local version stamp=$WORK/.source-version
  version=$(package_version "$SOURCE_PACKAGE")
  if [[ -f $SRC/Makefile && -f $stamp && $(<"$stamp") == "$version" ]]; then
    return
  fi
  log "unpacking $SOURCE_TARBALL ($version)"
  rm -rf "$SRC"
  mkdir -p "$WORK"
  tar -C "$WORK" -xf "$SOURCE_TARBALL"
  printf '%s\n' "$version" >"$stamp"
}

kmake() {
  local epoch
  epoch=$(source_date_epoch)
  make -C "$SRC" ARCH=x86_64 -j"$JOBS" \
    KBUILD_BUILD_TIMESTAMP="$(date -u -d "@$epoch")" \
    KBUILD_BUILD_USER=hvlab KBUILD_BUILD_HOST=hvlab KBUILD_BUILD_VERSION=1 \
    "$@"
}

# Every line of the fragment must hold in the resolved .config: "=value" lines
# verbatim, "is not set" lines as not =y (absent counts as off).
verify_fragment_applied() {
  local config=$1 line symbol failures=0
  while IFS= read -r line; do
    if [[ $line =~ ^(CONFIG_[A-Za-z0-9_]+)=(.*)$ ]]; then
      grep -qxF "$line" "$config" || { log "not applied: $line"; failures=$((failures + 1)); }
    elif [[ $line =~ ^#\ (CONFIG_[A-Za-z0-9_]+)\ is\ not\ set$ ]]; then
      symbol=${BASH_REMATCH[1]}
      if grep -qE "^$symbol=" "$config"; then
        log "not disabled: $(grep -E "^$symbol=" "$config")"
        failures=$((failures + 1))
      fi
    fi
  done <"$HERE/linux.fragment.config"
  ((failures == 0)) || die "$failures fragment option(s) lost to Kconfig dependencies"
}

build_config() {
  log "generating linux.config: tinyconfig + linux.fragment.config"
  kmake tinyconfig >/dev/null
  (cd "$SRC" && scripts/kconfig/merge_config.sh -m .config "$HERE/linux.fragment.config" >/dev/null)
  kmake olddefconfig >/dev/null
  verify_fragment_applied "$SRC/.config"
  cp "$SRC/.config" "$HERE/linux.config"
}

build_kernel() {
  [[ -f $HERE/linux.config ]] || die "linux.config missing: run ./build.sh config"
  cp "$HERE/linux.config" "$SRC/.config"
  kmake olddefconfig >/dev/null
  if ! diff -u "$HERE/linux.config" "$SRC/.config" >&2; then
    die "olddefconfig changed linux.config (different compiler or source?); run ./build.sh config"
  fi
  verify_fragment_applied "$SRC/.config"
  log "building bzImage with -j$JOBS"
  kmake bzImage
  cp "$SRC/arch/x86/boot/bzImage" "$HERE/bzImage"
  log "bzImage: $(stat -c %s "$HERE/bzImage") bytes, $(kmake -s kernelrelease)"
}

# gen_init_cpio list: directories, device nodes (no root needed), busybox,
# one symlink per applet at its standard path, and /init.
write_initramfs_list() {
  local staging=$1 dir applet
  for dir in bin sbin usr usr/bin usr/sbin dev proc sys tmp root; do
    printf 'dir /%s 0755 0 0\n' "$dir"
  done
  printf 'nod /dev/console 0600 0 0 c 5 1\n'
  printf 'nod /dev/ttyS0 0660 0 0 c 4 64\n'
  printf 'file /bin/busybox %s/busybox 0755 0 0\n' "$staging"
  printf 'file /init %s/init 0755 0 0\n' "$staging"
  "$staging/busybox" --list-full | LC_ALL=C sort | while IFS= read -r applet; do
    [[ $applet == bin/busybox ]] && continue
    printf 'slink /%s /bin/busybox 0777 0 0\n' "$applet"
  done
}

build_initramfs() {
  local staging=$WORK/initramfs epoch
  epoch=$(source_date_epoch)
  rm -rf "$staging"
  mkdir -p "$staging"
  cc -O2 -o "$WORK/gen_init_cpio" "$SRC/usr/gen_init_cpio.c"
  cp "$BUSYBOX" "$staging/busybox"
  cp "$HERE/init" "$staging/init"
  touch -d "@$epoch" "$staging/busybox" "$staging/init"
  write_initramfs_list "$staging" >"$staging/list"
  "$WORK/gen_init_cpio" -t "$epoch" "$staging/list" | gzip -n -9 >"$HERE/initramfs.cpio.gz"
  log "initramfs.cpio.gz: $(stat -c %s "$HERE/initramfs.cpio.gz") bytes," \
    "$(grep -c '^slink' "$staging/list") applet links"
}

write_sums() {
  (cd "$HERE" && sha256sum bzImage initramfs.cpio.gz >SHA256SUMS)
  cat "$HERE/SHA256SUMS" >&2
}

main() {
  local step=${1:-all}
  check_prerequisites
  unpack_source
  case $step in
    all) build_kernel; build_initramfs; write_sums ;;
    config) build_config ;;
    kernel) build_kernel ;;
    initramfs) build_initramfs ;;
    sums) write_sums ;;
    *) die "unknown step '$step' (all|config|kernel|initramfs|sums)" ;;
  esac
}

main "$@"
