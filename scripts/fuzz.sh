#!/usr/bin/env bash
# Runs every cargo-fuzz target for a bounded time, seeded from fuzz/seeds/<target>, and prints
# each target's executions. Not part of ./dev test (it is not a pass/fail check with a fixed
# duration); anything it finds is saved under fuzz/artifacts/ and belongs in a regression test.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET]   (default 60)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
seconds=${1:-60}
targets=(verify_token authorizer_event credentials_body)

if ! command -v cargo-fuzz >/dev/null; then
  echo "==> installing cargo-fuzz" >&2
  cargo install cargo-fuzz --locked
fi
# cargo fuzz passes nightly-only flags (sanitizers); the stable toolchain accepts them this way.
export RUSTC_BOOTSTRAP=1

for target in "${targets[@]}"; do
  corpus="fuzz/corpus/$target"
  mkdir -p "$corpus"
  echo "==> $target for ${seconds}s" >&2
  log=$(mktemp)
  status=0
  cargo fuzz run "$target" "$corpus" "fuzz/seeds/$target" -- \
    -max_total_time="$seconds" -print_final_stats=1 -timeout=10 >"$log" 2>&1 || status=$?
  execs=$(grep -m1 'stat::number_of_executed_units' "$log" | awk '{print $2}')
  rate=$(grep -m1 'stat::average_exec_per_sec' "$log" | awk '{print $2}')
  if [[ $status -ne 0 ]]; then
    tail -n 40 "$log" >&2
    rm -f "$log"
    echo "FAIL $target: the fuzzer found a failing input (see fuzz/artifacts/$target)" >&2
    exit 1
  fi
  rm -f "$log"
  printf '%-18s %6ss  %12s executions  %8s exec/s\n' "$target" "$seconds" "${execs:-?}" "${rate:-?}"
done
