#!/usr/bin/env bash
# Installs what building and running SameDay needs on Debian 12 (as root), skipping what is already there:
# rabbitmq-c and SQLite headers for the build, the broker, PostgreSQL (the shared store's tests and the failover
# benchmark), the small tools the scripts use, headless Chromium with a font that has Vietnamese letters for the
# report page's browser test and screenshot (docs/report.md) with chromedriver, Selenium and pika for the board's
# browser test (docs/board.md), and msmtp with python3-aiosmtpd for the e-mail channel's
# test through a real MTA to an SMTP sink on loopback (scripts/smtp-sink.py, docs/notify.md).
set -euo pipefail
missing=()
for package in librabbitmq-dev libsqlite3-dev rabbitmq-server postgresql sqlite3 curl python3 python3-venv openssl chromium chromium-driver python3-selenium python3-pika fonts-noto-core msmtp python3-aiosmtpd; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q "${missing[@]}"
fi
