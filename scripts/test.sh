#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what a fresh machine lacks, checks formatting
# and lints, then runs every test. Usage: scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

started=$SECONDS
# Each step's header carries the seconds since the suite began, so a CI log shows which step
# took the time.
step() { printf '\n==> %s (at %d s)\n' "$*" "$((SECONDS - started))"; }

step "toolchain"
cargo --version
rustup component list --installed 2>/dev/null | grep -qE '^rustfmt' || rustup component add rustfmt
rustup component list --installed 2>/dev/null | grep -qE '^clippy' || rustup component add clippy
# protoc comes from the protoc-bin-vendored crate, so no system package is needed.

# The real servers' data and logs go under one temporary folder; `down` stops what was started
# there and removes it when this script ends, however it ends.
export NATTER_DEPS_DIR=${NATTER_DEPS_DIR:-$(mktemp -d /tmp/natter-deps.XXXXXX)}
trap 'scripts/deps.sh down' EXIT

step "Apache Kafka's jars (Maven Central, fetched once per machine, in the background while the checks run)"
scripts/deps.sh prefetch >"$NATTER_DEPS_DIR/prefetch.log" 2>&1 &

step "format (cargo fmt --check)"
cargo fmt --all -- --check

step "lints (cargo clippy --all-targets -D warnings)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "real servers for the cluster tests (scripts/deps.sh)"
# Installs what is missing and starts each server on loopback, waiting until it answers.
if ! scripts/deps.sh up; then
    # The background fetch may hold the reason (a registry refusing, a full disk).
    echo "the background fetch printed:" >&2
    tail -n 40 "$NATTER_DEPS_DIR/prefetch.log" >&2 || true
    exit 1
fi
eval "$(scripts/deps.sh env)"

step "tests"
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --locked --no-tests=fail --failure-output=immediate-final
    # nextest does not run doctests.
    cargo test --workspace --locked --doc
else
    cargo test --workspace --locked
fi

step "fuzzing: every target in fuzz/ for 30 s (scripts/fuzz.sh)"
scripts/fuzz.sh 30

step "browser tests: the web client in headless Chromium (scripts/browser-test.sh)"
scripts/browser-test.sh

printf '\n==> all checks passed in %d s\n' "$((SECONDS - started))"
