#!/usr/bin/env bash
# Losing a broker node, end to end (issue "High availability", item 3): on the three-node cluster of cluster.sh,
# two workers drain their shard queues while the node they talk to is stopped, then the adapter publishes the rest of
# the month with that node still down. Every event must be applied exactly once and the workers' month report must
# equal `sameday replay` of the same events, byte for byte. Run by scripts/test.sh; leaves the cluster stopped.
#   deploy/cluster/failover-check.sh            (SAMEDAY_BIN: the sameday binary, default .build/debug/sameday)
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${SAMEDAY_BIN:-.build/debug/sameday}
CONFIG=deploy/config/hcmc-2022
SHARDS=2
OUT=$(mktemp -d /tmp/sameday-failover.XXXXXX)
CLUSTER=deploy/cluster/cluster.sh
export SAMEDAY_CLUSTER_DIR=$OUT/cluster
pids=()
passed=0
cleanup() {
  kill "${pids[@]}" 2>/dev/null || true
  wait "${pids[@]}" 2>/dev/null || true
  $CLUSTER stop >/dev/null 2>&1 || true
  # Kept for a look when the check failed.
  if [ "$passed" = 1 ]; then rm -rf "$OUT"; else echo "failover-check: outputs kept in $OUT" >&2; fi
}
trap cleanup EXIT
fail() { echo "failover-check: FAILED: $*" >&2; tail -n 5 "$OUT"/worker-*.log >&2 || true; exit 1; }

$CLUSTER start
URLS=$($CLUSTER urls)
export SAMEDAY_AMQP_URL=$URLS
$BIN topology declare --shards $SHARDS --url "${URLS%%,*}" >/dev/null

# The seed's month at 3 %, in two parts: three quarters published before the node is lost (the workers are still
# draining them when it goes), the rest after, with the node down.
$BIN simulate --config "$CONFIG" --scenario seed-2022 --scale 0.03 --out "$OUT/month.jsonl" >/dev/null
expected=$(grep -o '"eventId":"[^"]*"' "$OUT/month.jsonl" | sort -u | wc -l)
total=$(wc -l < "$OUT/month.jsonl")
head -n $((total * 3 / 4)) "$OUT/month.jsonl" > "$OUT/first.jsonl"
tail -n +$((total * 3 / 4 + 1)) "$OUT/month.jsonl" > "$OUT/second.jsonl"
$BIN publish --profile deploy/adapters/profiles/simulated-jsonl.json --config "$CONFIG" --spool "$OUT/spool" \
  "$OUT/first.jsonl" >/dev/null

for n in $(seq 0 $((SHARDS - 1))); do
  SAMEDAY_SHARD=$n SAMEDAY_SHARDS=$SHARDS SAMEDAY_STATE_DIR="$OUT/worker/shard-$n" SAMEDAY_DOMAIN_CONFIG="$CONFIG" \
    SAMEDAY_CLOCK=events SAMEDAY_METRICS_LISTEN="" \
    $BIN worker --log-level info 2>"$OUT/worker-$n.log" &
  pids+=($!)
done
applied() {
  local sum=0 c
  for n in $(seq 0 $((SHARDS - 1))); do
    c=$(sqlite3 "$OUT/worker/shard-$n/shard-$n.sqlite" 'select count(*) from event_log' 2>/dev/null || echo 0)
    sum=$((sum + c))
  done
  echo "$sum"
}
# Let the workers get going on node a (the first URL), then lose it.
for _ in $(seq 1 300); do [ "$(applied)" -gt 2000 ] && break; sleep 0.1; done
[ "$(applied)" -gt 0 ] || fail "the workers applied nothing"
before=$(applied)
$CLUSTER stop-node a
echo "failover-check: node a stopped with $before of $(wc -l < "$OUT/first.jsonl") published events applied ($expected in all)"
$BIN publish --profile deploy/adapters/profiles/simulated-jsonl.json --config "$CONFIG" --spool "$OUT/spool" \
  "$OUT/second.jsonl" >/dev/null || fail "the adapter could not publish with node a down"
for _ in $(seq 1 600); do
  [ "$(applied)" -ge "$expected" ] && break
  for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null || fail "a worker stopped"; done
  sleep 0.5
done
got=$(applied)
[ "$got" -eq "$expected" ] || fail "applied $got events, expected $expected"
kill -TERM "${pids[@]}"
for pid in "${pids[@]}"; do wait "$pid" || fail "a worker did not stop cleanly"; done
pids=()

rollups=(); for n in $(seq 0 $((SHARDS - 1))); do rollups+=(--rollups "$OUT/worker/shard-$n/rollups"); done
$BIN report "${rollups[@]}" --from 2022-05-15 --to 2022-06-15 --format csv --out "$OUT/workers.csv"
$BIN replay --config "$CONFIG" --events "$OUT/month.jsonl" --out "$OUT/replay" >/dev/null
$BIN report --rollups "$OUT/replay/rollups" --from 2022-05-15 --to 2022-06-15 --format csv --out "$OUT/replay.csv"
cmp -s "$OUT/workers.csv" "$OUT/replay.csv" || fail "the workers' report differs from replay ($OUT/*.csv)"
echo "failover-check: ok: node a lost mid-run, $got events applied once each, the workers' report equals replay"
passed=1
