#!/usr/bin/env bash
# Coverage-guided fuzzing smoke run of the webhook path (fuzz/fuzz_targets/webhook.rs) on the
# stable toolchain: `-s none` (no sanitizer) needs no nightly.
#
#   scripts/fuzz-smoke.sh [SECONDS]     # default 60
#
# Installs cargo-fuzz if missing. Fuzzes a copy of the committed seeds (fuzz/corpus/webhook/)
# in target/fuzz-corpus/webhook, so the committed corpus stays as it is. A crash (a panic or a
# failed invariant) stops the run, leaves the input in fuzz/artifacts/webhook/ and makes this
# script fail. The first run compiles the crate and its dependencies with coverage
# instrumentation (several minutes); later runs start in seconds.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

seconds="${1:-60}"
if ! [[ "$seconds" =~ ^[0-9]+$ ]]; then
  echo "usage: $0 [SECONDS]" >&2
  exit 2
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz..."
  cargo install cargo-fuzz --locked
fi

corpus="target/fuzz-corpus/webhook"
mkdir -p "$corpus"
cp fuzz/corpus/webhook/* "$corpus/"

log="$(mktemp)"
trap 'rm -f "$log"' EXIT

started=$(date +%s)
status=0
cargo fuzz run -s none webhook "$corpus" -- \
  -max_total_time="$seconds" -rss_limit_mb=2048 -print_final_stats=1 \
  -dict=fuzz/webhook.dict 2>&1 | tee "$log" \
  || status=$?
elapsed=$(( $(date +%s) - started ))

execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
per_second="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)"
cov="$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2 || true)"
echo
echo "fuzz-smoke: ${execs:-?} executions (${per_second:-?}/s), cov ${cov:-?}, corpus $(ls "$corpus" | wc -l) inputs, ${elapsed}s including build"
if [ "$status" -ne 0 ]; then
  echo "fuzz-smoke: FAILED (exit $status); the crashing input is in fuzz/artifacts/webhook/" >&2
  exit "$status"
fi
