#!/usr/bin/env bash
# One-to-one chat through the six-process cluster (scripts/cluster.sh: 1 api, 1 logic, 2 task,
# 2 connect) on Apache Kafka, PostgreSQL, Redis and etcd from scripts/deps.sh, all on this
# machine, as BENCHMARKS.md reports it: USERS users seeded straight into PostgreSQL in friend
# pairs (`natter-bench seed`), their connections spread over both connect nodes, each sending to
# its friend at RATE_PER_USER messages a second.
#   scripts/bench-cluster.sh USERS RATE_PER_USER [SECONDS] [OUT] [GENERATOR OPTIONS...]
# Options after OUT go to `natter-bench direct` (say `--echo false --acked false`).
# Prints the generator's summary row and the CPU seconds each process used during the run.
# The sessions go to OUT/sessions.json; SESSIONS=FILE runs those users again instead of seeding
# new ones (on the per-object topology, a first run also creates every user's topic).
# The servers and the cluster stay up afterwards (scripts/cluster.sh down, scripts/deps.sh down).
# NATTER_BIN_DIR=DIR takes natter and natter-bench from DIR instead of building them (an older
# commit, for a side-by-side run; stop the cluster first so it starts from DIR's natter).
set -euo pipefail
cd "$(dirname "$0")/.."
users=${1:?usage: scripts/bench-cluster.sh USERS RATE_PER_USER [SECONDS] [OUT]}
rate=${2:?usage: scripts/bench-cluster.sh USERS RATE_PER_USER [SECONDS] [OUT]}
seconds=${3:-30}
out=$(realpath -m "${4:-bench-results/cluster-$users-$rate}")
shift $(($# < 4 ? $# : 4))
export NATTER_DEPS_DIR=${NATTER_DEPS_DIR:-/tmp/natter-deps}
cluster_dir=${NATTER_CLUSTER_DIR:-/tmp/natter-cluster}
if [ -n "${NATTER_BIN_DIR:-}" ]; then
    bin=$(realpath "$NATTER_BIN_DIR")
    export NATTER_BIN=$bin/natter
else
    cargo build --release --locked -q -p natter -p natter-bench
    bin=target/release
fi
scripts/cluster.sh up
mkdir -p "$out"
sessions=${SESSIONS:-$out/sessions.json}
if [ -z "${SESSIONS:-}" ]; then
    work=$(mktemp -d /tmp/natter-bench-cluster.XXXXXX)
    trap 'rm -rf "$work"' EXIT
    # The cluster's signing secret, so the seeded sessions' tokens are accepted by connect.
    sed -n 's/^jwt_secret = "\(.*\)"$/\1/p' deployments/local/connect-1.toml >"$work/jwt-secret"
    database=$(sed -n 's/^database_url = "\(.*\)"$/\1/p' deployments/local/logic-1.toml)
    "$bin/natter-bench" seed --database "$database" --secret-file "$work/jwt-secret" \
        --users "$users" --sessions "$sessions"
fi

names=() pids=()
for file in "$cluster_dir"/*.pid "$NATTER_DEPS_DIR/kafka.pid"; do
    names+=("$(basename "$file" .pid)")
    pids+=("$(cat "$file")")
done
# CPU seconds (user + system) of a process so far.
cpu_seconds() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$1/stat"; }
before=()
for pid in "${pids[@]}"; do before+=("$(cpu_seconds "$pid")"); done
"$bin/natter-bench" direct --sessions "$sessions" --users "$users" \
    --ws ws://127.0.0.1:8391/ws,ws://127.0.0.1:8392/ws --rate "$rate" --seconds "$seconds" \
    --drain-seconds 5 --server-pid "$(IFS=,; echo "${pids[*]}")" --out "$out" "$@"
echo "CPU seconds during the run, by process:"
for index in "${!pids[@]}"; do
    after=$(cpu_seconds "${pids[$index]}")
    printf '  %-10s %6.2f\n' "${names[$index]}" "$(echo "$after - ${before[$index]}" | bc)"
done
