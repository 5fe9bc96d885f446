#!/usr/bin/env bash
# The test suite (pytest; see pytest.ini) with the project's Python, as scripts/setup.sh set it up.
# Arguments go to pytest, e.g. `bash scripts/run_tests.sh -m slow` or `... tests/test_builder.py`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/environment.sh
exec python3 -m pytest "$@"
