#!/usr/bin/env bash
# Run the test suite: create (or reuse) the virtual environment .venv, install the requirements
# when they changed, then run pytest. Extra arguments go to pytest.
#   bash scripts/test.sh                 # everything
#   bash scripts/test.sh tests/modeling  # one folder
set -euo pipefail
cd "$(dirname "$0")/.."
WITH_TESTS=1 source scripts/env.sh

set +e
"$PY" -m pytest "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: that is a failure, not a pass" >&2
  exit 1
fi
exit "$status"
