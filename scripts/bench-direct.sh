#!/usr/bin/env bash
# One-to-one chat on `natter serve`, as BENCHMARKS.md reports it: a fresh data folder, 2,000
# users seeded straight into the store in friend pairs (`natter-bench seed`), the server pinned
# to core 0 and the generator to core 1.
#   scripts/bench-direct.sh RATE_PER_USER [SECONDS] [OUT]
# Prints the summary row, the bytes the server wrote to disk, and its refusals; the server's
# log goes to OUT/serve.log, and its /metrics at the end to the file METRICS_OUT names, if set.
# NATTER_BIN_DIR=DIR takes natter and natter-bench from DIR instead of building them.
# ACK_INTERVAL_MS=250 makes the clients acknowledge as the web client does (the newest message of
# a chat at most every 250 ms); unset, every message is acknowledged as it arrives.
# SERVER=relay runs `natter-bench relay` in natter's place on core 0 (the same seeded users):
# a plain tokio-tungstenite relay that keeps nothing, the floor this machine sets.
# ECHO=false and ACKED=false connect with ?echo=false and ?acked=false (docs/protocol.md): no
# push of a client's own messages to the connection that sent them, no `acked` answers.
set -euo pipefail
cd "$(dirname "$0")/.."
rate=${1:?usage: scripts/bench-direct.sh RATE_PER_USER [SECONDS] [OUT]}
seconds=${2:-15}
out=$(realpath -m "${3:-bench-results/direct-$rate}")
# NATTER_BIN_DIR runs binaries built elsewhere (an older commit, for a side-by-side run).
if [ -n "${NATTER_BIN_DIR:-}" ]; then
    bin=$(realpath "$NATTER_BIN_DIR")
else
    cargo build --release --locked -q -p natter -p natter-bench
    bin=$PWD/target/release
fi
work=$(mktemp -d /tmp/natter-bench.XXXXXX)
server=""
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; cp "$work/serve.log" "$out/serve.log" 2>/dev/null; rm -rf "$work"' EXIT
cd "$work"
# A first start creates the database and the signing secret, then the users are seeded.
"$bin/natter" serve >/dev/null 2>&1 &
server=$!
for _ in $(seq 50); do [ -f natter-data/jwt-secret ] && break; sleep 0.1; done
sleep 1
kill "$server"; wait "$server" 2>/dev/null || true
"$bin/natter-bench" seed --users 2000 --sessions "$work/sessions.json"
server_kind=${SERVER:-natter}
if [ "$server_kind" = relay ]; then
    taskset -c 0 "$bin/natter-bench" relay --sessions "$work/sessions.json" >"$work/serve.log" 2>&1 &
    server=$!
    for _ in $(seq 100); do grep -q relaying "$work/serve.log" 2>/dev/null && break; sleep 0.1; done
else
    taskset -c 0 "$bin/natter" serve >"$work/serve.log" 2>&1 &
    server=$!
    for _ in $(seq 100); do curl -sf localhost:8080/healthz >/dev/null 2>&1 && break; sleep 0.1; done
fi
before=$(awk '/^write_bytes/{print $2}' "/proc/$server/io")
taskset -c 1 "$bin/natter-bench" direct --sessions "$work/sessions.json" --users 2000 \
    --rate "$rate" --seconds "$seconds" --drain-seconds 5 --ack-interval-ms "${ACK_INTERVAL_MS:-0}" \
    --echo "${ECHO:-true}" --acked "${ACKED:-true}" --server-pid "$server" --out "$out"
after=$(awk '/^write_bytes/{print $2}' "/proc/$server/io")
echo "bytes written to disk by the server: $((after - before))"
# The relay has no /metrics. natter's are read once: the refusals are printed from the same
# copy that METRICS_OUT keeps.
if [ "$server_kind" != relay ]; then
    metrics=${METRICS_OUT:-$work/metrics}
    # A failed read ends the script only when METRICS_OUT asked for the copy.
    curl -s localhost:8080/metrics >"$metrics" || [ -z "${METRICS_OUT:-}" ]
    grep -E '^natter_(sends_refused|writer_refused|messages_accepted)_total' "$metrics" || true
fi
