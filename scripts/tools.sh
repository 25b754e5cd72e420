# shellcheck shell=bash
# Sourced by the project's scripts: repo-root paths, progress output, and the project-local
# Python venv (.venv/, git-ignored) holding aws-sam-cli (sam + the Lambda Runtime Interface
# Emulator), cargo-lambda (with zig) and cfn-lint, at the versions in requirements-dev.txt;
# and a second venv (.venv-moto/) with moto_server, from requirements-moto.txt.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
export SAM_CLI_TELEMETRY=0 CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-auto}"

# step NAME: prints a progress header with the elapsed time of the whole script.
step() {
  printf '\n==> [%4ss] %s\n' "$SECONDS" "$*"
}

# ensure_python_tools: creates .venv and installs the pinned tools when missing or outdated.
ensure_python_tools() {
  local stamp="$VENV/.requirements-dev.txt"
  if [ ! -x "$VENV/bin/sam" ] || ! cmp -s "$ROOT/scripts/requirements-dev.txt" "$stamp"; then
    step "Installing aws-sam-cli, cargo-lambda and cfn-lint into .venv (about a minute, once)"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$ROOT/scripts/requirements-dev.txt"
    cp "$ROOT/scripts/requirements-dev.txt" "$stamp"
  fi
  export PATH="$VENV/bin:$PATH"
  RIE="$("$VENV/bin/python" -c 'import samcli, os; print(os.path.join(os.path.dirname(samcli.__file__), "local", "rapid", "aws-lambda-rie-x86_64"))')"
  export RIE
}

# ensure_moto: creates .venv-moto with moto_server when missing or outdated, and exports
# MOTO_SERVER (the path the tests' MotoServer launcher starts).
ensure_moto() {
  local venv="$ROOT/.venv-moto" stamp="$ROOT/.venv-moto/.requirements-moto.txt"
  if [ ! -x "$venv/bin/moto_server" ] || ! cmp -s "$ROOT/scripts/requirements-moto.txt" "$stamp"; then
    step "Installing moto_server into .venv-moto (about 30 seconds, once)"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$ROOT/scripts/requirements-moto.txt"
    cp "$ROOT/scripts/requirements-moto.txt" "$stamp"
  fi
  export MOTO_SERVER="$venv/bin/moto_server"
}

# apt_install PACKAGE...: Debian packages, as root or through sudo.
apt_install() {
  if [ "$(id -u)" = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  else
    sudo DEBIAN_FRONTEND=noninteractive apt-get update -qq
    sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  fi
}

# ensure_openssl: Debian's openssl command, the local RFC 3161 time-stamping authority of
# the ledger's tests (`openssl ts -reply`) and the hand check of a digest they run.
ensure_openssl() {
  if ! command -v openssl >/dev/null 2>&1; then
    step "Installing Debian's openssl (the tests' local time-stamping authority; once)"
    apt_install openssl
  fi
}

# ensure_chromium: Debian's Chromium, for the tests that load the evidence report in a real
# headless browser. Installed with apt-get when missing (as root, which CI and the project's
# machines are); elsewhere install the `chromium` package yourself or set CHROMIUM.
ensure_chromium() {
  if [ -z "${CHROMIUM:-}" ] && ! command -v chromium >/dev/null 2>&1; then
    step "Installing Debian's chromium (headless browser for the report test; once)"
    apt_install chromium
  fi
  export CHROMIUM="${CHROMIUM:-$(command -v chromium)}"
}

# build_bootstrap: the release bootstrap, built the way AWS SAM builds it (sam build runs
# cargo lambda build --release). Sets BOOTSTRAP to the artifact.
build_bootstrap() {
  step "Building the release bootstrap with sam build (cold: about 5 minutes; warm: seconds)"
  (cd "$ROOT" && sam build --template-file template.yaml --parameter-overrides Architecture=x86_64 \
    --build-dir "$ROOT/.aws-sam/build" 2>&1 | grep -vE '^\s*$' | sed 's/^/    /')
  BOOTSTRAP="$ROOT/.aws-sam/build/ArchiverFunction/bootstrap"
  [ -x "$BOOTSTRAP" ] || { echo "sam build left no $BOOTSTRAP" >&2; return 1; }
  export BOOTSTRAP
}

# build_bootstrap_arm64: the artifact users deploy: `sam build` with the template's default
# Architecture (arm64), which cargo-lambda cross-compiles with zig (it installs the
# aarch64-unknown-linux-gnu target with rustup on first use). Built into a directory of its
# own, beside the x86_64 one. Sets BOOTSTRAP_ARM64, and checks that it is an aarch64 ELF.
build_bootstrap_arm64() {
  step "Building the arm64 bootstrap as a user's sam build does (default Architecture; cold: about 6 minutes)"
  (cd "$ROOT" && sam build --template-file template.yaml \
    --build-dir "$ROOT/.aws-sam/build-arm64" 2>&1 | grep -vE '^\s*$' | sed 's/^/    /')
  BOOTSTRAP_ARM64="$ROOT/.aws-sam/build-arm64/ArchiverFunction/bootstrap"
  [ -x "$BOOTSTRAP_ARM64" ] || { echo "sam build left no $BOOTSTRAP_ARM64" >&2; return 1; }
  # ELF header: e_machine (bytes 18-19, little-endian) is 0x00b7 for aarch64, 0x003e for x86_64.
  local machine
  machine="$(od -An -tx1 -j18 -N2 "$BOOTSTRAP_ARM64" | tr -d ' \n')"
  [ "$machine" = "b700" ] || { echo "$BOOTSTRAP_ARM64 is not an aarch64 binary (e_machine $machine)" >&2; return 1; }
  export BOOTSTRAP_ARM64
}

# ensure_arm64_emulation: Debian's qemu-user-static (user-mode emulation of one aarch64
# process) and libc6-arm64-cross (the aarch64 glibc and loader it runs the bootstrap with),
# installed with apt-get when missing (as root, as CI and the project's machines are).
ensure_arm64_emulation() {
  if ! command -v qemu-aarch64-static >/dev/null 2>&1 || [ ! -e /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1 ]; then
    step "Installing Debian's qemu-user-static and libc6-arm64-cross (arm64 emulation; once)"
    local sudo=()
    [ "$(id -u)" = 0 ] || sudo=(sudo)
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user-static libc6-arm64-cross >/dev/null
  fi
  QEMU_AARCH64="$(command -v qemu-aarch64-static)"
  export QEMU_AARCH64
}

# emulated_bootstrap BINARY NAME: writes a two-line script, .aws-sam/NAME, that runs BINARY
# under qemu-aarch64-static (binfmt_misc is not available here, so the Runtime Interface
# Emulator is given this script as the bootstrap) and prints its path.
emulated_bootstrap() {
  local script="$ROOT/.aws-sam/$2"
  printf '#!/bin/sh\nexec %s -L /usr/aarch64-linux-gnu %s "$@"\n' "$QEMU_AARCH64" "$1" > "$script"
  chmod +x "$script"
  echo "$script"
}
