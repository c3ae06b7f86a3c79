"""Predict class names for videos with an exported TSM.

    python tools/predict.py -i VIDEO|FOLDER|LIST --model_dir OUTDIR [--top_k 5] [--output r.jsonl]
    python tools/predict.py -c CONFIG -i VIDEO --model_file M.json --params_file M.pdiparams
"""
import os
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

if __name__ == "__main__":
    from paddlevideo.deploy.cli import predict_main
    sys.exit(predict_main())
