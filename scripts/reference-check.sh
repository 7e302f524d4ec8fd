#!/usr/bin/env bash
# Independent check of `sameday report`: simulate the realistic scenario (late, fee-paused, supplemented,
# withdrawn, out-of-order and duplicated events), replay it, print the report as CSV, count the same figures with
# scripts/reference_rollups.py (written from docs/rules.md, not from the Swift code) and compare column by column.
#
#   scripts/reference-check.sh [SAMEDAY_BINARY]      (or SAMEDAY_BIN=…; default .build/debug/sameday)
#
# Builds nothing. Environment: SCALE (default 0.01), SEED (default 2022), CONFIG (default deploy/config/hcmc-2022),
# INCLUDE_UNCONFIRMED=1 (simulate draws the catalog's unconfirmed and illustrative procedures too), ARRIVAL_ORDER=1
# (replay takes the file's arrival order, late `received` included, instead of occurredAt order);
# KEEP=1 keeps the temporary folder; EDGE=1 checks hand-made edge cases instead of the simulation (one dossier per
# unit, EDGE_CASES in reference_rollups.py, the `extended` cases of §4.6a included; EDGE_EXTENDED=0 leaves those
# out, for a binary that predates that event); REFERENCE_PERTURB=<rule> breaks one rule in the reference on purpose, to prove the check can
# fail (fees-ignored, count-on-arrival, cutoff-exclusive).
# Exit status: 0 when every compared figure agrees, 1 on any difference or failure.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${1:-${SAMEDAY_BIN:-$ROOT/.build/debug/sameday}}
CONFIG=${CONFIG:-$ROOT/deploy/config/hcmc-2022}
SCALE=${SCALE:-0.01}
SEED=${SEED:-2022}
REF="$ROOT/scripts/reference_rollups.py"

[ -x "$BIN" ] || { echo "reference-check: no sameday binary at $BIN" >&2; exit 1; }
TMP=$(mktemp -d "${TMPDIR:-/tmp}/reference-check.XXXXXX")
if [ "${KEEP:-0}" = 1 ]; then echo "reference-check: keeping $TMP" >&2; else trap 'rm -rf "$TMP"' EXIT; fi
START=$(date +%s)

# The events (the realistic scenario, or with EDGE=1 the reference's hand-made edge cases, one dossier per unit),
# and SameDay's own rollups of them.
EVENTS="$TMP/events.jsonl"
if [ "${EDGE:-0}" = 1 ]; then
  python3 "$REF" edge-events --out "$EVENTS" $( [ "${EDGE_EXTENDED:-1}" = 1 ] && echo --with-extended ) >"$TMP/edge-cases.txt"
  echo "reference-check: edge cases (unit: case) in $TMP/edge-cases.txt" >&2
else
  "$BIN" simulate --config "$CONFIG" --scenario realistic --scale "$SCALE" --seed "$SEED" --out "$EVENTS" \
    ${INCLUDE_UNCONFIRMED:+--include-unconfirmed} >&2
fi
"$BIN" replay --config "$CONFIG" --events "$EVENTS" --out "$TMP/out" ${ARRIVAL_ORDER:+--arrival-order} \
  >"$TMP/replay.log" 2>&1 ||
  { cat "$TMP/replay.log" >&2; exit 1; }
ROLLUPS="$TMP/out/rollups"

# The period is every day the replay wrote.
DAYS=$(ls "$ROLLUPS/daily" | sort)
FROM=$(echo "$DAYS" | head -n 1)
TO=$(echo "$DAYS" | tail -n 1)

# One period: what the report prints per unit, field, block and city, the same figures by the independent path
# (scripts/reference_rollups.py, from docs/rules.md), then the comparison (first 20 differences). The daily
# files of the replay are compared too when a third argument says so.
check_period() {
  local from=$1 to=$2 dir="$TMP/$1_$2" daily=${3:-}
  mkdir -p "$dir"
  for level in units fields blocks; do
    "$BIN" report --rollups "$ROLLUPS" --from "$from" --to "$to" --format csv --level "$level" \
      --out "$dir/report-$level.csv" 2>"$dir/report.err" || { cat "$dir/report.err" >&2; return 1; }
  done
  python3 "$REF" compute --config "$CONFIG" --events "$EVENTS" --from "$from" --to "$to" --out "$dir/reference" \
    ${REFERENCE_PERTURB:+--perturb "$REFERENCE_PERTURB"} 2>"$dir/reference.err" ||
    { cat "$dir/reference.err" >&2; return 1; }
  echo "== $from..$to"
  python3 "$REF" compare --ours "$dir/reference" --units "$dir/report-units.csv" --blocks "$dir/report-blocks.csv" \
    --fields "$dir/report-fields.csv" ${daily:+--daily "$ROLLUPS"}
}

# The whole replay (every dossier closed by its end), and a stretch in the middle where stocks and carried_over
# are not zero at the period's edges.
STATUS=0
check_period "$FROM" "$TO" daily || STATUS=1
MID=($(echo "$DAYS" | sed -n '6p;18p'))
[ ${#MID[@]} -eq 2 ] && { check_period "${MID[0]}" "${MID[1]}" || STATUS=1; }
[ "${EDGE:-0}" = 1 ] && [ $STATUS != 0 ] && { echo "edge cases (unit, case):"; cat "$TMP/edge-cases.txt"; }
echo "reference-check: ${EDGE:+edge cases }$FROM..$TO, $(( $(date +%s) - START )) s" >&2
exit $STATUS
