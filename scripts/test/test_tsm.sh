#!/usr/bin/env bash
# Evaluate TSM weights: top-1, top-5, mean class accuracy, failed videos, protocol; writes
# test_results.json, predictions.jsonl and confusion_matrix.png to
# <output_dir>/test_<weights>__<list>__<protocol>/ (see docs/evaluation.md).
#
#   scripts/test/test_tsm.sh WEIGHTS [CONFIG] [main.py flags...]
#   scripts/test/test_tsm.sh output/tsm_k400_videos/TSM_best.pdparams
#   scripts/test/test_tsm.sh TSM_k400 configs/recognition/tsm/tsm_k400_videos.yaml
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ -z "${PY:-}" ]; then
  PY=python3
  [ -x .venv/bin/python ] && PY=.venv/bin/python    # made by scripts/quickstart.sh or test.sh
fi
if [ $# -lt 1 ] || [ "$1" = -h ] || [ "$1" = --help ]; then
  sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'
  exit 1
fi
WEIGHTS=$1; shift
CONFIG=configs/recognition/tsm/tsm_k400_videos.yaml
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then CONFIG=$1; shift; fi
[ -f "$CONFIG" ] || { echo "error: config $CONFIG not found" >&2; exit 1; }
exec "$PY" tools/main.py --test -c "$CONFIG" -w "$WEIGHTS" "$@"
