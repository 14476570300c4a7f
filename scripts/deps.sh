#!/usr/bin/env bash
# The real servers the cluster tests use, on loopback, with their data under one temporary folder.
#
#   scripts/deps.sh up [NAME...]  install what is missing, start every server (or the NAMEs),
#                                 wait until each answers
#   scripts/deps.sh down     stop what `up` started (and only that), remove its data
#   scripts/deps.sh status   which servers are up
#   scripts/deps.sh env      the URLs the tests read, as `export` lines (eval "$(scripts/deps.sh env)")
#   scripts/deps.sh restart kafka      stop the broker and start it again on the same data
#   scripts/deps.sh restart redis      stop Redis and start it again: it keeps nothing on disk, so
#                                      everything it held is gone, as after a crash
#   scripts/deps.sh restart postgres|etcd   stop the server and start it again on its data
#   scripts/deps.sh stop|start etcd   take etcd away (SIGTERM) and bring it back on its data
#   scripts/deps.sh stop|kill|start kafka-cluster-N
#                                 stop one broker of kafka-cluster politely (SIGTERM), kill it
#                                 (SIGKILL, as a crash would), or start it again on its data
#
# The broker is Apache Kafka in KRaft mode (one process that is broker and controller), run from
# its Maven Central jars: Maven copies kafka_2.13 and its runtime dependencies once per machine
# into NATTER_CACHE_DIR (default ~/.cache/natter). `kafka-cluster` is three more such processes
# forming one cluster, for the tests that kill a broker: topics there get three replicas and
# `min.insync.replicas=2`.
#
# Jaeger (v2, all in one) is built from the Go module proxy once per machine into the same cache
# and runs with the traces in memory (scripts/jaeger/config.yaml): OTLP in, the query API out.
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
# kafka-cluster-N listens on 19N92 for clients and 19N93 for its controller quorum.
KAFKA_CLUSTER_SIZE=3
CACHE=${NATTER_CACHE_DIR:-$HOME/.cache/natter}
KAFKA_VERSION=4.4.0
KAFKA_LIB=$CACHE/kafka-$KAFKA_VERSION/lib
KAFKA_HEAP=${NATTER_KAFKA_HEAP:-512m}
# The newest Jaeger release the module proxy serves as approved (1.76 is served, not approved).
JAEGER_VERSION=1.75.0
JAEGER_BIN=$CACHE/jaeger-$JAEGER_VERSION/jaeger
JAEGER_OTLP_PORT=14317
JAEGER_QUERY_PORT=16687
JAEGER_QUERY_GRPC_PORT=16688
JAEGER_HEALTH_PORT=13134
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)

say() { printf 'deps: %s\n' "$*" >&2; }
fail() { say "FAILED: $*"; exit 1; }
# fail_log LOG MESSAGE: fail, showing the end of the log that says why and the free disk space
# (CI shows only what this script prints, and a full disk is a common cause on shared machines).
fail_log() {
    local log=$1
    shift
    if [ -f "$log" ]; then
        say "the end of $log:"
        tail -n 40 "$log" >&2
    fi
    df -h "$DIR" "$CACHE" 2>/dev/null | sed 's/^/deps: /' >&2 || true
    fail "$* (log: $log)"
}

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
    fail_log "$DIR/apt.log" "could not install ${packages[*]}"
}

install_missing() {
    local missing=()
    command -v redis-server >/dev/null || missing+=(redis-server)
    command -v etcd >/dev/null || missing+=(etcd-server)
    command -v etcdctl >/dev/null || missing+=(etcd-client)
    command -v mariadbd >/dev/null || missing+=(mariadb-server)
    command -v mariadb >/dev/null || missing+=(mariadb-client)
    [ -n "$PG_BIN" ] || missing+=(postgresql)
    # The partition fault test runs a connect node in a network namespace of its own
    # (`ip netns`) and joins it to the loopback servers through socat relays.
    command -v ip >/dev/null || missing+=(iproute2)
    command -v socat >/dev/null || missing+=(socat)
    if [ ${#missing[@]} -gt 0 ]; then
        say "installing ${missing[*]}"
        apt_install "${missing[@]}"
        PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    fi
}

# Copies Apache Kafka's jars from Maven Central into the cache under a lock, so two suites on one
# machine never fetch at once; a fetch cut short leaves nothing that looks complete.
install_kafka() {
    # Kafka 4 runs on Java 17 or newer; Debian 12's headless JRE is 17. Checked before the cache
    # is: a machine can hold the jars and still lack the runtime.
    command -v java >/dev/null || apt_install openjdk-17-jre-headless
    [ -f "$KAFKA_LIB/.complete" ] && return 0
    command -v mvn >/dev/null || apt_install maven
    mkdir -p "$CACHE"
    local home=$CACHE/kafka-$KAFKA_VERSION log=$CACHE/kafka-$KAFKA_VERSION-fetch.log
    (
        flock 9
        [ -f "$KAFKA_LIB/.complete" ] && exit 0
        say "fetching Apache Kafka $KAFKA_VERSION from Maven Central into $home (once per machine)"
        rm -rf "$home"
        mkdir -p "$home"
        cat >"$home/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>natter.test</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>$KAFKA_VERSION</version>
    </dependency>
    <!-- Kafka logs through SLF4J 1.x; this binds it to Log4j 2, which reads log4j2.yaml. -->
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j-impl</artifactId>
      <version>2.24.3</version>
    </dependency>
  </dependencies>
</project>
EOF
        mvn -q -B -f "$home/pom.xml" dependency:copy-dependencies -DincludeScope=runtime \
            -DoutputDirectory="$KAFKA_LIB" >"$log" 2>&1 || exit 1
        ls "$KAFKA_LIB"/kafka_2.13-*.jar >/dev/null 2>&1 || { echo "no kafka_2.13 jar" >&2; exit 1; }
        touch "$KAFKA_LIB/.complete"
    ) 9>"$CACHE/kafka.lock" || fail_log "$log" "fetching Apache Kafka"
}

# Builds Jaeger from the Go module proxy into the cache under a lock (a few minutes, once per
# machine): a module of our own requires it as a tool, since `go install pkg@version` refuses
# modules with replace directives, as Jaeger's has.
install_jaeger() {
    [ -x "$JAEGER_BIN" ] && return 0
    command -v go >/dev/null || apt_install golang-go
    mkdir -p "$CACHE"
    local home=$CACHE/jaeger-$JAEGER_VERSION log=$CACHE/jaeger-$JAEGER_VERSION-build.log
    (
        flock 9
        [ -x "$JAEGER_BIN" ] && exit 0
        say "building Jaeger $JAEGER_VERSION from the Go module proxy into $home (once per machine)"
        rm -rf "$home/build"
        mkdir -p "$home/build"
        cd "$home/build"
        # The modules and the build cache (about 2.5 GB) live in the build folder and go with it:
        # only the binary is kept, so a machine's disk pays for Jaeger's sources once, briefly.
        export GOMODCACHE=$home/build/mod GOCACHE=$home/build/cache GOFLAGS=-modcacherw
        printf 'module natter.local/jaeger-build\n\ngo 1.24\n' >go.mod
        {
            go get -tool "github.com/jaegertracing/jaeger/cmd/jaeger@v$JAEGER_VERSION" &&
                go build -o "$JAEGER_BIN.partial" github.com/jaegertracing/jaeger/cmd/jaeger
        } >"$log" 2>&1 || exit 1
        mv "$JAEGER_BIN.partial" "$JAEGER_BIN"
        cd "$home"
        rm -rf "$home/build"
    ) 9>"$CACHE/jaeger.lock" || fail_log "$log" "building Jaeger"
}

# wait_for NAME SECONDS COMMAND...: run COMMAND until it succeeds.
wait_for() {
    local name=$1 seconds=$2
    shift 2
    local deadline=$((SECONDS + seconds))
    until "$@" >/dev/null 2>&1; do
        [ $SECONDS -lt $deadline ] || fail_log "$DIR/$name.log" "$name did not answer within ${seconds}s"
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

start_jaeger() {
    alive jaeger && return 0
    install_jaeger
    JAEGER_OTLP_PORT=$JAEGER_OTLP_PORT JAEGER_QUERY_PORT=$JAEGER_QUERY_PORT \
        JAEGER_QUERY_GRPC_PORT=$JAEGER_QUERY_GRPC_PORT JAEGER_HEALTH_PORT=$JAEGER_HEALTH_PORT \
        nohup "$JAEGER_BIN" --config "file:$(dirname "$0")/jaeger/config.yaml" \
        </dev/null >"$DIR/jaeger.log" 2>&1 &
    echo $! >"$DIR/jaeger.pid"
    wait_for jaeger 30 bash -c "exec 3<>/dev/tcp/127.0.0.1/$JAEGER_OTLP_PORT && exec 4<>/dev/tcp/127.0.0.1/$JAEGER_QUERY_PORT"
}

# PostgreSQL refuses to run as root, so it runs as the postgres user in a folder it owns.
start_postgres() {
    alive postgres && return 0
    local data="$DIR/postgres"
    if [ ! -f "$data/PG_VERSION" ]; then
        mkdir -p "$data"
        chown postgres "$data"
        su postgres -s /bin/sh -c "'$PG_BIN/initdb' -D '$data' -U postgres --auth=trust --no-sync" \
            >"$DIR/postgres-init.log" 2>&1 || fail_log "$DIR/postgres-init.log" "initdb"
    fi
    su postgres -s /bin/sh -c "'$PG_BIN/pg_ctl' -D '$data' -l '$data/server.log' -w -o \
        '-c listen_addresses=127.0.0.1 -p $PG_PORT -k $data -c fsync=off -c max_connections=200' start" \
        >/dev/null || fail_log "$data/server.log" "PostgreSQL did not start"
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
            fail_log "$DIR/mariadb-init.log" "mariadb-install-db"
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

# The JVM every broker and its storage tool run in: a fixed heap, logs configured by us.
KAFKA_JAVA=(java -Xms"$KAFKA_HEAP" -Xmx"$KAFKA_HEAP" -XX:+UseG1GC
    -Dlog4j2.configurationFile="$DIR/kafka-log4j2.yaml" -cp "$KAFKA_LIB/*")

# write_kafka_config NAME NODE_ID CLIENT_PORT CONTROLLER_PORT VOTERS REPLICAS: one broker's
# server.properties (an empty VOTERS means a standalone controller quorum of this node alone).
write_kafka_config() {
    local name=$1 node=$2 port=$3 controller=$4 voters=$5 replicas=$6 quorum
    if [ -n "$voters" ]; then quorum="controller.quorum.voters=$voters"; else
        quorum="controller.quorum.bootstrap.servers=127.0.0.1:$controller"
    fi
    cat >"$DIR/$name/server.properties" <<EOF
process.roles=broker,controller
node.id=$node
$quorum
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$DIR/$name/data
num.partitions=1
default.replication.factor=$replicas
min.insync.replicas=$((replicas > 1 ? 2 : 1))
offsets.topic.replication.factor=$replicas
transaction.state.log.replication.factor=$replicas
transaction.state.log.min.isr=$((replicas > 1 ? 2 : 1))
share.coordinator.state.topic.replication.factor=$replicas
share.coordinator.state.topic.min.isr=$((replicas > 1 ? 2 : 1))
# natter creates its topics itself; a metadata request must never create one.
auto.create.topics.enable=false
# The topics are the message history: nothing expires.
log.retention.ms=-1
log.retention.bytes=-1
group.initial.rebalance.delay.ms=0
EOF
}

# launch_kafka NAME [--standalone]: format NAME's storage once (a restart keeps its data) and
# start it in the background.
launch_kafka() {
    local name=$1 standalone=${2:-}
    if [ ! -f "$DIR/$name/data/meta.properties" ]; then
        # Once more on a clean folder if the first attempt fails: a format cut short leaves a
        # folder the tool refuses, and the JVM can fail to start on a machine under load.
        local attempt
        for attempt in 1 2; do
            rm -rf "$DIR/$name/data"
            "${KAFKA_JAVA[@]}" kafka.tools.StorageTool format $standalone -t "$(cat "$DIR/kafka-cluster-id")" \
                -c "$DIR/$name/server.properties" >>"$DIR/$name-format.log" 2>&1 && break
            [ "$attempt" = 2 ] && fail_log "$DIR/$name-format.log" "formatting $name's storage"
            say "formatting $name's storage failed; trying again"
        done
    fi
    : >"$DIR/$name.log"
    nohup "${KAFKA_JAVA[@]}" kafka.Kafka "$DIR/$name/server.properties" \
        </dev/null >>"$DIR/$name.log" 2>&1 &
    echo $! >"$DIR/$name.pid"
}

# kafka_ready NAME PORT: the broker runs, has logged that it started, and takes connections.
kafka_ready() {
    alive "$1" && grep -q 'Kafka Server started' "$DIR/$1.log" &&
        bash -c "exec 3<>/dev/tcp/127.0.0.1/$2"
}

# Waits for each named broker (a cluster's brokers start together, so they are awaited after).
await_kafka() {
    local name port
    for name in "$@"; do
        port=$(awk -F: '/^advertised.listeners/{print $NF}' "$DIR/$name/server.properties")
        wait_for "$name" 90 kafka_ready "$name" "$port"
    done
}

prepare_kafka() {
    install_kafka
    # One cluster id per data folder: a restarted broker must find the id it was formatted with.
    # Kafka's ids are 16 random bytes in unpadded URL-safe base64 (22 characters).
    [ -s "$DIR/kafka-cluster-id" ] ||
        head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n' >"$DIR/kafka-cluster-id"
    cat >"$DIR/kafka-log4j2.yaml" <<EOF
Configuration:
  Appenders:
    Console:
      name: STDOUT
      PatternLayout:
        pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: INFO
      AppenderRef:
        - ref: STDOUT
    Logger:
      - name: org.apache.kafka.common.config.AbstractConfig
        level: WARN
EOF
}

start_kafka() {
    alive kafka && return 0
    prepare_kafka
    mkdir -p "$DIR/kafka"
    write_kafka_config kafka 1 "$KAFKA_PORT" $((KAFKA_PORT + 1)) "" 1
    launch_kafka kafka --standalone
    await_kafka kafka
}

kafka_cluster_port() { echo $((19092 + 100 * $1)); }

kafka_cluster_voters() {
    local node voters=""
    for node in $(seq "$KAFKA_CLUSTER_SIZE"); do
        voters+="${voters:+,}$node@127.0.0.1:$(($(kafka_cluster_port "$node") + 1))"
    done
    echo "$voters"
}

# start_kafka_cluster [NODE]: the three-broker cluster, or one of its brokers again.
start_kafka_cluster() {
    local nodes=${1:-$(seq "$KAFKA_CLUSTER_SIZE")} node name port started=()
    prepare_kafka
    for node in $nodes; do
        name=kafka-cluster-$node
        alive "$name" && continue
        port=$(kafka_cluster_port "$node")
        mkdir -p "$DIR/$name"
        write_kafka_config "$name" "$node" "$port" $((port + 1)) "$(kafka_cluster_voters)" 3
        launch_kafka "$name"
        started+=("$name")
    done
    [ ${#started[@]} -eq 0 ] || await_kafka "${started[@]}"
}

print_env() {
    cat <<EOF
export NATTER_TEST_REDIS_URL=redis://127.0.0.1:$REDIS_PORT
export NATTER_TEST_ETCD_URL=http://127.0.0.1:$ETCD_PORT
export NATTER_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:$PG_PORT/natter_test
export NATTER_TEST_MYSQL_URL=mysql://natter:natter@127.0.0.1:$MYSQL_PORT/natter_test
export NATTER_TEST_KAFKA_URL=127.0.0.1:$KAFKA_PORT
export NATTER_TEST_JAEGER_OTLP_URL=http://127.0.0.1:$JAEGER_OTLP_PORT
export NATTER_TEST_JAEGER_QUERY_URL=http://127.0.0.1:$JAEGER_QUERY_PORT
EOF
    if alive kafka-cluster-1 || alive kafka-cluster-2 || alive kafka-cluster-3; then
        local node brokers=""
        for node in $(seq "$KAFKA_CLUSTER_SIZE"); do
            brokers+="${brokers:+,}127.0.0.1:$(kafka_cluster_port "$node")"
        done
        echo "export NATTER_TEST_KAFKA_CLUSTER_URL=$brokers"
    fi
}

SERVERS="redis etcd postgres mariadb kafka kafka-cluster jaeger"
# Every process `down` stops and `status` reports (kafka-cluster is three of them).
PROCESSES="redis etcd postgres mariadb kafka kafka-cluster-1 kafka-cluster-2 kafka-cluster-3 jaeger"

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
        redis | etcd | postgres | mariadb | kafka | jaeger) "start_$name" ;;
        kafka-cluster) start_kafka_cluster ;;
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
    for name in $PROCESSES; do stop_one "$name"; done
    rm -rf "$DIR"
    ;;
restart)
    # Restarts one server: the broker with its data kept, Redis empty (it persists nothing).
    case "${2:-}" in
    kafka | redis | etcd) stop_one "$2"; "start_$2" ;;
    postgres)
        su postgres -s /bin/sh -c "'$PG_BIN/pg_ctl' -D '$DIR/postgres' -m fast -w stop" >/dev/null
        rm -f "$DIR/postgres.pid"
        start_postgres
        ;;
    *) echo "usage: $0 restart kafka|redis|postgres|etcd" >&2; exit 2 ;;
    esac
    ;;
stop | kill | start)
    # One broker of kafka-cluster at a time, for tests that take a broker away and bring it back.
    case "$1 ${2:-}" in
    "stop etcd") stop_one etcd; exit 0 ;;
    "start etcd") start_etcd; exit 0 ;;
    *" kafka-cluster-"[1-3]) ;;
    *) echo "usage: $0 $1 kafka-cluster-N (N = 1..$KAFKA_CLUSTER_SIZE), or $0 stop|start etcd" >&2; exit 2 ;;
    esac
    case $1 in
    stop) stop_one "$2" ;;
    kill)
        if alive "$2"; then kill -9 "$(cat "$DIR/$2.pid")"; say "$2 killed"; fi
        rm -f "$DIR/$2.pid"
        ;;
    start) start_kafka_cluster "${2##*-}" ;;
    esac
    ;;
prefetch)
    # Fetches the broker's jars and builds Jaeger ahead of `up`.
    mkdir -p "$DIR" "$CACHE"
    install_kafka
    install_jaeger
    ;;
status)
    for name in $PROCESSES; do
        if alive "$name"; then echo "$name: up (pid $(cat "$DIR/$name.pid"))"; else echo "$name: down"; fi
    done
    ;;
env)
    print_env
    ;;
*)
    echo "usage: $0 up [NAME...]|down|status|env|restart kafka|redis|postgres|etcd|stop|kill|start kafka-cluster-N|prefetch" >&2
    exit 2
    ;;
esac
