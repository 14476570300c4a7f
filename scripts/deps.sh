#!/usr/bin/env bash
# The real servers the cluster tests use, on loopback, with their data under one temporary folder.
#
#   scripts/deps.sh up [NAME...]  install what is missing, start every server (or the NAMEs),
#                                 wait until each answers
#   scripts/deps.sh down     stop what `up` started (and only that), remove its data
#   scripts/deps.sh status   which servers are up
#   scripts/deps.sh env      the URLs the tests read, as `export` lines (eval "$(scripts/deps.sh env)")
#   scripts/deps.sh prefetch start building the Kafka-protocol broker in the background and return
#
# The broker is tansu (crates.io), built once per machine into NATTER_CACHE_DIR (default
# ~/.cache/natter) because the build takes about 30 minutes; `up` waits for a build `prefetch`
# started instead of starting a second one.
#
# Ports are off the defaults so a developer's own servers are never touched. NATTER_DEPS_DIR
# chooses the folder (default /tmp/natter-deps).
set -euo pipefail

DIR=${NATTER_DEPS_DIR:-/tmp/natter-deps}
REDIS_PORT=16379
ETCD_PORT=12379
ETCD_PEER_PORT=12380
PG_PORT=15432
MYSQL_PORT=13306
KAFKA_PORT=19092
CACHE=${NATTER_CACHE_DIR:-$HOME/.cache/natter}
TANSU_VERSION=0.6.0
TANSU_BIN=$CACHE/tansu-$TANSU_VERSION/bin/tansu
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)

say() { printf 'deps: %s\n' "$*" >&2; }
fail() { say "FAILED: $*"; exit 1; }

# apt can stop half-way when an upgrade removes downloaded archives; repair and retry.
apt_install() {
    local packages=("$@") attempt
    export DEBIAN_FRONTEND=noninteractive
    for attempt in 1 2 3; do
        if apt-get install -y --no-install-recommends "${packages[@]}" >"$DIR/apt.log" 2>&1; then
            return 0
        fi
        say "apt-get install ${packages[*]} failed (attempt $attempt); repairing and retrying"
        apt-get -f install -y >>"$DIR/apt.log" 2>&1 || true
        [ "$attempt" = 1 ] && { apt-get update >>"$DIR/apt.log" 2>&1 || true; }
    done
    tail -n 20 "$DIR/apt.log" >&2
    fail "could not install ${packages[*]} (log: $DIR/apt.log)"
}

install_missing() {
    local missing=()
    command -v redis-server >/dev/null || missing+=(redis-server)
    command -v etcd >/dev/null || missing+=(etcd-server)
    command -v etcdctl >/dev/null || missing+=(etcd-client)
    command -v mariadbd >/dev/null || missing+=(mariadb-server)
    command -v mariadb >/dev/null || missing+=(mariadb-client)
    [ -n "$PG_BIN" ] || missing+=(postgresql)
    if [ ${#missing[@]} -gt 0 ]; then
        say "installing ${missing[*]}"
        apt_install "${missing[@]}"
        PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    fi
}

# Builds tansu into the cache under a lock, so a background prefetch and `up` never build twice.
install_tansu() {
    [ -x "$TANSU_BIN" ] && return 0
    mkdir -p "$CACHE"
    local log="$CACHE/tansu-build.log"
    (
        flock 9
        [ -x "$TANSU_BIN" ] && exit 0
        say "building tansu $TANSU_VERSION into $CACHE (about 30 minutes, once per machine; log: $log)"
        # Its own target folder keeps the build out of the workspace's and lets a rerun resume.
        CARGO_TARGET_DIR="$CACHE/tansu-target" nice cargo install tansu --version "=$TANSU_VERSION" \
            --locked --features libsql --root "$CACHE/tansu-$TANSU_VERSION" >"$log" 2>&1 ||
            { tail -n 30 "$log" >&2; exit 1; }
        rm -rf "$CACHE/tansu-target"
    ) 9>"$CACHE/tansu.lock" || fail "building tansu (log: $log)"
}

# wait_for NAME SECONDS COMMAND...: run COMMAND until it succeeds.
wait_for() {
    local name=$1 seconds=$2
    shift 2
    local deadline=$((SECONDS + seconds))
    until "$@" >/dev/null 2>&1; do
        [ $SECONDS -lt $deadline ] || fail "$name did not answer within ${seconds}s (log in $DIR)"
        sleep 0.2
    done
    say "$name is up"
}

alive() { [ -f "$DIR/$1.pid" ] && kill -0 "$(cat "$DIR/$1.pid")" 2>/dev/null; }

start_redis() {
    alive redis && return 0
    mkdir -p "$DIR/redis"
    redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$DIR/redis" --save "" \
        --appendonly no --daemonize yes --pidfile "$DIR/redis.pid" --logfile "$DIR/redis.log"
    wait_for redis 20 redis-cli -p "$REDIS_PORT" ping
}

start_etcd() {
    alive etcd && return 0
    mkdir -p "$DIR/etcd"
    nohup etcd --name natter-test --data-dir "$DIR/etcd" \
        --listen-client-urls "http://127.0.0.1:$ETCD_PORT" \
        --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
        --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
        --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
        --initial-cluster "natter-test=http://127.0.0.1:$ETCD_PEER_PORT" \
        >"$DIR/etcd.log" 2>&1 &
    echo $! >"$DIR/etcd.pid"
    wait_for etcd 30 env ETCDCTL_API=3 etcdctl --endpoints "http://127.0.0.1:$ETCD_PORT" endpoint health
}

# PostgreSQL refuses to run as root, so it runs as the postgres user in a folder it owns.
start_postgres() {
    alive postgres && return 0
    local data="$DIR/postgres"
    if [ ! -f "$data/PG_VERSION" ]; then
        mkdir -p "$data"
        chown postgres "$data"
        su postgres -s /bin/sh -c "'$PG_BIN/initdb' -D '$data' -U postgres --auth=trust --no-sync" \
            >"$DIR/postgres-init.log" 2>&1 || fail "initdb (log: $DIR/postgres-init.log)"
    fi
    su postgres -s /bin/sh -c "'$PG_BIN/pg_ctl' -D '$data' -l '$data/server.log' -w -o \
        '-c listen_addresses=127.0.0.1 -p $PG_PORT -k $data -c fsync=off -c max_connections=200' start" \
        >/dev/null || fail "PostgreSQL did not start (log: $data/server.log)"
    head -n 1 "$data/postmaster.pid" >"$DIR/postgres.pid"
    wait_for postgres 30 "$PG_BIN/pg_isready" -h 127.0.0.1 -p "$PG_PORT"
    "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -tAc \
        "SELECT 1 FROM pg_database WHERE datname = 'natter_test'" | grep -q 1 ||
        "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -qc "CREATE DATABASE natter_test" ||
        fail "creating the PostgreSQL test database"
}

start_mariadb() {
    alive mariadb && return 0
    local data="$DIR/mariadb"
    if [ ! -d "$data/mysql" ]; then
        mkdir -p "$data"
        mariadb-install-db --user=root --datadir="$data" --auth-root-authentication-method=normal \
            --skip-test-db >"$DIR/mariadb-init.log" 2>&1 ||
            fail "mariadb-install-db (log: $DIR/mariadb-init.log)"
    fi
    nohup mariadbd --user=root --datadir="$data" --bind-address=127.0.0.1 --port="$MYSQL_PORT" \
        --socket="$DIR/mariadb.sock" --skip-log-bin --innodb-flush-log-at-trx-commit=2 \
        --pid-file="$DIR/mariadb.pid" >"$DIR/mariadb.log" 2>&1 &
    wait_for mariadb 60 mariadb-admin --socket="$DIR/mariadb.sock" -uroot ping
    mariadb --socket="$DIR/mariadb.sock" -uroot -e "
        CREATE DATABASE IF NOT EXISTS natter_test;
        CREATE USER IF NOT EXISTS 'natter'@'%' IDENTIFIED BY 'natter';
        GRANT ALL ON natter_test.* TO 'natter'@'%';" ||
        fail "creating the MariaDB test database"
}

start_kafka() {
    alive kafka && return 0
    install_tansu
    mkdir -p "$DIR/kafka"
    # tansu opens its SQLite file relative to the working directory.
    # The cd and the launch are separate commands so that `$!` is the broker itself, not a
    # subshell waiting for it (which would also hold the caller's stdout open).
    (
        cd "$DIR/kafka"
        nohup "$TANSU_BIN" broker \
            --listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
            --advertised-listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
            --storage-engine "sqlite://tansu.db" </dev/null >"$DIR/kafka.log" 2>&1 &
        echo $! >"$DIR/kafka.pid"
    )
    wait_for kafka 30 bash -c "exec 3<>/dev/tcp/127.0.0.1/$KAFKA_PORT"
}

print_env() {
    cat <<EOF
export NATTER_TEST_REDIS_URL=redis://127.0.0.1:$REDIS_PORT
export NATTER_TEST_ETCD_URL=http://127.0.0.1:$ETCD_PORT
export NATTER_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:$PG_PORT/natter_test
export NATTER_TEST_MYSQL_URL=mysql://natter:natter@127.0.0.1:$MYSQL_PORT/natter_test
export NATTER_TEST_KAFKA_URL=127.0.0.1:$KAFKA_PORT
EOF
}

SERVERS="redis etcd postgres mariadb kafka"

# Stops one server this script started: a polite signal, then a hard one.
stop_one() {
    local name=$1 pid
    [ -f "$DIR/$name.pid" ] || return 0
    pid=$(cat "$DIR/$name.pid")
    if kill -0 "$pid" 2>/dev/null; then
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
        say "$name stopped"
    fi
    rm -f "$DIR/$name.pid"
}

case "${1:-}" in
up)
    mkdir -p "$DIR"
    chmod 755 "$DIR"
    install_missing
    # `up NAME...` starts only those servers (a developer's quick loop); `up` starts them all.
    shift
    for name in ${*:-$SERVERS}; do
        case $name in
        redis | etcd | postgres | mariadb | kafka) "start_$name" ;;
        *) fail "unknown server $name (known: $SERVERS)" ;;
        esac
    done
    print_env >"$DIR/env"
    say "all servers are up; data in $DIR"
    ;;
down)
    if alive postgres; then
        su postgres -s /bin/sh -c "'$PG_BIN/pg_ctl' -D '$DIR/postgres' -m fast -w stop" >/dev/null 2>&1 || true
    fi
    for name in $SERVERS; do stop_one "$name"; done
    rm -rf "$DIR"
    ;;
restart)
    # Restarts one server with its data kept: the cluster test restarts the broker this way.
    [ "${2:-}" = kafka ] || { echo "usage: $0 restart kafka" >&2; exit 2; }
    stop_one kafka
    start_kafka
    ;;
prefetch)
    mkdir -p "$CACHE"
    [ -x "$TANSU_BIN" ] || { nohup "$0" build-broker >/dev/null 2>&1 & say "building tansu in the background"; }
    ;;
build-broker)
    install_tansu
    ;;
status)
    for name in $SERVERS; do
        if alive "$name"; then echo "$name: up (pid $(cat "$DIR/$name.pid"))"; else echo "$name: down"; fi
    done
    ;;
env)
    print_env
    ;;
*)
    echo "usage: $0 up|down|status|env|restart kafka|prefetch" >&2
    exit 2
    ;;
esac
