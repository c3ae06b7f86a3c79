"""Export a trained TSM to Paddle Inference and ONNX, checked against the training model.

    python tools/export_model.py -c CONFIG -p WEIGHTS -o OUTDIR [--save_name NAME]
        [--model_format json|pdmodel] [--label_list FILE] [--online] [--no_onnx]
        [--int8 CALIB_VIDEOS [--calib_clips 32] [--int8_min_agreement A]] [--override KEY=VALUE ...]

A thin shell over paddlevideo.deploy.cli.export_main (see `--help` and docs/deploy.md).
"""
import os
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

from paddlevideo.deploy.cli import export_main  # noqa: E402  (the path must be set first)


def main(argv=None):
    return export_main(argv)


if __name__ == "__main__":
    sys.exit(main())
