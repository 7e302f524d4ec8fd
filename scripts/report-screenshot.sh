#!/usr/bin/env bash
# Renders the supervisor's page for a period from worker outputs and screenshots it with headless Chromium
# (docs/report.md). Usage:
#   scripts/report-screenshot.sh WORKER_DIR [FROM TO] [OUT_PNG]
# WORKER_DIR holds shard-*/rollups and shard-*/alerts (demo.sh's OUT/worker); FROM and TO default to the seed
# month, 2022-05-15 … 2022-06-15; OUT_PNG defaults to docs/report-seed-2022.png. The page is kept beside the PNG
# with the extension .html. The browser never reaches the network: file:// only, no host name resolves.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"
worker=${1:?usage: scripts/report-screenshot.sh WORKER_DIR [FROM TO] [OUT_PNG]}
from=${2:-2022-05-15}
to=${3:-2022-06-15}
png=${4:-docs/report-seed-2022.png}
bin=${SAMEDAY_BIN:-.build/debug/sameday}
[ -x "$bin" ] || swift build --scratch-path .build
command -v chromium >/dev/null || { echo "report-screenshot: chromium is not installed (scripts/install-deps.sh)" >&2; exit 1; }

args=()
for shard in "$worker"/shard-*; do
  args+=(--rollups "$shard/rollups")
  [ -d "$shard/alerts" ] && args+=(--alerts "$shard/alerts")
done
[ "${#args[@]}" -gt 0 ] || { echo "report-screenshot: no shard-* folders in $worker" >&2; exit 1; }
html="${png%.png}.html"
"$bin" report "${args[@]}" --config deploy/config/hcmc-2022 --from "$from" --to "$to" --format html --out "$html"

profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
log="$profile/chromium.log"
chromium --headless --no-sandbox --disable-gpu --no-proxy-server --no-first-run --disable-extensions \
  --disable-background-networking --disable-component-update --host-resolver-rules='MAP * ~NOTFOUND' \
  --user-data-dir="$profile" --hide-scrollbars --enable-logging=stderr --v=0 \
  --window-size=1280,2000 --screenshot="$PWD/$png" "file://$(realpath "$html")" 2>"$log" >/dev/null
if grep -q ':CONSOLE' "$log"; then
  grep ':CONSOLE' "$log" >&2
  echo "report-screenshot: the page logged console messages" >&2
  exit 1
fi
echo "report-screenshot: $html and $png"
