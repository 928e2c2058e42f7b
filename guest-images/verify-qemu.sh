#!/usr/bin/env bash
# Boots bzImage + initramfs.cpio.gz under QEMU with the plain command line
# "console=ttyS0", waits for the init banner and the shell prompt, types a few
# commands and checks that `poweroff -f` makes QEMU exit on its own.
#
# Usage: ./verify-qemu.sh [extra qemu args...]
#   ./verify-qemu.sh -cpu qemu64
#   ./verify-qemu.sh -accel tcg -cpu max
# Environment: TIMEOUT seconds for the whole run (default 120);
#              TRANSCRIPT=path keeps the full console transcript.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TIMEOUT=${TIMEOUT:-120}
BANNER='hvlab guest ready'
PROMPT='~ # '
POWER_DOWN='reboot: Power down'
COMMANDS='uname -a; cat /proc/cpuinfo | head -3; poweroff -f'

run_dir=$(mktemp -d)
trap 'rm -rf "$run_dir"' EXIT
mkfifo "$run_dir/console-in"
transcript=$run_dir/console-out

started=$(date +%s.%N)
timeout "$TIMEOUT" qemu-system-x86_64 -m 256 -nographic -no-reboot \
  -kernel "$HERE/bzImage" -initrd "$HERE/initramfs.cpio.gz" \
  -append "console=ttyS0" "$@" <"$run_dir/console-in" >"$transcript" 2>&1 &
qemu_pid=$!
exec 3>"$run_dir/console-in"

# Type nothing before the prompt: bytes sent earlier would reach the UART
# before the shell exists and be lost or echoed into the boot log.
while ! { grep -qF "$BANNER" "$transcript" && grep -qF "$PROMPT" "$transcript"; }; do
  kill -0 "$qemu_pid" 2>/dev/null || break
  sleep 0.1
done
prompt_at=$(date +%s.%N)
# If QEMU already exited the FIFO has no reader: report that, don't die of SIGPIPE.
trap '' PIPE
printf '%s\n' "$COMMANDS" >&3 2>/dev/null || echo "note: QEMU exited before the prompt"

qemu_status=0
wait "$qemu_pid" || qemu_status=$?
exec 3>&-
finished=$(date +%s.%N)
[[ -n ${TRANSCRIPT:-} ]] && cp "$transcript" "$TRANSCRIPT"

tr -d '\r' <"$transcript" | tail -n 15
echo "---"
printf 'qemu args: %s\n' "${*:-(none)}"
printf 'boot to prompt: %.2f s; total run: %.2f s; qemu exit status: %d\n' \
  "$(echo "$prompt_at - $started" | bc)" "$(echo "$finished - $started" | bc)" "$qemu_status"

failures=0
expect_in_transcript() {
  grep -qF "$1" "$transcript" || { echo "FAIL: transcript lacks '$1'"; failures=$((failures + 1)); }
}
expect_in_transcript "$BANNER: "
expect_in_transcript "$PROMPT"
expect_in_transcript "Linux (none) "
expect_in_transcript "$POWER_DOWN"
((qemu_status == 0)) || { echo "FAIL: qemu exit status $qemu_status (124 = timeout)"; failures=$((failures + 1)); }
((failures == 0)) && echo "PASS"
exit $((failures == 0 ? 0 : 1))
