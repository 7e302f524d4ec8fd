#!/usr/bin/env bash
# Three RabbitMQ nodes on one machine, clustered: what a city runs on three machines, for tests and rehearsals
# (issue "High availability", item 3; the recipe: docs/architecture.md §5). Nodes rmqa, rmqb, rmqc
# @localhost listen on 127.0.0.1:5673, 5674, 5675 (Erlang distribution 25673–25675), share one Erlang cookie, and
# keep everything under SAMEDAY_CLUSTER_DIR (default /var/lib/sameday-cluster). Quorum queues declared on the
# cluster (SameDay's shard queues) are replicated on all three nodes; clients take the three URLs
# (SAMEDAY_AMQP_URL=amqp://127.0.0.1:5673/%2F,amqp://127.0.0.1:5674/%2F,amqp://127.0.0.1:5675/%2F) and move to a
# live node when theirs goes away. The single local broker (deploy/local-broker.sh, port 5672) is not touched.
#
#   deploy/cluster/cluster.sh start          start the three nodes and form the cluster (idempotent)
#   deploy/cluster/cluster.sh stop           stop all three
#   deploy/cluster/cluster.sh status         the cluster's running nodes
#   deploy/cluster/cluster.sh stop-node N    stop node N (a, b or c) — a machine lost
#   deploy/cluster/cluster.sh start-node N   start it again; it rejoins
#   deploy/cluster/cluster.sh urls           the three AMQP URLs, comma-separated
#   deploy/cluster/cluster.sh leaders        each quorum queue and its leader node (a, b or c)
set -euo pipefail
BASE=${SAMEDAY_CLUSTER_DIR:-/var/lib/sameday-cluster}
BIN=/usr/lib/rabbitmq/bin
NODES=(a b c)
port_of() { case $1 in a) echo 5673 ;; b) echo 5674 ;; c) echo 5675 ;; *) echo "cluster: no node '$1' (a, b, c)" >&2; exit 2 ;; esac; }
node_of() { echo "rmq$1@localhost"; }

[ -x "$BIN/rabbitmq-server" ] || { echo "cluster: rabbitmq-server is not installed (scripts/install-deps.sh)" >&2; exit 1; }
mkdir -p "$BASE/home"
# One cookie for the three nodes and the CLI, in a private HOME (the packaged wrappers would switch user and cookie).
if [ ! -f "$BASE/home/.erlang.cookie" ]; then
  head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$BASE/home/.erlang.cookie"
  chmod 400 "$BASE/home/.erlang.cookie"
fi
export HOME="$BASE/home"

env_of() {
  local n=$1 dir="$BASE/$1" port
  port=$(port_of "$n")
  echo RABBITMQ_NODENAME="$(node_of "$n")" RABBITMQ_NODE_PORT="$port" RABBITMQ_DIST_PORT=$((port + 20000)) \
    RABBITMQ_CONFIG_FILE="$dir/rabbitmq.conf" RABBITMQ_ENABLED_PLUGINS_FILE="$dir/enabled_plugins" \
    RABBITMQ_MNESIA_BASE="$dir/mnesia" RABBITMQ_LOG_BASE="$dir/log" RABBITMQ_PID_FILE="$dir/rabbit.pid"
}
ctl() { local n=$1; shift; "$BIN/rabbitmqctl" -q -n "$(node_of "$n")" "$@"; }
running() { ctl "$1" status >/dev/null 2>&1; }

start_node() {
  local n=$1 dir="$BASE/$1" port
  port=$(port_of "$n")
  mkdir -p "$dir/mnesia" "$dir/log"
  cat > "$dir/rabbitmq.conf" <<CONF
listeners.tcp.default = 127.0.0.1:$port
loopback_users = none
vm_memory_high_watermark.relative = 0.2
disk_free_limit.absolute = 1GB
CONF
  echo "[rabbitmq_consistent_hash_exchange]." > "$dir/enabled_plugins"
  if ! running "$n"; then
    if (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "cluster: 127.0.0.1:$port is taken, but not by node rmq$n of $BASE (a node of another cluster folder?)" >&2
      exit 1
    fi
    # shellcheck disable=SC2046
    env $(env_of "$n") "$BIN/rabbitmq-server" -detached
  fi
  # shellcheck disable=SC2046
  env $(env_of "$n") "$BIN/rabbitmqctl" -q -n "$(node_of "$n")" wait --timeout 120 "$dir/rabbit.pid" >/dev/null
}

case "${1:-}" in
  start)
    for n in "${NODES[@]}"; do start_node "$n"; done
    for n in b c; do
      if ! ctl a cluster_status 2>/dev/null | grep -q "$(node_of "$n")"; then
        # Joining logs transient errors (the tables of a node still starting); shown only if the join fails.
        if ! out=$({ ctl "$n" stop_app && ctl "$n" join_cluster "$(node_of a)" && ctl "$n" start_app; } 2>&1); then
          echo "$out" >&2
          echo "cluster: rmq$n could not join rmqa" >&2
          exit 1
        fi
      fi
    done
    ctl a await_online_nodes 3 --timeout 120 2>/dev/null || sleep 5
    echo "cluster: rmqa, rmqb, rmqc up on 127.0.0.1:5673, 5674, 5675"
    ;;
  stop)
    # `stop` ends the node's Erlang VM even when its app was stopped (stop-node).
    for n in c b a; do ctl "$n" stop >/dev/null 2>&1 || true; done
    echo "cluster: stopped"
    ;;
  status)
    ctl a cluster_status 2>/dev/null || ctl b cluster_status 2>/dev/null || ctl c cluster_status
    ;;
  stop-node)
    ctl "${2:?which node: a, b or c}" stop_app
    ;;
  start-node)
    ctl "${2:?which node: a, b or c}" start_app
    ;;
  leaders)
    # Each quorum queue and the node leading it (a, b or c), asked of whichever node is up.
    for n in "${NODES[@]}"; do
      if out=$(ctl "$n" list_queues name leader --no-table-headers 2>/dev/null); then
        echo "$out" | awk -F'\t' '$2 ~ /^rmq[abc]@/ { sub(/^rmq/, "", $2); sub(/@.*/, "", $2); print $1 "\t" $2 }'
        exit 0
      fi
    done
    echo "cluster: no node answers" >&2
    exit 1
    ;;
  urls)
    echo "amqp://127.0.0.1:5673/%2F,amqp://127.0.0.1:5674/%2F,amqp://127.0.0.1:5675/%2F"
    ;;
  *)
    echo "usage: deploy/cluster/cluster.sh start | stop | status | stop-node N | start-node N | urls | leaders" >&2
    exit 2
    ;;
esac
