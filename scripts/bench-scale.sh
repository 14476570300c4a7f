#!/usr/bin/env bash
# What the number of objects costs the cluster's log, as BENCHMARKS.md reports it: the six
# processes of scripts/cluster.sh on a fresh topic prefix with TOPOLOGY (partitioned or
# per-object), then `natter-bench spread` sends RATE one-to-one messages a second over REST for
# SECONDS, spread over USERS seeded users (each sends to its friend, whose inbox is offline), so
# that every one of the USERS inboxes receives messages. Prints the generator's row, the
# partitions the broker then holds for the run's topics, and the task processes' memory.
#   scripts/bench-scale.sh TOPOLOGY USERS RATE SECONDS SESSIONS [OUT]
# SESSIONS is a sessions file of at least USERS users from `natter-bench seed` into the
# cluster's database (scripts/bench-cluster.sh shows how).
set -euo pipefail
cd "$(dirname "$0")/.."
usage="usage: scripts/bench-scale.sh TOPOLOGY USERS RATE SECONDS SESSIONS [OUT]"
topology=${1:?$usage}
users=${2:?$usage}
rate=${3:?$usage}
seconds=${4:?$usage}
sessions=$(realpath "${5:?$usage}")
out=$(realpath -m "${6:-bench-results/scale-$topology-$users}")
export NATTER_DEPS_DIR=${NATTER_DEPS_DIR:-/tmp/natter-deps}
cluster_dir=${NATTER_CLUSTER_DIR:-/tmp/natter-cluster}
cargo build --release --locked -q -p natter -p natter-bench
prefix="scale-$topology-$users-$RANDOM"
scripts/cluster.sh down >/dev/null 2>&1 || true
NATTER_CLUSTER__KAFKA__TOPOLOGY=$topology NATTER_CLUSTER__KAFKA__TOPIC_PREFIX=$prefix \
    scripts/cluster.sh up
target/release/natter-bench spread --sessions "$sessions" --users "$users" --rate "$rate" \
    --seconds "$seconds" --out "$out"
# Let the task processes number and store what is still on its way.
sleep 5
partitions=$(find "$NATTER_DEPS_DIR/kafka/data" -maxdepth 1 -name "$prefix.*" | wc -l)
echo "broker partitions of this run's topics: $partitions"
for name in task-1 task-2; do
    rss=$(awk '/^VmRSS/ {print $2}' "/proc/$(cat "$cluster_dir/$name.pid")/status")
    echo "$name resident memory: $((rss / 1024)) MiB"
done
