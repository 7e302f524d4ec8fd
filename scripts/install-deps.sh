#!/usr/bin/env bash
# Installs what building and running SameDay needs on Debian 12 (as root), skipping what is already there:
# rabbitmq-c and SQLite headers for the build, the broker, PostgreSQL (the shared store's tests and the failover
# benchmark), the small tools the scripts use, and headless Chromium with a font that has Vietnamese letters for the
# report page's browser test and screenshot (docs/report.md).
set -euo pipefail
missing=()
for package in librabbitmq-dev libsqlite3-dev rabbitmq-server postgresql sqlite3 curl python3 python3-venv openssl chromium fonts-noto-core; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q "${missing[@]}"
fi
