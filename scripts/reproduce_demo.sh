#!/usr/bin/env bash
# TSN vs TSM (residual and in-place shift) vs online TSM on the demo set, 3 seeds each, same budget.
# Writes output/reproduce_demo/results.md (+ .json) and val_accuracy.png. Finished runs are reused.
#   bash scripts/reproduce_demo.sh [--seeds 0 1 2] [--variants tsn tsm tsm_inplace online]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
[ -f data/demo/test.list ] || "$PY" data/make_demo.py --out data/demo
"$PY" scripts/reproduce_demo.py "$@"
