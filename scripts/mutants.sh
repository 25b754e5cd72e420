#!/usr/bin/env bash
# Mutation testing with cargo-mutants: each mutant is one function body or operator of the
# library rewritten (a `true` for a signature check, `<` for `<=`, ...); a mutant that no test
# catches is a behaviour no test checks. Configuration, and the mutants accepted as
# equivalent, are in .cargo/mutants.toml; results and reasons in mutants.md.
#
#   scripts/mutants.sh                     # the core modules (about 40 minutes on 2 cores)
#   scripts/mutants.sh src/webhook.rs ...  # these files only
#   scripts/mutants.sh --in-diff [BASE]    # only core-module code changed since BASE
#                                          # (default: the merge base with origin/main; on
#                                          # main itself, the last commit): what CI runs
#
# Exit status: 0 when every mutant is caught (or is unviable), else cargo-mutants' own
# (2: a mutant survived, 3: a test run timed out, 4: the tests fail without any mutant).
# The report lands in mutants.out/ (git-ignored).
set -euo pipefail
source "$(dirname "$0")/tools.sh"
cd "$ROOT"

CORE_MODULES=(src/domain.rs src/stored.rs src/units.rs src/webhook.rs src/layout.rs
  src/event.rs src/allowlist.rs src/media.rs src/select.rs src/manifest.rs src/signing.rs
  src/config.rs src/retry.rs src/audit/rules.rs src/audit/class.rs src/audit/proof.rs
  src/backfill/input.rs src/ledger/plan.rs src/ledger/format.rs src/audit/chain.rs
  src/index.rs src/customer/plan.rs src/budget.rs src/metrics.rs src/veriff/rate.rs
  src/queue/message.rs src/credentials.rs)

if ! command -v cargo-mutants >/dev/null 2>&1; then
  step "Installing cargo-mutants 27.1.0 (about 3 minutes, once)"
  cargo install cargo-mutants --version 27.1.0 --locked --quiet
fi

args=()
if [ "${1:-}" = "--in-diff" ]; then
  base="${2:-}"
  if [ -z "$base" ]; then
    # A branch: its merge base with main. Main itself (CI on a clone of main, where the
    # merge base is HEAD): the change being landed, the last commit.
    base="$(git merge-base HEAD origin/main 2>/dev/null || true)"
    if [ -z "$base" ] || [ "$base" = "$(git rev-parse HEAD)" ]; then
      base="$(git rev-parse HEAD~1)"
    fi
  fi
  diff_file="$(mktemp --suffix=.diff)"
  git diff "$base" -- src/ > "$diff_file"
  step "Mutants in code changed since $(git rev-parse --short "$base") ($(grep -c '^+++ ' "$diff_file" || true) files)"
  if [ ! -s "$diff_file" ]; then
    echo "no library source changed: nothing to mutate"
    exit 0
  fi
  # CI has just built and run the tests in this checkout: mutate it in place (it is restored
  # after each mutant) to reuse the warm target directory, and skip the baseline run.
  args=(--in-diff "$diff_file" --in-place --baseline skip --timeout 300)
  for f in "${CORE_MODULES[@]}"; do args+=(--file "$f"); done
else
  # A mutant that sends a property test into long shrinking takes minutes to fail.
  args=(--timeout 300)
  files=("$@")
  [ ${#files[@]} -gt 0 ] || files=("${CORE_MODULES[@]}")
  for f in "${files[@]}"; do args+=(--file "$f"); done
  step "Mutants in ${files[*]}"
fi
cargo mutants "${args[@]}"
