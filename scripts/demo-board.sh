#!/usr/bin/env bash
# The demonstration's board (scripts/demo.sh, step 9; docs/board.md): the supervisors' live page as it stood at a
# busy moment of the month, left running on http://127.0.0.1:8470 for a newcomer to open.
#
#   scripts/demo-board.sh OUT CONFIG BIN SHARDS [MOMENT]
#
# The month is replayed up to MOMENT (default 2022-06-02T14:30:00+07:00, a Thursday afternoon): the events that
# occurred by then through `sameday replay --until`, which gives the alerts and the day's figures as they were at
# that instant. A board reads them (its state from the alert files, its cards from the rollups, a dossier's timeline
# from the demonstration workers' stores), on the alerts' clock, and stays up. It also takes the screenshots
# OUT/board-desktop.png and OUT/board-phone.png (the pictures in docs/board.md and the README).
set -euo pipefail
OUT=$1 CONFIG=$2 BIN=$3 SHARDS=$4
MOMENT=${5:-2022-06-02T14:30:00+07:00}
PASSWORD=demo-quan1-2022
BOARD="$(realpath -m "$OUT")/board"
AT="$BOARD/at-moment"
rm -rf "$AT" && mkdir -p "$AT/alerts"

# The events that had occurred by the moment, then the replay to it.
/usr/bin/python3 - "$OUT/events.jsonl" "$AT/events.jsonl" "$MOMENT" <<'PY'
import datetime, json, sys
source, target, moment = sys.argv[1:]
until = datetime.datetime.fromisoformat(moment)
with open(source, encoding="utf-8") as src, open(target, "w", encoding="utf-8") as dst:
    for line in src:
        if line.strip() and datetime.datetime.fromisoformat(json.loads(line)["occurredAt"]) <= until:
            dst.write(line)
PY
$BIN replay --config "$CONFIG" --events "$AT/events.jsonl" --until "$MOMENT" --out "$AT" >/dev/null
# Its alerts in the workers' layout, one file per day (alerts-YYYY-MM-DD.jsonl).
/usr/bin/python3 - "$AT/alerts.jsonl" "$AT/alerts" <<'PY'
import collections, json, sys
source, folder = sys.argv[1:]
days = collections.defaultdict(list)
for line in open(source, encoding="utf-8"):
    if line.strip():
        days[json.loads(line)["firedAt"][:10]].append(line)
for day, lines in days.items():
    with open(f"{folder}/alerts-{day}.jsonl", "w", encoding="utf-8") as f:
        f.writelines(lines)
PY

STORES=$(for n in $(seq 0 $((SHARDS - 1))); do printf '"%s/worker/shard-%s/shard-%s.sqlite"\n' "$(realpath -m "$OUT")" "$n" "$n"; done | paste -sd, -)
for person in lanhdao.phong@quan1.hcmc.example lanhdao.phong@khoi-quanhuyen.hcmc.example; do
  echo "$PASSWORD" | $BIN board password "$person" --cost 10
done > "$AT/board.passwords"
chmod 600 "$AT/board.passwords"
cat > "$AT/board.json" <<JSON
{"listen": "127.0.0.1:8470", "passwordsFile": "$AT/board.passwords", "stateDirectory": "$AT/state",
 "metricsListen": "127.0.0.1:9461", "alertFolders": ["$AT/alerts"], "alertFileDays": 31,
 "rollups": ["$AT/rollups"], "timelineStores": [$STORES]}
JSON
SAMEDAY_DOMAIN_CONFIG="$CONFIG" SAMEDAY_CLOCK=events \
  setsid $BIN board --board "$AT/board.json" --log-level warning >"$OUT/board-moment.log" 2>&1 < /dev/null &
board=$!
echo "$board" > "$BOARD/board.pid"
for _ in $(seq 1 100); do
  curl -fsS -o /dev/null http://127.0.0.1:8470/login 2>/dev/null && break
  kill -0 "$board" 2>/dev/null || { echo "sameday board stopped early:"; cat "$OUT/board-moment.log"; exit 1; }
  sleep 0.2
done
/usr/bin/python3 scripts/board-screenshot.py --url http://127.0.0.1:8470 \
  --person lanhdao.phong@khoi-quanhuyen.hcmc.example --password "$PASSWORD" --out "$OUT" --min-rows 3 \
  || echo "(no board screenshot: see above)"
echo "The board as it stood at $MOMENT is up: http://127.0.0.1:8470"
echo "Log in as lanhdao.phong@quan1.hcmc.example (District 1's office head) or"
echo "lanhdao.phong@khoi-quanhuyen.hcmc.example (every district), password $PASSWORD. Its clock runs on from the moment."
echo "Stop it: kill $board. Start it again: SAMEDAY_DOMAIN_CONFIG=$CONFIG SAMEDAY_CLOCK=events $BIN board --board $AT/board.json"
