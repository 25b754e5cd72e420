#!/usr/bin/env bash
# Runs the function's main job locally: no AWS account, no Docker. Builds the release
# bootstrap with sam build, starts a local S3 server and the Veriff fake on free ports, runs
# the bootstrap under the Lambda Runtime Interface Emulator, invokes it with events/ files
# and prints the answers, the objects stored and the manifest.
#   scripts/local-run.sh [EVENT_FILE ...]     (names in events/; default: a representative set)
#   scripts/local-run.sh --queue [EVENT_FILE ...]   queue mode: a local SQS (moto_server), the
#                                                   webhook answering "queued", the consumer
set -euo pipefail
source "$(dirname "$0")/tools.sh"
cd "$ROOT"

ensure_python_tools
queue_args=()
if [ "${1:-}" = "--queue" ]; then
  shift
  ensure_moto
  queue_args=(--queue --moto-server "$MOTO_SERVER")
fi
build_bootstrap
step "Building the dev servers (local-s3, veriff-fake)"
cargo build --quiet --locked -p archiver-devkit --bins
step "Running"
exec "$VENV/bin/python" "$ROOT/scripts/local_run.py" --bootstrap "$BOOTSTRAP" --rie "$RIE" \
  --devkit-bin "$ROOT/target/debug" "${queue_args[@]}" "$@"
