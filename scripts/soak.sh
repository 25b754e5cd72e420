#!/usr/bin/env bash
# The soak: many decisions through the release bootstrap with every fault at once, from one
# seeded schedule, then an oracle over the end state (devkit/src/bin/soak.rs says what).
#
#   scripts/soak.sh --seed N --decisions N [--mode direct|queue|both] [--workers N]
#
# Builds the release bootstrap (sam build) and the soak driver, starts moto_server for queue
# mode, and checks that the run's schedule is the one the seed gives. Exit 0 when every
# invariant holds, 1 when one does not, 2 when the soak could not run.
set -euo pipefail
source "$(dirname "$0")/tools.sh"
cd "$ROOT"

seed=1
decisions=100
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seed) seed="${2:?--seed takes a number}"; shift ;;
    --decisions) decisions="${2:?--decisions takes a number}"; shift ;;
    -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) args+=("$1") ;;
  esac
  shift
done

ensure_python_tools
build_bootstrap
ensure_moto
cargo build --locked -q -p archiver-devkit --features bench --bin soak
soak="$ROOT/target/debug/soak"
# A private copy: a concurrent sam build empties .aws-sam/build.
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
cp "$BOOTSTRAP" "$dir/bootstrap"

planned="$("$soak" --seed "$seed" --decisions "$decisions" --plan-only | sed 's/.*schedule sha256 //')"
step "Soak: seed $seed, $decisions decisions, ${args[*]:-}"
"$soak" --seed "$seed" --decisions "$decisions" --bootstrap "$dir/bootstrap" "${args[@]}" | tee "$dir/out"
# The same seed, the same schedule.
grep 'schedule sha256' "$dir/out" | sed 's/.*schedule sha256 //' | while read -r ran; do
  [ "$ran" = "$planned" ] || { echo "the run's schedule $ran is not the seed's $planned" >&2; exit 1; }
done
