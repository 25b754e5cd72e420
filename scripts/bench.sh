#!/usr/bin/env bash
# The benchmark (devkit/src/bin/bench/, a devkit binary behind its `bench` feature): decision time, throughput, peak memory, cold start,
# binary size, `verify` speed, `backfill` speed and memory, printed as plain-text tables.
# Everything runs on loopback against the devkit's Veriff fake and S3 server.
#
#   scripts/bench.sh                 full run, release build (several minutes)
#   scripts/bench.sh --smoke         tiny sizes, debug build (reuses the test build; < 60 s
#                                    once built): for CI, so the benchmark cannot rot
#   scripts/bench.sh --only N        one item (1-8); more arguments go to the benchmark
#   scripts/bench.sh --bootstrap P   use this bootstrap instead of building it with sam build
#
# Items 3-5 and 8 measure the release bootstrap as `sam build` makes it (item 8 also needs
# moto_server, for a local SQS: scripts/test.sh installs it); item 7 the veriff-archiver
# CLI, built here with the benchmark's profile.
set -euo pipefail
source "$(dirname "$0")/tools.sh"
cd "$ROOT"

smoke=0
only=""
have_bootstrap=0
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) smoke=1 ;;
    --only) only="${2:?--only takes 1-8}"; args+=(--only "$2"); shift ;;
    --bootstrap) have_bootstrap=1; args+=(--bootstrap "${2:?--bootstrap takes a path}"); shift ;;
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) args+=("$1") ;;
  esac
  shift
done

# Items 3, 4, 5 and 8 need the release bootstrap.
if [ "$have_bootstrap" = 0 ] && { [ -z "$only" ] || [ "$only" = 8 ] || { [ "$only" -ge 3 ] && [ "$only" -le 5 ]; }; }; then
  ensure_python_tools
  build_bootstrap
  # A private copy: a concurrent sam build empties .aws-sam/build while we measure.
  bench_dir="$(mktemp -d)"
  trap 'rm -rf "$bench_dir"' EXIT
  cp "$BOOTSTRAP" "$bench_dir/bootstrap"
  args+=(--bootstrap "$bench_dir/bootstrap")
  echo "    bootstrap: $BOOTSTRAP ($(stat -c %s "$BOOTSTRAP") bytes), measured from a copy"
fi

# Item 7 runs the veriff-archiver binary next to the benchmark's (target/<profile>/).
if [ -z "$only" ] || [ "$only" = 7 ]; then
  if [ "$smoke" = 1 ]; then
    cargo build --locked --bin veriff-archiver
  else
    cargo build --release --locked --bin veriff-archiver
  fi
fi

if [ "$smoke" = 1 ]; then
  step "Benchmark, smoke run (debug build, tiny sizes)"
  cargo run --locked -p archiver-devkit --features bench --bin bench -- --smoke "${args[@]}"
else
  step "Benchmark, full run (release build)"
  cargo run --release --locked -p archiver-devkit --features bench --bin bench -- "${args[@]}"
fi
