#!/usr/bin/env bash
# Checks the shipped systemd units with systemd-analyze verify and security, where systemd is installed (CI runs it
# from scripts/test.sh). The units name /usr/local/bin/sameday; the check points them at the binary just built.
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! command -v systemd-analyze >/dev/null 2>&1; then
  echo "verify: systemd-analyze is not installed; skipping the unit check"
  exit 0
fi
binary=$(realpath -m "${1:-.build/debug/sameday}")
[ -x "$binary" ] || { echo "verify: $binary is not built" >&2; exit 1; }
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
for unit in deploy/systemd/*.service deploy/systemd/*.timer; do
  sed "s|/usr/local/bin/sameday|$binary|g" "$unit" > "$scratch/$(basename "$unit")"
done
# A template unit is verified through an instance of it.
mv "$scratch/sameday-worker@.service" "$scratch/sameday-worker@0.service"
if ! output=$(cd "$scratch" && systemd-analyze verify ./*.service ./*.timer 2>&1) || [ -n "$output" ]; then
  printf '%s\n' "$output" >&2
  echo "verify: systemd-analyze found problems in deploy/systemd" >&2
  exit 1
fi
# Every service's overall exposure must stay "OK" or better (at most 4.9; the threshold is in tenths). An offline
# review needs systemd 250 or later.
if ! systemd-analyze --help 2>&1 | grep -q -- '--offline'; then
  echo "verify: deploy/systemd units OK (systemd-analyze verify; this systemd cannot review security offline)"
  exit 0
fi
if ! output=$(cd "$scratch" && systemd-analyze security --offline=yes --threshold=49 --no-pager ./*.service 2>&1); then
  printf '%s\n' "$output" | grep -E '^→ Overall' >&2 || printf '%s\n' "$output" >&2
  echo "verify: a unit in deploy/systemd is above exposure 4.9 (systemd-analyze security)" >&2
  exit 1
fi
printf '%s\n' "$output" | grep -E '^→ Overall' | sed 's/^→ /verify: /' || true
echo "verify: deploy/systemd units OK (systemd-analyze verify, security)"
