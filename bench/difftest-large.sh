#!/usr/bin/env bash
# A large differential run against this machine's CPU: 1 M generated cases over every form
# (npm test runs a smaller fixed-seed set). Usage: bash bench/difftest-large.sh [SEED]
set -euo pipefail
cd "$(dirname "$0")/.."
seed="${1:-$(date +%s)}"
for part in 0 1 2 3 4 5 6 7 8 9; do
  npx hvlab difftest --seed "$((seed + part))" --count 100000 | tail -2
done
