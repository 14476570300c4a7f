#!/usr/bin/env bash
# The browser tests: natter's web client in headless Chromium (Debian's package), driven by
# playwright-core from npm, against a fresh embedded server. Installs what is missing; fails
# with the reason when it cannot. Screenshots land in test-artifacts/browser/.
# Usage: scripts/browser-test.sh [test files...]   (NATTER_BIN=path uses that binary, unbuilt)
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'browser tests: %s\n' "$*"; }
fail() { say "$*" >&2; exit 1; }

if [ ! -x /usr/bin/chromium ]; then
    say "installing Debian's chromium"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || fail "apt-get update failed"
    # apt can stop half-way when an upgrade removes downloaded archives: repair and retry.
    apt-get install -y -qq --no-install-recommends chromium >/dev/null \
        || { apt-get -f install -y -qq >/dev/null; apt-get install -y -qq --no-install-recommends chromium >/dev/null; } \
        || fail "could not install chromium with apt-get"
fi
[ -x /usr/bin/chromium ] || fail "/usr/bin/chromium is missing after the install"

say "installing playwright-core (npm ci)"
(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error) || fail "npm ci failed"

if [ -n "${NATTER_BIN:-}" ]; then
    binary=$NATTER_BIN
else
    say "building natter"
    cargo build --locked --bin natter
    binary="${CARGO_TARGET_DIR:-target}/debug/natter"
fi

data=$(mktemp -d /tmp/natter-browser.XXXXXX)
api=${NATTER_BROWSER_API:-127.0.0.1:18580}
ws=${NATTER_BROWSER_WS:-127.0.0.1:18590}
NATTER_LISTEN__API=$api NATTER_LISTEN__WS=$ws NATTER_NODE__DATA_DIR="$data/data" \
    NATTER_LOGIC__PRESENCE_GRACE_MS=500 NATTER_LOGIC__GROUP_ONLINE_INTERVAL_MS=300 \
    "$binary" serve >"$data/server.log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$data"' EXIT
for _ in $(seq 1 100); do
    curl -fsS "http://$api/healthz" >/dev/null 2>&1 && break
    kill -0 "$server" 2>/dev/null || { cat "$data/server.log" >&2; fail "natter serve exited"; }
    sleep 0.1
done
curl -fsS "http://$api/healthz" >/dev/null || fail "natter serve did not answer on $api"

artifacts="$PWD/test-artifacts/browser"
rm -rf "$artifacts" && mkdir -p "$artifacts"
say "running (screenshots in $artifacts)"
if ! NATTER_URL="http://$api" NATTER_ARTIFACTS="$artifacts" \
    node --test --test-concurrency=1 "${@:-tests/browser/}"; then
    say "server log:" >&2
    tail -50 "$data/server.log" >&2
    fail "failed"
fi
say "passed"
