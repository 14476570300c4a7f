#!/usr/bin/env bash
# natter as a six-process cluster on loopback (1 api, 1 logic, 2 task, 2 connect) from the
# configs in deployments/local/, on the real servers scripts/deps.sh starts.
#
#   scripts/cluster.sh up       start the servers (if needed) and the six processes, wait until
#                               each answers /healthz
#   scripts/cluster.sh down     stop the six processes (the servers stay: scripts/deps.sh down)
#   scripts/cluster.sh status   which processes are up
#
# NATTER_BIN picks the binary (default: target/release/natter, built if missing); logs and pids
# go to NATTER_CLUSTER_DIR (default /tmp/natter-cluster). The REST API is then on
# 127.0.0.1:8080 and the WebSocket servers on 127.0.0.1:8391/ws and 127.0.0.1:8392/ws.
set -euo pipefail
cd "$(dirname "$0")/.."

DIR=${NATTER_CLUSTER_DIR:-/tmp/natter-cluster}
BIN=${NATTER_BIN:-target/release/natter}
# name, layer, HTTP port (for /healthz): the order is the start order.
PROCESSES="logic-1:logic:8181 task-1:task:8281 task-2:task:8282 connect-1:connect:8381 connect-2:connect:8382 api-1:api:8080"

say() { printf 'cluster: %s\n' "$*" >&2; }

alive() { [ -f "$DIR/$1.pid" ] && kill -0 "$(cat "$DIR/$1.pid")" 2>/dev/null; }

up() {
    mkdir -p "$DIR"
    if [ ! -x "$BIN" ]; then
        say "building $BIN"
        cargo build --release --bin natter
    fi
    # Only the servers the cluster uses: no MariaDB, no three-broker Kafka cluster.
    scripts/deps.sh up redis etcd postgres kafka
    local entry name layer port
    for entry in $PROCESSES; do
        IFS=: read -r name layer port <<<"$entry"
        alive "$name" && continue
        nohup "$BIN" serve "$layer" --config "deployments/local/$name.toml" \
            </dev/null >"$DIR/$name.log" 2>&1 &
        echo $! >"$DIR/$name.pid"
    done
    for entry in $PROCESSES; do
        IFS=: read -r name layer port <<<"$entry"
        for _ in $(seq 300); do
            if curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then break; fi
            alive "$name" || { tail -n 20 "$DIR/$name.log" >&2; say "$name exited"; exit 1; }
            sleep 0.1
        done
        curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 ||
            { tail -n 20 "$DIR/$name.log" >&2; say "$name did not answer in 30 s"; exit 1; }
        say "$name ($layer) is up; log $DIR/$name.log"
    done
}

down() {
    local entry name pid
    for entry in $PROCESSES; do
        name=${entry%%:*}
        alive "$name" || continue
        pid=$(cat "$DIR/$name.pid")
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
        rm -f "$DIR/$name.pid"
        say "$name stopped"
    done
}

case "${1:-}" in
up) up ;;
down) down ;;
status)
    for entry in $PROCESSES; do
        name=${entry%%:*}
        if alive "$name"; then echo "$name: up (pid $(cat "$DIR/$name.pid"))"; else echo "$name: down"; fi
    done
    ;;
*)
    echo "usage: $0 up|down|status" >&2
    exit 2
    ;;
esac
