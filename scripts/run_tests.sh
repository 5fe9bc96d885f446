#!/usr/bin/env bash
# The test suite (pytest; see pytest.ini) with the project's Python, as scripts/setup.sh set it up.
# Arguments go to pytest, e.g. `bash scripts/run_tests.sh -m slow` or `... tests/test_builder.py`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/environment.sh
# Test files run in PYTEST_WORKERS processes (pytest-xdist; a file's tests stay together, so its
# fixtures are made once): much of the suite waits on tool processes and TensorFlow start-ups,
# which two workers overlap on two cores. Each worker loads TensorFlow, so more cost memory for
# little gain. PYTEST_WORKERS=0 runs everything in this process.
workers="${PYTEST_WORKERS:-2}"
if [ "$workers" != 0 ]; then
  set -- -n "$workers" --dist loadfile "$@"
fi
exec python3 -m pytest "$@"
