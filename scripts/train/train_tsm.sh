#!/usr/bin/env bash
# Train TSM (8 segments x 224 by default) on every visible GPU through Paddle's launcher, or on
# the CPU (one process, all cores) when there is no GPU.
#
#   scripts/train/train_tsm.sh [CONFIG] [main.py flags...]
#   scripts/train/train_tsm.sh configs/recognition/tsm/tsm_ucf101_videos.yaml -o DATASET.batch_size=8
#   CUDA_VISIBLE_DEVICES=0,1 scripts/train/train_tsm.sh            # two GPUs
#
# --validate is added unless NO_VALIDATE=1. PY chooses the python (default: .venv's, else python3).
# Multi-node: run the launcher yourself (docs/training.md, "Several machines").
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ -z "${PY:-}" ]; then
  PY=python3
  [ -x .venv/bin/python ] && PY=.venv/bin/python    # made by scripts/quickstart.sh or test.sh
fi
CONFIG=configs/recognition/tsm/tsm_k400_videos.yaml
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then CONFIG=$1; shift; fi
[ -f "$CONFIG" ] || { echo "error: config $CONFIG not found" >&2; exit 1; }

# Check the data lists before starting (with the same -o overrides), and say how to make them.
"$PY" - "$CONFIG" "$@" <<'PYEOF'
import os, sys
sys.path.insert(0, os.getcwd())
from paddlevideo.utils.config import ConfigError, get_config
config, args = sys.argv[1], sys.argv[2:]
overrides = [args[i + 1] for i, a in enumerate(args[:-1]) if a in ("-o", "--override")]
try:
    cfg = get_config(config, overrides)
except ConfigError as e:
    sys.exit(f"error: {e}")
modes = ["train", "valid"] if os.environ.get("NO_VALIDATE") != "1" else ["train"]
missing = [(m, cfg.DATASET[m].file_path) for m in modes
           if m in cfg.DATASET and not os.path.isfile(cfg.DATASET[m].file_path)]
if missing:
    lines = "\n".join(f"  DATASET.{m}.file_path: {p}" for m, p in missing)
    text = " ".join(p for _, p in missing)
    if "demo" in text:
        how = "python data/make_demo.py   (seconds, no network)"
    elif "ucf101" in text:
        how = ("download UCF101 and its split files, then write the lists as described in "
               "docs/data.md (UCF101 section)")
    elif "k400" in text:
        how = ("download Kinetics-400 and write the lists as described in docs/data.md "
               "(Kinetics-400 section)")
    else:
        how = "write the lists as described in docs/data.md (one 'path label' line per video)"
    sys.exit(f"error: the data lists of {config} do not exist:\n{lines}\nTo prepare them: {how}\n"
             f"or point the config at your own lists with -o DATASET.train.file_path=...")
PYEOF

VALIDATE=--validate
[ "${NO_VALIDATE:-0}" = 1 ] && VALIDATE=
NGPU=0
if command -v nvidia-smi >/dev/null 2>&1; then
  NGPU=$(nvidia-smi -L 2>/dev/null | wc -l)
  if [ -n "${CUDA_VISIBLE_DEVICES:-}" ]; then
    NGPU=$(echo "$CUDA_VISIBLE_DEVICES" | tr ',' '\n' | grep -c .)
  fi
fi
if [ "$NGPU" -gt 0 ] && "$PY" -c "import paddle,sys; sys.exit(0 if paddle.device.is_compiled_with_cuda() else 1)" 2>/dev/null; then
  GPUS=$(seq -s, 0 $((NGPU - 1)))
  echo "training on $NGPU GPU(s): $GPUS"
  exec "$PY" -m paddle.distributed.launch --gpus "$GPUS" --log_dir "${LOG_DIR:-output/launch_logs}" \
    tools/main.py -c "$CONFIG" $VALIDATE "$@"
fi
echo "no GPU found (or Paddle without CUDA): training on the CPU with all cores"
exec "$PY" tools/main.py -c "$CONFIG" $VALIDATE "$@"
