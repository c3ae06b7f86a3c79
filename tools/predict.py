"""Predict class names for videos and frame folders with an exported TSM.

    python tools/predict.py -i VIDEO|FOLDER|GLOB|LIST --model_dir OUTDIR [--top_k 5] [--output r.jsonl]
    python tools/predict.py -c CONFIG -i VIDEO --model_file M.json --params_file M.pdiparams
    python tools/predict.py -w TSM_k400 -i VIDEO        (a registered name: exported once, cached)

A thin shell over paddlevideo.deploy.cli.predict_main (see `--help` and docs/deploy.md).
"""
import os
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

from paddlevideo.deploy.cli import predict_main  # noqa: E402  (the path must be set first)

if __name__ == "__main__":
    sys.exit(predict_main())
