#!/usr/bin/env bash
# The main job (README): on a fresh Debian machine as root, bring up a local RabbitMQ with SameDay's topology, build,
# and run the system over the 2022 action month (15 May – 15 June) of the HCMC 2022 configuration:
#   generated unit-system events → adapter (`sameday publish`, confirmed) → RabbitMQ (4 shards) → 4 workers
#   (SQLite state, SLA timers on the events' clock) → alerts for supervisors (AMQP + files) and daily rollups,
# then the month's report beside the seed document's figures, checked against `sameday replay` over the same events.
#
#   bash scripts/demo.sh          # the seed's month (seed-2022) at scale 0.2: about two minutes after the build
#   bash scripts/demo.sh --full   # the seed's month at scale 1: 694,309 same-day dossiers (timings: docs/benchmarks.md)
#
# SAMEDAY_DEMO_OUT (default demo-out) is the output folder; SAMEDAY_DEMO_SCALE overrides the scale.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"
OUT=${SAMEDAY_DEMO_OUT:-demo-out}
CONFIG=deploy/config/hcmc-2022
SHARDS=4
SCALE=${SAMEDAY_DEMO_SCALE:-0.2}
WAIT=600
case "${1:-}" in
  --full) SCALE=1; WAIT=7200 ;;
  "") ;;
  *) echo "usage: bash scripts/demo.sh [--full]" >&2; exit 2 ;;
esac

bash scripts/install-deps.sh
deploy/local-broker.sh
swift build -c release --product sameday
BIN=.build/release/sameday
built=$SECONDS

$BIN topology declare --shards $SHARDS
# A board left running by the previous demonstration serves the folder about to be replaced: stop it first.
if [ -s "$OUT/board/board.pid" ]; then kill "$(cat "$OUT/board/board.pid")" 2>/dev/null || true; sleep 1; fi
rm -rf "$OUT" && mkdir -p "$OUT"
# Start from empty queues, so the demonstration is the same on every run.
for n in $(seq 0 $((SHARDS - 1))); do rabbitmqctl -q purge_queue "sameday.work.$n" >/dev/null; done

echo "== 1. The seed's month (15/5–15/6/2022) from every unit's system, scale $SCALE (deterministic) =="
$BIN simulate --config "$CONFIG" --scenario seed-2022 --scale "$SCALE" --out "$OUT/events.jsonl"
# The month has no lateness with a cause (every dossier is resolved within its day by construction). After it, on
# Tuesday 21 June, District 1's desk gets more certifications in an hour than it can serve by the close: the queue
# forecast (at_risk) sees it coming before warning, and District 1's e-mail says so (step 6). The month's report is
# untouched.
# One desk at scale 0.2 and below; at a larger scale District 1 is busier, and the afternoon grows with it.
GROW=$(awk "BEGIN {g = $SCALE / 0.2; print (g > 1 ? g : 1)}")
/usr/bin/python3 scripts/demo-congestion.py "$OUT/events.jsonl" "$(awk "BEGIN {print int(90 * $GROW)}")" \
  "$(awk "BEGIN {print 5 / $GROW}")" "$(awk "BEGIN {print int(30 * $GROW)}")"

echo "== 2. sameday notify (alerts to people by e-mail and chat) and four workers, one per shard =="
# Mail goes to an SMTP server on loopback (scripts/smtp-sink.py) through msmtp, chat to a Telegram stand-in
# (scripts/chat-sink.py): what District 1's people received is left in $OUT/notify/quan1/.
NOTIFY="$(realpath -m "$OUT")/notify"  # notify.json takes absolute paths
ROLLUPS=$(for n in $(seq 0 $((SHARDS - 1))); do printf '"%s/worker/shard-%s/rollups"\n' "$(realpath -m "$OUT")" "$n"; done | paste -sd, -)
mkdir -p "$NOTIFY/sink-mail" "$NOTIFY/sink-chat" "$NOTIFY/quan1"
# Debian's Python, which has python3-aiosmtpd (scripts/install-deps.sh), whatever python3 is first on PATH.
/usr/bin/python3 scripts/smtp-sink.py --dir "$NOTIFY/sink-mail" --lifetime 3600 >"$NOTIFY/sink-mail.log" 2>&1 &
smtpsink=$!
/usr/bin/python3 scripts/chat-sink.py --dir "$NOTIFY/sink-chat" --lifetime 3600 >"$NOTIFY/sink-chat.log" 2>&1 &
chatsink=$!
for _ in $(seq 1 100); do [ -s "$NOTIFY/sink-mail/port" ] && [ -s "$NOTIFY/sink-chat/port" ] && break; sleep 0.1; done
[ -s "$NOTIFY/sink-mail/port" ] && [ -s "$NOTIFY/sink-chat/port" ] \
  || { echo "the local mail and chat sinks did not start:"; cat "$NOTIFY"/sink-*.log; exit 1; }
cat > "$NOTIFY/msmtp.conf" <<MSMTP
defaults
syslog off
account sink
host 127.0.0.1
port $(cat "$NOTIFY/sink-mail/port")
tls off
auth off
from sameday@hcmc.example
account default : sink
MSMTP
(umask 077 && echo "100000001:demo-token-for-the-local-chat-sink" > "$NOTIFY/telegram.token")
# The month is replayed on the alerts' own time; a message due outside working hours waits for the next session.
cat > "$NOTIFY/notify.json" <<JSON
{"from": "SameDay <sameday@hcmc.example>", "stateDirectory": "$NOTIFY/state", "metricsListen": "",
 "mail": {"program": "/usr/bin/msmtp", "arguments": ["-C", "$NOTIFY/msmtp.conf"]},
 "webhooks": {"telegram": {"kind": "telegram", "tokenFile": "$NOTIFY/telegram.token",
                           "base": "http://127.0.0.1:$(cat "$NOTIFY/sink-chat/port")"}},
 "people": {"chuyenvien.tthc@quan1.hcmc.example": {"chat": [{"webhook": "telegram", "chatId": "-1001760"}]}},
 "windows": {"groupWaitSeconds": 30, "groupIntervalSeconds": 300},
 "dailySummary": {"at": "16:30", "rollups": [$ROLLUPS]}}
JSON
SAMEDAY_DOMAIN_CONFIG="$CONFIG" SAMEDAY_CLOCK=events SAMEDAY_METRICS_LISTEN="" \
  $BIN notify --notify "$NOTIFY/notify.json" --log-level warning 2>"$OUT/notify.log" &
notifier=$!
for _ in $(seq 1 100); do
  rabbitmqctl -q list_queues name 2>/dev/null | grep -qx sameday.notify && break
  kill -0 "$notifier" 2>/dev/null || { echo "sameday notify stopped early:"; cat "$OUT/notify.log"; exit 1; }
  sleep 0.2
done

# The supervisors' live board (docs/board.md) on http://127.0.0.1:8470, on the alerts' clock like the notifier: it
# reads its own queue, the workers' rollup files for the day's figures and their stores for a dossier's timeline.
BOARD="$(realpath -m "$OUT")/board"
BOARD_PASSWORD="demo-quan1-2022"
mkdir -p "$BOARD"
STORES=$(for n in $(seq 0 $((SHARDS - 1))); do printf '"%s/worker/shard-%s/shard-%s.sqlite"\n' "$(realpath -m "$OUT")" "$n" "$n"; done | paste -sd, -)
ALERTDIRS=$(for n in $(seq 0 $((SHARDS - 1))); do printf '"%s/worker/shard-%s/alerts"\n' "$(realpath -m "$OUT")" "$n"; done | paste -sd, -)
for person in lanhdao.phong@quan1.hcmc.example lanhdao.phong@khoi-quanhuyen.hcmc.example; do
  echo "$BOARD_PASSWORD" | $BIN board password "$person" --cost 10
done > "$BOARD/board.passwords"
chmod 600 "$BOARD/board.passwords"
cat > "$BOARD/board.json" <<JSON
{"listen": "127.0.0.1:8470", "passwordsFile": "$BOARD/board.passwords", "stateDirectory": "$BOARD/state",
 "metricsListen": "127.0.0.1:9461", "alertFolders": [$ALERTDIRS], "rollups": [$ROLLUPS], "timelineStores": [$STORES]}
JSON
SAMEDAY_DOMAIN_CONFIG="$CONFIG" SAMEDAY_CLOCK=events SAMEDAY_METRICS_LISTEN="" \
  setsid $BIN board --board "$BOARD/board.json" --log-level warning >"$OUT/board.log" 2>&1 < /dev/null &
board=$!
echo "$board" > "$BOARD/board.pid"
for _ in $(seq 1 100); do
  rabbitmqctl -q list_queues name 2>/dev/null | grep -qx sameday.board && break
  kill -0 "$board" 2>/dev/null || { echo "sameday board stopped early:"; cat "$OUT/board.log"; exit 1; }
  sleep 0.2
done

pids=()
for n in $(seq 0 $((SHARDS - 1))); do
  SAMEDAY_SHARD=$n SAMEDAY_SHARDS=$SHARDS SAMEDAY_STATE_DIR="$OUT/worker/shard-$n" SAMEDAY_DOMAIN_CONFIG="$CONFIG" SAMEDAY_CLOCK=events \
    SAMEDAY_METRICS_LISTEN="127.0.0.1:$((9464 + n))" \
    $BIN worker --log-level warning 2>"$OUT/worker-$n.log" &
  pids+=($!)
done
# A supervisor of District 1 (Quận 1) at her desk, watching its dossiers near the deadline (the seed's month has
# nothing overdue: every same-day dossier is resolved within the day).
$BIN alerts watch --unit 760 --level warning --count 5 --config "$CONFIG" > "$OUT/watch-quan1.txt" 2>/dev/null &
watcher=$!
# Whatever happens from here on, leave no worker or watcher behind.
trap 'kill "${pids[@]}" "$watcher" "$notifier" "$smtpsink" "$chatsink" "$board" 2>/dev/null || true' EXIT
sleep 2

# Events the workers have applied, all shards.
applied_events() {
  local total=0 c
  for n in $(seq 0 $((SHARDS - 1))); do
    c=$(sqlite3 "$OUT/worker/shard-$n/shard-$n.sqlite" 'select count(*) from event_log' 2>/dev/null || echo 0)
    total=$((total + c))
  done
  echo "$total"
}
# Waits until the events the workers have applied number the distinct events of the FILEs given (all published so far).
wait_applied() {
  expected=$(cat "$@" | grep -o '"eventId":"[^"]*"' | sort -u | wc -l)
  for _ in $(seq 1 $WAIT); do
    applied=$(applied_events)
    [ "$applied" -ge "$expected" ] && return 0
    for pid in "${pids[@]}"; do
      kill -0 "$pid" 2>/dev/null || { echo "a worker stopped early:"; cat "$OUT"/worker-*.log; exit 1; }
    done
    sleep 1
  done
}

echo "== 3. The adapter publishes them, confirmed and persistent =="
# Published in two parts, so that District 1's busy afternoon is seen as it happens: everything up to 14:45 on
# 21 June first (the forecast has flagged the end of the queue by then, and nothing has warned yet), then the rest
# once the notifier has mailed that. Replayed at full speed in one go, the afternoon's alerts would all reach the
# notifier within one grouping window, and the later ones (warning, overdue, resolved_late) would take the at_risk's
# place in the digest.
/usr/bin/python3 - "$OUT/events.jsonl" "$OUT/events-1.jsonl" "$OUT/events-2.jsonl" <<'PY'
import re, sys
source, first, rest = sys.argv[1:4]
at = re.compile(r'"occurredAt":"([^"]+)"')
with open(source, encoding="utf-8") as f, open(first, "w", encoding="utf-8") as a, open(rest, "w", encoding="utf-8") as b:
    for line in f:
        (a if at.search(line).group(1) <= "2022-06-21T14:45:00+07:00" else b).write(line)
PY
$BIN publish --profile deploy/adapters/profiles/simulated-jsonl.json --config "$CONFIG" --spool "$OUT/spool" "$OUT/events-1.jsonl"
wait_applied "$OUT/events-1.jsonl"
# Until District 1's e-mail names one of the afternoon's dossiers with its predicted completion (two minutes at most).
for _ in $(seq 1 60); do
  /usr/bin/python3 - "$NOTIFY/sink-mail" <<'PY' && break
import email, email.policy, glob, os, sys
for path in glob.glob(os.path.join(sys.argv[1], "*.eml")):
    with open(path, "rb") as f:
        body = email.message_from_binary_file(f, policy=email.policy.default).get_body(preferencelist=("plain",))
    text = body.get_content() if body is not None else ""
    if "760-220621-" in text and "Dự kiến xong" in text:
        sys.exit(0)
sys.exit(1)
PY
  sleep 2
done
$BIN publish --profile deploy/adapters/profiles/simulated-jsonl.json --config "$CONFIG" --spool "$OUT/spool" "$OUT/events-2.jsonl"

echo "== 4. Waiting for the workers to apply every event =="
wait_applied "$OUT/events.jsonl"
echo "applied $applied of $expected events; shard 0's metrics (http://127.0.0.1:9464/metrics):"
curl -fsS http://127.0.0.1:9464/metrics 2>/dev/null | grep -E '^sameday_(events_total|alerts_total|dossiers|commit_seconds_(sum|count))[ {]' || true
kill -TERM "${pids[@]}"; wait "${pids[@]}" || true
kill "$watcher" 2>/dev/null || true
# The notifier's last groups: its queue read, then quiet for a group wait (on the alerts' clock, which runs on with
# the wall clock after the last alert).
for _ in $(seq 1 180); do
  before=$(ls "$NOTIFY/sink-mail" "$NOTIFY/sink-chat" | wc -l)
  sleep 5
  queued=$(rabbitmqctl -q list_queues name messages 2>/dev/null | awk '$1 == "sameday.notify" {print $2}')
  [ "${queued:-0}" = 0 ] && [ "$(ls "$NOTIFY/sink-mail" "$NOTIFY/sink-chat" | wc -l)" = "$before" ] && break
done
kill -TERM "$notifier"; wait "$notifier" || true
kill "$smtpsink" "$chatsink" 2>/dev/null || true
trap - EXIT

echo
echo "== 5. Alerts for supervisors (files: $OUT/worker/shard-*/alerts/), by level =="
cat "$OUT"/worker/shard-*/alerts/*.jsonl | grep -o '"level":"[a-z_]*"' | sort | uniq -c
echo "-- what the District 1 supervisor saw (sameday alerts watch --unit 760 --level warning):"
cat "$OUT/watch-quan1.txt"

echo
echo "== 6. What people received (sameday notify; $NOTIFY/) =="
python3 scripts/demo-notify.py "$NOTIFY"

echo
echo "== 7. The action month's report, by block (four shards added up), beside the seed's figures =="
rollups=(); for n in $(seq 0 $((SHARDS - 1))); do rollups+=(--rollups "$OUT/worker/shard-$n/rollups"); done
$BIN report "${rollups[@]}" --from 2022-05-15 --to 2022-06-15 --format table --compare seed-2022 | tee "$OUT/comparison.txt"
$BIN report "${rollups[@]}" --from 2022-05-15 --to 2022-06-15 --format csv > "$OUT/report-2022-05-15_2022-06-15.csv"
# For the head of office: the page to open in a browser (docs/report.md), and for the clerk: Biểu 06's rows per field
# within each unit with the form's Vietnamese headers, to paste into the official template.
alerts=(); for n in $(seq 0 $((SHARDS - 1))); do alerts+=(--alerts "$OUT/worker/shard-$n/alerts"); done
$BIN report "${rollups[@]}" "${alerts[@]}" --config "$CONFIG" --from 2022-05-15 --to 2022-06-15 \
  --format html --out "$OUT/report.html"
$BIN report "${rollups[@]}" --from 2022-05-15 --to 2022-06-15 --format csv --level fields --headers vi \
  --out "$OUT/bieu06-theo-linh-vuc.csv"
echo "-- the supervisor's page: $OUT/report.html; Biểu 06 per field (Vietnamese headers): $OUT/bieu06-theo-linh-vuc.csv"

echo
echo "== 8. Check: the same events through \`sameday replay\` give the same report =="
$BIN replay --config "$CONFIG" --events "$OUT/events.jsonl" --out "$OUT/replay" >/dev/null
$BIN report --rollups "$OUT/replay/rollups" --from 2022-05-15 --to 2022-06-15 --format csv > "$OUT/report-replay.csv"
if cmp -s "$OUT/report-2022-05-15_2022-06-15.csv" "$OUT/report-replay.csv"; then
  echo "identical: workers through RabbitMQ and replay agree on every figure"
else
  echo "DIFFERENT: see $OUT/report-*.csv" && exit 1
fi
echo
echo "== 9. The supervisors' live board (sameday board), as it stood at 14:30 on Thursday 2 June 2022 =="
# The board that followed the run live has nothing left at risk (every dossier of the month was resolved): the one
# left running shows a busy afternoon instead, from the month replayed to that moment.
kill -TERM "$board"; wait "$board" 2>/dev/null || true
bash scripts/demo-board.sh "$OUT" "$CONFIG" "$BIN" "$SHARDS"
echo "Outputs in $OUT/: events.jsonl, worker/shard-N/{alerts,rollups}, notify/quan1/*.eml and chat-*.json, report.html, report-*.csv, bieu06-theo-linh-vuc.csv, comparison.txt, board-*.png (the board at 14:30 on 2 June)"
echo "demo: $((SECONDS - built)) s after the build (scale $SCALE)"
