"""Export a trained TSM to a Paddle Inference model, checked against the training model.

    python tools/export_model.py -c CONFIG -p WEIGHTS -o OUTDIR [--save_name NAME]
        [--model_format json|pdmodel] [--label_list FILE] [--online] [--onnx]
        [--int8 CALIB_VIDEOS [--calib_clips 32] [--int8_min_agreement A]]
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("-c", "--config", required=True, help="training config (YAML)")
    p.add_argument("-p", "--pretrained", "-w", "--weights", dest="weights", default=None,
                   help="weights: our checkpoint or a PaddleVideo .pdparams")
    p.add_argument("-o", "--output_path", default="./inference", help="output folder")
    p.add_argument("--save_name", default=None, help="file stem (default: the config's model_name)")
    p.add_argument("--model_format", choices=["json", "pdmodel"], default="json",
                   help="json: Paddle 3 PIR program (default); pdmodel: legacy program")
    p.add_argument("--label_list", default=None, help="class names, 'INDEX NAME' per line")
    p.add_argument("--online", action="store_true",
                   help="also export the per-frame online step (unidirectional models)")
    p.add_argument("--onnx", action="store_true", help="also convert to NAME.onnx (paddle2onnx)")
    p.add_argument("--int8", default=None, metavar="CALIB",
                   help="also write NAME.int8.onnx (implies --onnx): ONNX Runtime post-training "
                        "quantization calibrated on CALIB (a video folder or list file), checked "
                        "against fp32 and refused when top-1 agreement is too low")
    p.add_argument("--calib_clips", type=int, default=32,
                   help="calibration clips read from CALIB (default 32, at least 8)")
    p.add_argument("--int8_min_agreement", type=float, default=None,
                   help="required top-1 agreement with fp32 on the calibration clips (default "
                        "0.99, allowing one disagreement when there are fewer than 100 clips)")
    p.add_argument("--override", nargs="*", default=[], metavar="KEY=VALUE",
                   help="config overrides, e.g. MODEL.backbone.num_seg=16")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    # The program format is fixed when Paddle starts, so set it before importing it.
    os.environ["FLAGS_enable_pir_api"] = "0" if args.model_format == "pdmodel" else "1"
    from paddlevideo.deploy.cli import run_export
    return run_export(args)


if __name__ == "__main__":
    sys.exit(main())
