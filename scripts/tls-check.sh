#!/usr/bin/env bash
# TLS, proven: a throwaway CA and certificates (openssl), a SEPARATE RabbitMQ node of our own with only a TLS
# listener (mutual TLS: the broker requires a client certificate its CA signed), loaded at boot with SameDay's
# definitions and least-privilege users whose password hashes come from a throwaway secrets folder. Then:
#   - `sameday worker` (user worker), `sameday publish` (adapter.motcua-q1, canonical profile) and `sameday receive`
#     (receiver, one HTTP POST) connect over amqps:// with verification on, and `sameday alerts watch`
#     (supervisor.so-noi-vu) binds its watch queue;
#   - each of them REFUSES a server whose certificate another CA signed (an `openssl s_server` with the same names),
#     and publishing without the CA file, to a host name the certificate does not carry, or without a client
#     certificate, fails too.
# Exits non-zero on any failure. Stops only its own node (never the shared broker) and removes its files
# (KEEP_TLS_CHECK_FILES=1 keeps them for a look).
#
#   bash scripts/tls-check.sh            (as root, on loopback only; SAMEDAY_BIN=path/to/sameday to pick a build)
# Ports (all 127.0.0.1, override with the variables): TLS_CHECK_PORT=5671 (TLS listener), TLS_CHECK_ROGUE_PORT=5681,
# TLS_CHECK_DIST_PORT=25671 (Erlang distribution), TLS_CHECK_HTTP_PORT=18471 (+1), TLS_CHECK_METRICS_PORT=19471.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$(realpath -m "${SAMEDAY_BIN:-$ROOT/.build/debug/sameday}")
TLS_PORT=${TLS_CHECK_PORT:-5671}
ROGUE_PORT=${TLS_CHECK_ROGUE_PORT:-5681}
DIST_PORT=${TLS_CHECK_DIST_PORT:-25671}
HTTP_PORT=${TLS_CHECK_HTTP_PORT:-18471}
METRICS_PORT=${TLS_CHECK_METRICS_PORT:-19471}
NODE="sdtls$$@localhost"
RMQ=/usr/lib/rabbitmq/bin
CONFIG="$ROOT/deploy/config/hcmc-2022"
REGISTRY="$ROOT/deploy/adapters/unit-systems.json"
START=$(date +%s)
ms() { echo $(($(date +%s%N) / 1000000)); }
since() { local d=$(($(ms) - $1)); echo "$((d / 1000)).$(((d % 1000) / 100))"; }

[ -x "$BIN" ] || { echo "tls-check: $BIN not built (swift build --product sameday, or set SAMEDAY_BIN)" >&2; exit 1; }
command -v openssl >/dev/null || { echo "tls-check: openssl is missing" >&2; exit 1; }
[ -x "$RMQ/rabbitmq-server" ] || { echo "tls-check: rabbitmq-server is not installed (deploy/local-broker.sh)" >&2; exit 1; }
for port in "$TLS_PORT" "$ROGUE_PORT" "$DIST_PORT" "$HTTP_PORT" "$((HTTP_PORT + 1))" "$METRICS_PORT"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "tls-check: port $port on 127.0.0.1 is in use; set the TLS_CHECK_*_PORT variables" >&2
    exit 1
  fi
done

W=$(mktemp -d /tmp/sameday-tls.XXXXXX)
chmod 700 "$W"
PIDS=()
NODE_STARTED=0
ctl() { HOME="$W/home" RABBITMQ_NODENAME="$NODE" "$RMQ/rabbitmqctl" -n "$NODE" "$@"; }
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null; done
  # Only our node, by its own name (never the shared rabbit@ node).
  if [ "$NODE_STARTED" = 1 ]; then ctl stop >/dev/null 2>&1 || true; fi
  if [ -n "${KEEP_TLS_CHECK_FILES:-}" ]; then echo "tls-check: files kept in $W"; else rm -rf "$W"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

FAILED=0
pass() { echo "  PASS  $*"; }
fail() { echo "  FAIL  $*"; FAILED=$((FAILED + 1)); }

# --- 1. A throwaway CA, the broker's and a client's certificates, and a rogue CA with its own "localhost" -------
echo "== certificates (openssl $(openssl version | cut -d' ' -f2))"
cd "$W"
cert() {  # cert NAME CA SUBJECT-CN EXTENSIONS
  openssl req -new -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" -subj "/O=SameDay tls-check/CN=$3" 2>/dev/null &&
    printf '%b' "$4" > "$1.ext" &&
    openssl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" -set_serial "0x$(openssl rand -hex 8)" -days 2 \
      -extfile "$1.ext" -out "$1.pem" 2>/dev/null
}
for ca in ca rogue-ca; do
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$ca.key" -out "$ca.pem" -days 2 \
    -subj "/O=SameDay tls-check/CN=$ca" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null || { echo "tls-check: openssl failed" >&2; exit 1; }
done
SERVER_EXT='basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost\n'
cert server ca localhost "$SERVER_EXT" &&
  cert client ca sameday-client 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n' &&
  cert rogue-server rogue-ca localhost "$SERVER_EXT" || { echo "tls-check: openssl failed" >&2; exit 1; }
chmod 600 ./*.key
openssl verify -CAfile ca.pem server.pem client.pem >/dev/null && pass "server and client certificates signed by the test CA"
if openssl verify -CAfile ca.pem rogue-server.pem >/dev/null 2>&1; then fail "rogue certificate verifies"; fi

# --- 2. Secrets and the deployable definitions (topology + users with password hashes) -------------------------
echo "== secrets and definitions"
mkdir -m 700 secrets
USERS=(adapter.motcua-q1 adapter.dvc-so-tu-phap receiver worker notify board supervisor.so-noi-vu supervisor.q1-lanh-dao)
for user in "${USERS[@]}"; do (umask 077 && openssl rand -hex 24 > "secrets/$user.password"); done
if "$BIN" topology definitions --shards 4 --unit-systems "$REGISTRY" --config "$ROOT/deploy/config/hcmc-2022" \
  --secrets secrets --output definitions.json \
  2>definitions.err && [ "$(stat -c %a definitions.json)" = 600 ]; then
  pass "sameday topology definitions --secrets wrote definitions.json (mode 600) with $(grep -c '"password_hash" : "[^"]' definitions.json) password hashes"
else
  fail "sameday topology definitions --secrets: $(cat definitions.err)"
fi
chmod 644 secrets/worker.password
if "$BIN" topology users --unit-systems "$REGISTRY" --config "$ROOT/deploy/config/hcmc-2022" --secrets secrets \
  >/dev/null 2>users.err; then
  fail "a secret readable by others was accepted"
else
  grep -q "worker.password: mode 644" users.err && pass "a secret readable by others is refused, naming the file"
fi
chmod 600 secrets/worker.password
password() { cat "secrets/$1.password"; }
TLSQ="cacertfile=$W/ca.pem&certfile=$W/client.pem&keyfile=$W/client.key"
url() { echo "amqps://$1:$(password "$1")@localhost:$2/%2F?${3:-$TLSQ}"; }

# --- 3. Our own TLS-only node -----------------------------------------------------------------------------------
echo "== separate broker node $NODE, TLS only on 127.0.0.1:$TLS_PORT"
mkdir -p home mnesia log
(umask 077 && openssl rand -hex 20 > home/.erlang.cookie) && chmod 400 home/.erlang.cookie
echo '[rabbitmq_consistent_hash_exchange].' > enabled_plugins
cat > rabbitmq.conf <<EOF
listeners.tcp = none
listeners.ssl.default = 127.0.0.1:$TLS_PORT
ssl_options.cacertfile = $W/ca.pem
ssl_options.certfile = $W/server.pem
ssl_options.keyfile = $W/server.key
ssl_options.verify = verify_peer
ssl_options.fail_if_no_peer_cert = true
ssl_options.versions.1 = tlsv1.3
ssl_options.versions.2 = tlsv1.2
loopback_users = none
definitions.import_backend = local_filesystem
definitions.local.path = $W/definitions.json
EOF
NODE_STARTED=1
HOME="$W/home" RABBITMQ_NODENAME="$NODE" RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_DIST_PORT="$DIST_PORT" \
  RABBITMQ_CONFIG_FILE="$W/rabbitmq.conf" RABBITMQ_ENABLED_PLUGINS_FILE="$W/enabled_plugins" \
  RABBITMQ_ADVANCED_CONFIG_FILE="$W/advanced.config" RABBITMQ_CONF_ENV_FILE="$W/rabbitmq-env.conf" \
  RABBITMQ_MNESIA_BASE="$W/mnesia" RABBITMQ_LOG_BASE="$W/log" RABBITMQ_PID_FILE="$W/node.pid" \
  "$RMQ/rabbitmq-server" -detached >node.out 2>&1
up=0
for _ in $(seq 60); do
  if ctl -q await_startup --timeout 5 >/dev/null 2>&1; then up=1; break; fi
  sleep 1
done
if [ "$up" = 1 ] && ctl -q list_users 2>/dev/null | grep -q '^worker'; then
  pass "node up in $(($(date +%s) - START)) s with the definitions loaded at boot ($(ctl -q list_queues name 2>/dev/null | grep -c sameday) queues, users: $(ctl -q list_users --no-table-headers 2>/dev/null | cut -f1 | sort | tr '\n' ' '))"
else
  fail "the TLS node did not start (see below)"
  tail -20 node.out log/*.log 2>/dev/null
  exit 1
fi
for user in worker receiver adapter.motcua-q1; do
  ctl -q authenticate_user "$user" "$(password "$user")" >/dev/null 2>&1 || fail "$user cannot authenticate with its secret"
done

# The rogue server: same names (CN and SAN localhost), another CA. rabbitmq-c checks the chain right after the
# handshake, before sending a byte of AMQP (so no credentials), and fails with "SSL peer cert verification failed".
openssl s_server -accept "127.0.0.1:$ROGUE_PORT" -cert rogue-server.pem -key rogue-server.key -quiet \
  >rogue.log 2>&1 </dev/null &
PIDS+=($!)
sleep 0.5
REFUSED="SSL peer cert verification failed"

queued() {  # events in the shard queues of our node
  ctl -q list_queues name messages 2>/dev/null | awk '$1 ~ /^sameday\.work\./ { n += $2 } END { print n + 0 }'
}
wait_queued() {  # wait_queued N
  for _ in $(seq 20); do [ "$(queued)" = "$1" ] && return 0; sleep 0.5; done
  return 1
}
EVENT='{"schema":"sameday.dossier-event/1","eventId":"tls-check:%s","dossier":"760-220518-%s","unit":"760","procedure":"2.000815.000.00.00.H29","type":"received","occurredAt":"2022-05-18T08:15:00+07:00","channel":"direct","source":"tls-check"}'

# --- 4. sameday publish (adapter.motcua-q1, canonical profile) ---------------------------------------------------
echo "== sameday publish over amqps://"
publish() {  # publish NAME URL-FILE DOSSIER-NUMBER
  printf "$EVENT\n" "$3" "$3" > "export-$1.jsonl"
  timeout 60 "$BIN" publish --profile "$ROOT/deploy/adapters/profiles/canonical-jsonl.json" --config "$CONFIG" \
    --url-file "$2" --spool "spool-$1" "export-$1.jsonl" >"publish-$1.out" 2>&1
}
url adapter.motcua-q1 "$TLS_PORT" > adapter.url
url adapter.motcua-q1 "$ROGUE_PORT" > adapter-rogue.url
url adapter.motcua-q1 "$TLS_PORT" "certfile=$W/client.pem&keyfile=$W/client.key" > adapter-noca.url
url adapter.motcua-q1 "$TLS_PORT" "cacertfile=$W/ca.pem" > adapter-nocert.url
chmod 600 ./*.url
t0=$(ms)
if publish ok adapter.url 0901 && grep -q " 1 published" publish-ok.out && wait_queued 1; then
  pass "publish: 1 event confirmed over TLS, in a shard queue ($(since "$t0") s)"
else
  fail "publish over TLS: $(cat publish-ok.out)"
fi
publish rogue adapter-rogue.url 0902
if grep -q "$REFUSED" publish-rogue.out && [ "$(queued)" = 1 ]; then
  pass "publish refuses the rogue server: $(grep -o "$REFUSED" publish-rogue.out | head -1), exit status 1, nothing sent"
else
  fail "publish to the rogue server: $(cat publish-rogue.out) / $(tail -2 rogue.log)"
fi
publish noca adapter-noca.url 0903
if grep -q "$REFUSED" publish-noca.out && [ "$(queued)" = 1 ]; then
  pass "publish without the CA file refuses even the right broker (verification is on, nothing trusted by default)"
else
  fail "publish without a CA file: $(cat publish-noca.out)"
fi
echo "amqps://adapter.motcua-q1:$(password adapter.motcua-q1)@127.0.0.1:$TLS_PORT/%2F?$TLSQ" > adapter-byip.url
chmod 600 adapter-byip.url
publish byip adapter-byip.url 0905
if grep -q "SSL hostname verification failed" publish-byip.out && [ "$(queued)" = 1 ]; then
  pass "publish to 127.0.0.1, a name the broker's certificate (DNS:localhost) does not carry, is refused"
else
  fail "publish to a host the certificate does not name: $(cat publish-byip.out)"
fi
publish nocert adapter-nocert.url 0904
if grep -q " 0 published, 1 spooled" publish-nocert.out && [ "$(queued)" = 1 ]; then
  pass "publish without a client certificate is refused by the broker (fail_if_no_peer_cert)"
else
  fail "publish without a client certificate: $(cat publish-nocert.out)"
fi

# --- 5. sameday receive (receiver) --------------------------------------------------------------------------------
echo "== sameday receive over amqps://"
receive() {  # receive NAME PORT HTTP-PORT DOSSIER-NUMBER: a receiver, one POST; the answer in receive-NAME.answer
  url receiver "$2" > "receiver-$1.url"
  chmod 600 "receiver-$1.url"
  cat > "receiver-$1.json" <<EOF
{"config": "$CONFIG", "unitSystems": "$REGISTRY", "brokerURLFile": "$W/receiver-$1.url",
 "spool": {"directory": "$W/receiver-spool-$1", "capacityBytes": 1048576}}
EOF
  # The shipped registry's demo token is what the POST below presents: a demonstration's switch.
  SAMEDAY_DEMO=1 "$BIN" receive --listen "127.0.0.1:$3" --config "receiver-$1.json" >"receive-$1.log" 2>&1 &
  local pid=$!
  PIDS+=($pid)
  for _ in $(seq 40); do curl -fsS "http://127.0.0.1:$3/healthz" >/dev/null 2>&1 && break; sleep 0.25; done
  # shellcheck disable=SC2059
  curl -sS -m 30 -H "Authorization: Bearer demo-token-motcua-q1" -H "Content-Type: application/json" \
    --data "$(printf "$EVENT" "$4" "$4")" "http://127.0.0.1:$3/v1/events" >"receive-$1.answer" 2>&1
  ctl -q list_connections user ssl 2>/dev/null | awk -F'\t' '$1 == "receiver" && $2 == "true"' | wc -l >"receive-$1.ssl"
  kill "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
}
t0=$(ms)
receive ok "$TLS_PORT" "$HTTP_PORT" 0911
if grep -q '"confirmed":1' receive-ok.answer && wait_queued 2 && [ "$(cat receive-ok.ssl)" -ge 1 ]; then
  pass "receive: HTTP 202, the event confirmed over TLS (receiver connected with ssl=true; $(since "$t0") s)"
else
  fail "receive over TLS: $(cat receive-ok.answer) / $(tail -3 receive-ok.log)"
fi
receive rogue "$ROGUE_PORT" "$((HTTP_PORT + 1))" 0912
if grep -q "$REFUSED" receive-rogue.answer && [ "$(queued)" = 2 ]; then
  pass "receive refuses the rogue server: HTTP $(grep -o '"status":[0-9]*' receive-rogue.log | tail -1 | cut -d: -f2), $REFUSED"
else
  fail "receive with the rogue server: $(cat receive-rogue.answer) / $(tail -3 receive-rogue.log)"
fi

# --- 6. sameday worker (worker) ------------------------------------------------------------------------------------
echo "== sameday worker over amqps://"
worker() {  # worker NAME PORT: runs a worker until it logs "worker consuming" (or 10 s), then SIGTERM
  printf 'worker:%s\n' "$(password worker)" > "worker-$1.credentials"
  chmod 600 "worker-$1.credentials"
  cat > "worker-$1.json" <<EOF
{"brokers": ["amqps://localhost:$2/%2F?$TLSQ"], "credentialsFile": "$W/worker-$1.credentials",
 "shard": 0, "shards": 4, "domainConfig": "$CONFIG", "stateDirectory": "$W/worker-state-$1", "clock": "events",
 "metricsListen": "127.0.0.1:$METRICS_PORT"}
EOF
  "$BIN" worker --config "worker-$1.json" >"worker-$1.log" 2>&1 &
  local pid=$!
  PIDS+=($pid)
  for _ in $(seq 40); do grep -q "worker consuming" "worker-$1.log" && break; sleep 0.25; done
  ctl -q list_connections user ssl 2>/dev/null | awk -F'\t' '$1 == "worker" && $2 == "true"' | wc -l >"worker-$1.ssl"
  kill -TERM "$pid" 2>/dev/null
  wait "$pid"
  echo $? > "worker-$1.status"
}
t0=$(ms)
worker ok "$TLS_PORT"
if grep -q "worker consuming" worker-ok.log && [ "$(cat worker-ok.status)" = 0 ] && [ "$(cat worker-ok.ssl)" -ge 1 ]; then
  pass "worker consumed over TLS ($(cat worker-ok.ssl) connections with ssl=true) and stopped cleanly on SIGTERM ($(since "$t0") s)"
else
  fail "worker over TLS (exit $(cat worker-ok.status)): $(tail -5 worker-ok.log)"
fi
worker rogue "$ROGUE_PORT"
if ! grep -q "worker consuming" worker-rogue.log && grep -q "$REFUSED" worker-rogue.log; then
  pass "worker refuses the rogue server: $REFUSED, never consumed, exit status $(cat worker-rogue.status)"
else
  fail "worker with the rogue server: $(tail -5 worker-rogue.log)"
fi

# --- 7. sameday alerts watch (supervisor.so-noi-vu): its own watch queue, over TLS --------------------------------
echo "== sameday alerts watch over amqps://"
url supervisor.so-noi-vu "$TLS_PORT" > supervisor.url
chmod 600 supervisor.url
"$BIN" alerts watch --url-file supervisor.url --config "$CONFIG" --unit 760 >watch.out 2>watch.err &
pid=$!
PIDS+=($pid)
for _ in $(seq 40); do grep -q "watching alerts" watch.err && break; sleep 0.25; done
# The node's queue listing can lag the declaration, or time out on a loaded machine: asked again for up to 10 s.
watch_queue=""
for _ in $(seq 20); do
  watch_queue=$(ctl -q list_queues name 2>/dev/null | grep '^sameday\.alerts\.so-noi-vu\.watch\.') && break
  sleep 0.5
done
if grep -q "watching alerts" watch.err && [ -n "$watch_queue" ]; then
  pass "alerts watch: the supervisor declared and bound $watch_queue"
else
  fail "alerts watch as the supervisor: $(cat watch.err); the node's queues: $(ctl -q list_queues name 2>&1 | head -10)"
fi
kill "$pid" 2>/dev/null

echo "== tls-check: $FAILED failure(s) in $(($(date +%s) - START)) s"
[ "$FAILED" = 0 ]
