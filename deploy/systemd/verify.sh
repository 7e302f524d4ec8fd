#!/usr/bin/env bash
# Checks the shipped systemd units with systemd-analyze verify, where systemd is installed (CI runs it from
# scripts/test.sh). The units name /usr/local/bin/sameday; the check points them at the binary just built.
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
echo "verify: deploy/systemd units OK (systemd-analyze verify)"
