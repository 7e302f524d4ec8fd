#!/usr/bin/env bash
# The main job (README): on a fresh Debian machine as root, bring up a local RabbitMQ with SameDay's topology,
# build, and run a demonstration over the 2022 action month (15 May – 15 June) for the HCMC 2022 configuration:
# a generated month of dossier events → SLA alerts for supervisors and the daily report rollups.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"
OUT=${SAMEDAY_DEMO_OUT:-demo-out}
CONFIG=deploy/config/hcmc-2022

deploy/local-broker.sh
swift build -c release --product sameday
BIN=.build/release/sameday

$BIN topology declare --shards 4
rm -rf "$OUT" && mkdir -p "$OUT"
$BIN simulate --config "$CONFIG" --from 2022-05-15 --days 32 --per-unit 3 --out "$OUT/events.jsonl"
$BIN replay --config "$CONFIG" --events "$OUT/events.jsonl" --out "$OUT/replay" --until 2022-06-16T23:59:59+07:00
echo
echo "== Alerts by level (first 3 shown) =="
cut -d'"' -f8 "$OUT/replay/alerts.jsonl" >/dev/null 2>&1 || true
grep -o '"level":"[a-z_]*"' "$OUT/replay/alerts.jsonl" | sort | uniq -c
head -n 3 "$OUT/replay/alerts.jsonl"
echo
echo "== Report for the action month, by block (rollups from $OUT/replay/rollups) =="
$BIN report --rollups "$OUT/replay/rollups" --from 2022-05-15 --to 2022-06-15 --format table
