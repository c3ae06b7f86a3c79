#!/usr/bin/env bash
# The main job end to end on the embedded demo set, with no download:
#   set up the virtual environment, generate the demo videos, train TSM (ResNet-18, 8 segments,
#   32 px) on the CPU, test it, export it to Paddle Inference, and predict on a few videos with
#   label names. 10-15 minutes on 2 CPU cores (13 min 2 s measured from a fresh clone, install
#   included). Run it again and it reuses what it made (14 s).
#
#   bash scripts/quickstart.sh                 # everything
#   FRESH=1 bash scripts/quickstart.sh         # train again from scratch
#   bash scripts/quickstart.sh -o epochs=20    # -o KEY=VALUE overrides of the demo config
#   PY=python bash scripts/quickstart.sh       # use an environment you manage, as it is
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS

CONFIG=configs/recognition/tsm/tsm_demo.yaml
OVERRIDES=("$@")

step() { printf '\n== %s\n' "$*"; }

step "1/6 environment (${PY:-.venv})"
source scripts/env.sh

# Paths and epochs come from the config with the overrides, so the steps agree with main.py.
settings=$("$PY" - "$CONFIG" "$@" <<'PYEOF'
import os, shlex, sys
sys.path.insert(0, os.getcwd())
from paddlevideo.utils import quiet
quiet.install()                      # before paddle loads: its import-time notices stay off
from paddlevideo.tasks.common import output_dir_of
from paddlevideo.utils.config import ConfigError, get_config
args = sys.argv[2:]
if len(args) % 2 or any(a not in ("-o", "--override") for a in args[::2]):
    sys.exit("error: scripts/quickstart.sh takes only -o KEY=VALUE overrides of the demo config")
try:
    cfg = get_config(sys.argv[1], args[1::2])
except ConfigError as e:
    sys.exit(f"error: {e}")
test = cfg.DATASET.test
values = {"DATA": os.path.dirname(test.file_path), "TEST_LIST": test.file_path,
          "PREFIX": test.get("data_prefix") or "", "OUT": output_dir_of(cfg),
          "NAME": cfg.model_name, "EPOCHS": int(cfg.epochs)}
print("\n".join(f"{k}={shlex.quote(str(v))}" for k, v in values.items()))
PYEOF
)
eval "$settings"
WEIGHTS=$OUT/${NAME}_best.pdparams
EXPORT=$OUT/inference

step "2/6 demo data ($DATA)"
if [ -f "$TEST_LIST" ] && [ -f "$DATA/label_list.txt" ]; then
  echo "reusing $DATA ($(wc -l < "$DATA/train.list") train, $(wc -l < "$DATA/val.list") val, $(wc -l < "$TEST_LIST") test videos)"
else
  "$PY" data/make_demo.py --out "$DATA"
fi

step "3/6 train TSM ($CONFIG)"
if [ "${FRESH:-0}" = 1 ]; then rm -rf "$OUT"; fi
last=$(printf '%s/%s_epoch_%05d.pdparams' "$OUT" "$NAME" "$EPOCHS")
if [ -f "$last" ] && [ -f "$WEIGHTS" ]; then
  echo "reusing the trained model in $OUT (FRESH=1 to train again)"
else
  # --resume continues an interrupted run from its last checkpoint, or starts a new one.
  "$PY" tools/main.py -c "$CONFIG" --validate --resume "${OVERRIDES[@]}"
fi

step "4/6 test ($WEIGHTS)"
"$PY" tools/main.py --test -c "$CONFIG" -w "$WEIGHTS" "${OVERRIDES[@]}" 2>&1 | tee "$OUT/quickstart_test.log"

step "5/6 export to Paddle Inference ($EXPORT)"
onnx=""
if "$PY" -c "import paddle2onnx, onnxruntime" 2>/dev/null; then onnx="--onnx"; fi
# export_model.py's -o is the output folder; the config overrides go to its --override.
values=()
for ((i = 1; i < ${#OVERRIDES[@]}; i += 2)); do values+=("${OVERRIDES[i]}"); done
"$PY" tools/export_model.py -c "$CONFIG" -p "$WEIGHTS" -o "$EXPORT" \
  --label_list "$DATA/label_list.txt" $onnx ${values[@]+--override "${values[@]}"}

step "6/6 predict on demo test videos"
awk -v d="$PREFIX" 'NR % 25 == 1 {print (d == "" ? $1 : d "/" $1)}' "$TEST_LIST" > "$OUT/predict_demo.list"   # 4 classes
rm -f "$OUT/predict_demo.jsonl"   # predict resumes an --output of the same model; this is a new run
"$PY" tools/predict.py -i "$OUT/predict_demo.list" --model_dir "$EXPORT" --top_k 2 \
  --output "$OUT/predict_demo.jsonl"
echo "(true classes: $(awk 'NR % 25 == 1 {print $2}' "$TEST_LIST" | while read -r i; do
  awk -v i="$i" '$1 == i {print $2}' "$DATA/label_list.txt"; done | paste -sd, -))"

acc=$(grep -o 'avg_acc1=[0-9.]*' "$OUT/quickstart_test.log" | tail -n 1 | cut -d= -f2)
tested=$(sed -n 's/.*\[TEST\] wrote .* to //p' "$OUT/quickstart_test.log" | tail -n 1)
cat <<EOF

== Done in $(( (SECONDS - started) / 60 )) min $(( (SECONDS - started) % 60 )) s
Test top-1 on the demo set: ${acc:-see $OUT/quickstart_test.log} (10 classes in 5 time-reversed twins; chance is 0.10)
Outputs:
  $OUT/
      checkpoints, logs, VisualDL scalars (visualdl --logdir $OUT/vdl)
  ${tested:-$OUT/test_${NAME}_best__*}/
      the test's scores (test_results.json), per-video predictions, confusion_matrix.png
  $EXPORT/
      the exported model, its inference config and label names
  $OUT/predict_demo.jsonl
      predict.py's output, with label names
Next:
  - TSN on the same data cannot tell the twins apart: bash scripts/reproduce_demo.sh
  - your own videos: docs/data.md; training on Kinetics/UCF101: docs/training.md
  - predict any video: $PY tools/predict.py -i VIDEO --model_dir $EXPORT
  - run the online (frame-by-frame) TSM: docs/deploy.md
EOF
