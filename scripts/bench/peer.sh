#!/usr/bin/env bash
# The Python peer of `sameday-bench pipeline --prefilled` (scripts/bench/peer_consumer.py) in a virtual environment
# of its own, with pika from PyPI.
#
#   bash scripts/bench/peer.sh                  # make the venv if it is missing; print its python on stdout
#   bash scripts/bench/peer.sh URL QUEUE N DB   # the same, then run the peer consumer with these arguments
#
# The venv lives in .build-venv/ at the repository root (ignored by git, like every .build-* folder), or in
# $SAMEDAY_BENCH_VENV. Safe to run again: an existing venv that imports pika is kept as it is. On Debian the venv
# needs python3-venv (scripts/install-deps.sh installs it).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
venv="${SAMEDAY_BENCH_VENV:-$root/.build-venv}"
python="${PYTHON:-python3}"
pika_requirement='pika>=1.3,<2'

if ! "$venv/bin/python" -c 'import pika' >/dev/null 2>&1; then
  echo "peer.sh: creating $venv with $pika_requirement" >&2
  "$python" -m venv "$venv" >&2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$pika_requirement" >&2
  "$venv/bin/python" -c 'import pika' >&2
fi

if [ "$#" -eq 0 ]; then
  echo "$venv/bin/python"
else
  exec "$venv/bin/python" "$root/scripts/bench/peer_consumer.py" "$@"
fi
