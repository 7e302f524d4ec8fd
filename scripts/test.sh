#!/usr/bin/env bash
# The test command (README, and what CI runs): on a fresh Debian machine as root it installs what is missing,
# starts a local RabbitMQ, builds, and runs every test, the ones against the real broker included.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"

bash scripts/install-deps.sh
deploy/local-broker.sh
python3 deploy/config/check-config.py deploy/config/hcmc-2022
swift build --build-tests
# One test at a time: the broker-restart test stops the broker under everything else.
SAMEDAY_TEST_BROKER_RESTART=1 swift test --skip-build --no-parallel
