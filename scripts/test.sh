#!/usr/bin/env bash
# The test command (README, and what CI runs): on a fresh Debian machine as root it installs what is missing,
# starts a local RabbitMQ, builds, and runs every test, the ones against the real broker included.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"

bash scripts/install-deps.sh
deploy/local-broker.sh
# The shared store's tests run against a throwaway PostgreSQL of their own (port 5433).
deploy/postgres/local-postgres.sh start
python3 deploy/config/check-config.py deploy/config/hcmc-2022
python3 deploy/config/check-config.py deploy/config/hcmc-2025
swift build --build-tests
# The shipped systemd units, where systemd is installed.
deploy/systemd/verify.sh .build/debug/sameday
# One test at a time: the broker-restart test stops the broker under everything else.
# SAMEDAY_TEST_SERVICES_REQUIRED=1: a suite that needs RabbitMQ or PostgreSQL fails, not skips, when it is absent.
SAMEDAY_TEST_SERVICES_REQUIRED=1 SAMEDAY_TEST_BROKER_RESTART=1 swift test --skip-build --no-parallel
# The report counted a second way (scripts/reference_rollups.py, written from docs/rules.md): the realistic month on
# both maps and the hand-made edge cases must agree cell by cell, and a reference with one rule broken must not.
bash scripts/reference-check.sh
CONFIG=deploy/config/hcmc-2025 bash scripts/reference-check.sh
EDGE=1 bash scripts/reference-check.sh
if REFERENCE_PERTURB=fees-ignored bash scripts/reference-check.sh >/dev/null 2>&1; then
  echo "test: the reference check did not notice a broken rule" >&2
  exit 1
fi
# TLS, proven on a throwaway CA and a broker node of its own.
SAMEDAY_BIN="$PWD/.build/debug/sameday" bash scripts/tls-check.sh
# A broker node lost mid-run on a three-node cluster of its own (ports 5673–5675): nothing lost or doubled.
SAMEDAY_BIN="$PWD/.build/debug/sameday" bash deploy/cluster/failover-check.sh
# Standby takeover on the shared store: two workers per shard on PostgreSQL, two active ones SIGKILLed and the
# busiest broker node stopped mid-run; fails unless nothing is lost, doubled or wrong (docs/operations.md).
.build/debug/sameday-bench failover --scale 0.01
# The same with the active workers frozen (SIGSTOP) instead of killed: each frozen worker, resumed, stops without
# committing or writing, and nothing is lost or doubled (the time until the standby holds the lease is reported).
.build/debug/sameday-bench failover --scale 0.01 --freeze
# Every parser under libFuzzer + AddressSanitizer, 60 s each (docs/fuzzing.md; the long run: scripts/fuzz.sh 3600).
bash scripts/fuzz.sh 60
