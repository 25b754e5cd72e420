#!/usr/bin/env bash
# The whole test suite: the README's test command, and what CI (.ci/run) runs.
# Needs only the Rust toolchain and Python 3.11 with pip; installs the rest into .venv/ and
# .venv-moto/, and Debian's chromium with apt-get (as root) for the report test.
set -euo pipefail
source "$(dirname "$0")/tools.sh"
cd "$ROOT"

step "cargo fmt --check"
cargo fmt --all -- --check

step "Documentation links and anchors (README.md, docs/, events/README.md)"
python3 scripts/check-docs.py

step "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --all-features --locked -- -D warnings

ensure_chromium
ensure_openssl
step "cargo test (unit, Veriff fake, local S3 server, end-to-end handler, report in Chromium)"
cargo test --workspace --locked

ensure_python_tools

step "sam validate --lint and cfn-lint on template.yaml"
sam validate --lint --template-file template.yaml
sam validate --template-file template.yaml --region us-east-1
cfn-lint template.yaml
# The same template with queue mode as the default: its resources and rules lint clean too.
queue_template="$(mktemp --suffix=.yaml)"
awk '/^  IngestMode:/ {p=1} p && /^    Default: direct$/ {sub(/direct/, "queue"); p=0} {print}' \
  template.yaml > "$queue_template"
grep -q '^    Default: queue$' "$queue_template" || { echo "could not switch IngestMode to queue" >&2; exit 1; }
sam validate --lint --template-file "$queue_template"
cfn-lint "$queue_template"
rm -f "$queue_template"

step "Object Lock and conditional writes on moto_server (the archive tests that need it)"
ensure_moto
cargo test --locked --test it -- --ignored evidence::
cargo test --locked --test it -- --ignored signing::
cargo test --locked --test it -- --ignored ledger::
step "Evidence by customer on moto_server (retain, hold, erase under Object Lock; restore)"
cargo test --locked --test it -- --ignored customer::
step "Queue mode on moto_server's SQS (enqueue, partial batch failures, dead-letter queue); Secrets Manager"
cargo test --locked --test it -- --ignored queue::
cargo test --locked --test it -- --ignored secrets::
cargo test --locked -p archiver-devkit --test moto -- --ignored

build_bootstrap
# The CLI's dependencies must never reach the Lambda binary (only code a binary calls is
# linked): a stripped bootstrap still names the crates its panics could come from.
if grep -aqE 'clap_builder|indicatif|clap_lex' "$BOOTSTRAP"; then
  echo "the bootstrap links CLI-only crates (clap, indicatif)" >&2
  exit 1
fi

step "Release bootstrap under the Lambda Runtime Interface Emulator (events/ files)"
VERIFF_ARCHIVER_BOOTSTRAP="$BOOTSTRAP" VERIFF_ARCHIVER_RIE="$RIE" \
  cargo test --locked --test it -- --ignored e2e_bootstrap::

# The artifact users deploy is arm64 (the template's default). Build it exactly as
# `sam build` does, and run the same end-to-end tests on it under user-mode emulation. The
# benchmark's timings stay on the native build: emulation is about 20 times slower.
build_bootstrap_arm64
ensure_arm64_emulation
step "Release bootstrap sizes: x86_64 $(stat -c %s "$BOOTSTRAP") bytes, arm64 $(stat -c %s "$BOOTSTRAP_ARM64") bytes"
# The emulation path must really run aarch64 code: it refuses the x86_64 binary.
refused="$("$(emulated_bootstrap "$BOOTSTRAP" x86_64-bootstrap-under-qemu)" 2>&1 || true)"
if ! grep -q 'Invalid ELF image for this architecture' <<<"$refused"; then
  echo "qemu-aarch64 did not refuse the x86_64 bootstrap: the arm64 test would prove nothing" >&2
  echo "$refused" >&2
  exit 1
fi
step "arm64 release bootstrap under qemu-aarch64 and the Runtime Interface Emulator (events/ files)"
VERIFF_ARCHIVER_BOOTSTRAP="$(emulated_bootstrap "$BOOTSTRAP_ARM64" arm64-bootstrap-under-qemu)" VERIFF_ARCHIVER_RIE="$RIE" \
  cargo test --locked --test it -- --ignored e2e_bootstrap::

step "Benchmark smoke run (tiny sizes; keeps scripts/bench.sh from rotting)"
scripts/bench.sh --smoke --bootstrap "$BOOTSTRAP"

step "Soak: one short seed per mode (every fault at once; the oracle over the end state)"
scripts/soak.sh --seed 7 --decisions 40 --mode both
step "Soak: the oracle fails on a sabotaged archive (a file overwritten, a manifest deleted)"
if target/debug/soak --seed 7 --decisions 8 --sabotage --bootstrap "$BOOTSTRAP" > /dev/null; then
  echo "the soak's oracle passed a sabotaged archive" >&2
  exit 1
fi

step "Dependency advisories (cargo audit; first install compiles for about 6 minutes)"
command -v cargo-audit >/dev/null 2>&1 || cargo install cargo-audit --locked --quiet
# An offline snapshot of the RustSec database sits beside the repository on the project's
# machines (no internet there); elsewhere cargo audit fetches the current database.
advisory_db=()
if [ -d "$ROOT/../shared/advisory-db/crates" ]; then
  advisory_db=(--db "$ROOT/../shared/advisory-db" --no-fetch)
fi
cargo audit "${advisory_db[@]}" --deny warnings
cargo audit "${advisory_db[@]}" --deny warnings --file fuzz/Cargo.lock

# Mutation testing of what the last change touched in the core modules: every mutant of a
# changed function must be caught by a unit test (scripts/mutants.sh; the full set is run by
# hand, see docs/testing.md "Mutation testing").
scripts/mutants.sh --in-diff "${MUTANTS_BASE:-}"

step "Coverage-guided fuzzing of the webhook path (${FUZZ_SECONDS:-30} s; cold build about 7 minutes)"
scripts/fuzz-smoke.sh "${FUZZ_SECONDS:-30}" | grep -vE '^#[0-9]+' 

step "All checks passed in ${SECONDS}s"
