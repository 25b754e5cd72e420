#!/usr/bin/env bash
# Regenerates the signed Lambda Function URL events in events/ from the raw webhook bodies
# in events/bodies/, with the devkit's sign-event and the local test credentials (the ones
# the local demo and the Veriff fake use). Run from anywhere: ./scripts/make-events.sh
#
# Each event carries x-auth-client and x-hmac-signature headers; requestId and time fields
# reflect the moment of generation, so re-running changes those lines (the signatures of an
# unchanged body do not change).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

SECRET="local-test-shared-secret"
API_KEY="local-test-api-key"

cargo build -q -p archiver-devkit --bin sign-event
target_dir="$(cargo metadata --no-deps --format-version 1 \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
sign_event="$target_dir/debug/sign-event"

sign() { # sign OUTPUT BODY [EXTRA_OPTIONS...]
  local out="$1" body="$2"
  shift 2
  "$sign_event" --secret "$SECRET" --api-key "$API_KEY" "$@" "$body" > "$out.tmp"
  mv "$out.tmp" "$out"
  echo "wrote $out"
}

for name in decision-approved decision-declined decision-resubmission decision-later-attempt event-started \
  fullauto-approved fullauto-declined; do
  sign "events/$name.json" "events/bodies/$name.json"
done
sign events/bad-signature.json events/bodies/decision-approved.json --bad-signature
sign events/decision-approved-base64.json events/bodies/decision-approved.json --base64
