#!/usr/bin/env bash
# The whole test suite: the README's test command, and what CI (.ci/run) runs.
# Needs only the Rust toolchain and Python 3.11 with pip; installs the rest into .venv/.
set -euo pipefail
source "$(dirname "$0")/tools.sh"
cd "$ROOT"

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo test (unit, Veriff fake, local S3 server, end-to-end handler)"
cargo test --workspace --locked

ensure_python_tools

step "sam validate --lint and cfn-lint on template.yaml"
sam validate --lint --template-file template.yaml
sam validate --template-file template.yaml --region us-east-1
cfn-lint template.yaml

build_bootstrap

step "Release bootstrap under the Lambda Runtime Interface Emulator (events/ files)"
VERIFF_ARCHIVER_BOOTSTRAP="$BOOTSTRAP" VERIFF_ARCHIVER_RIE="$RIE" \
  cargo test --locked --test e2e_bootstrap -- --ignored

step "All checks passed in ${SECONDS}s"
