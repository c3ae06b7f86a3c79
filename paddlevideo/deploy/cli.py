"""Command-line front ends of tools/export_model.py, tools/predict.py, tools/online_predict.py.

Each prints DeployError / ConfigError / WeightsError messages as one line and exits non-zero,
never with a Paddle traceback.
"""
import argparse
import json
import logging
import os
import sys

from .errors import DeployError

__all__ = ["run_export", "predict_main", "online_main"]

logger = logging.getLogger("paddlevideo")


def _user_errors():
    from ..modeling.weights import WeightsError
    from ..utils.config import ConfigError
    return (DeployError, ConfigError, WeightsError, FileNotFoundError)


def _fail(e):
    print(f"error: {e}", file=sys.stderr)
    return 2


def _setup_logging():
    logging.basicConfig(level=logging.INFO, format="%(message)s")


def run_export(args):
    """tools/export_model.py after its arguments are parsed (and the program format is set)."""
    _setup_logging()
    try:
        from ..utils.config import get_config
        from .export import export_from_config
        int8 = getattr(args, "int8", None)
        if int8 and not os.path.exists(int8):
            raise DeployError(f"--int8: calibration videos not found: {int8}")
        cfg = get_config(args.config, args.override)
        result = export_from_config(cfg, args.weights, args.output_path, args.save_name,
                                    model_format=args.model_format, label_list=args.label_list)
        print(f"exported {result.model_file} and {result.params_file}")
        print(f"inference config {result.infer_config}")
        print(f"check: exported logits differ from the dygraph model's by at most "
              f"{result.max_abs_diff:.3g} (logit scale {result.logit_scale:.3g})")
        if args.onnx or int8:
            from .export import read_infer_config
            from .onnx_export import export_onnx
            shape = read_infer_config(result.infer_config)["input"]["shape"]
            path, diff = export_onnx(result.model_file, result.params_file, input_shape=shape)
            print(f"onnx {path}" + (f" (onnxruntime vs Paddle: max abs diff {diff:.3g})"
                                    if diff is not None else " (onnxruntime absent: unchecked)"))
            if int8:
                _export_int8(args, path, result.infer_config)
        _remove_stale_int8(int8, result.model_file)
        if args.online:
            from ..modeling.builder import build_model
            from ..modeling.weights import load_weights
            from .export import read_infer_config
            from .online import export_online
            info = read_infer_config(result.infer_config)
            model = build_model(cfg.MODEL, load_pretrained=False)
            if args.weights:
                load_weights(model, args.weights, require_head=True)
            name = os.path.basename(result.infer_config)[:-len(".infer.yaml")] + "_online"
            out = export_online(model, os.path.join(args.output_path, "online"), name,
                                info["target_size"],
                                {"PIPELINE": info.get("PIPELINE"), "labels": info.get("labels")})
            print(f"online step {out['model_file']} (checked against the dygraph step)")
    except _user_errors() as e:
        return _fail(e)
    return 0


def _export_int8(args, onnx_file, infer_config):
    """Calibrate, quantize and check NAME.int8.onnx; record the check in NAME.infer.yaml."""
    from .export import read_infer_config
    from .quant import Int8Refused, calibration_clips, quantize_onnx, record_int8_check
    info = read_infer_config(infer_config)
    clips = calibration_clips(args.int8, info.get("PIPELINE"), getattr(args, "calib_clips", 32),
                              num_seg=info.get("num_seg"))
    print(f"int8: calibrating on {len(clips)} clip(s) from {args.int8}")
    try:
        record = quantize_onnx(onnx_file, clips,
                               min_agreement=getattr(args, "int8_min_agreement", None))
    except Int8Refused as e:
        record_int8_check(infer_config, e.record)
        raise
    record["calibration_source"] = os.path.abspath(args.int8)
    record_int8_check(infer_config, record)
    speed = (f"; batch 1: {record['int8_ms']:.1f} ms vs fp32 {record['fp32_ms']:.1f} ms "
             f"(x{record['speedup']:.2f})" if "speedup" in record else "")
    print(f"int8 {os.path.join(os.path.dirname(onnx_file), record['file'])}: top-1 agreement "
          f"with fp32 {record['agree']}/{record['clips']} (required {record['required']:.3f}), "
          f"max logit difference {record['rel_diff']:.1%} of the logit scale{speed}")


def _remove_stale_int8(int8, model_file):
    """A fresh export without --int8 must not leave an old NAME.int8.onnx beside it."""
    from .quant import int8_path
    stale = int8_path(model_file)
    if not int8 and os.path.isfile(stale):
        os.remove(stale)
        print(f"removed the old {stale} (not re-quantized; pass --int8 CALIB to make it)")


def _bool(text):
    if isinstance(text, bool):
        return text
    if text.lower() in ("1", "true", "yes", "y", "on"):
        return True
    if text.lower() in ("0", "false", "no", "n", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected True or False, got '{text}'")


def predict_parser():
    p = argparse.ArgumentParser(description="Predict class names for videos with an exported TSM.")
    p.add_argument("-i", "--input_file", "--input", required=True,
                   help="a video, a folder of videos, or a list file (one path per line)")
    p.add_argument("--model_dir", default=None, help="export_model.py's output folder")
    p.add_argument("--model_file", default=None, help="NAME.json / NAME.pdmodel (PaddleVideo form)")
    p.add_argument("--params_file", default=None, help="NAME.pdiparams (PaddleVideo form)")
    p.add_argument("--save_name", default=None, help="which model when model_dir holds several")
    p.add_argument("-c", "--config", default=None,
                   help="training config: its PIPELINE.test when the model has no NAME.infer.yaml")
    p.add_argument("--label_list", default=None, help="class names ('INDEX NAME' per line)")
    p.add_argument("--top_k", type=int, default=5)
    p.add_argument("--batch_size", type=int, default=1)
    p.add_argument("--output", default=None, help="write one JSON line per video here")
    p.add_argument("--use_gpu", type=_bool, default=False)
    p.add_argument("--use_tensorrt", type=_bool, default=False)
    p.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16", "int8"], default="auto",
                   help="auto: ONNX Runtime fp32 when NAME.onnx exists (int8 only when its export "
                        "check passed and it measured faster, see docs/deploy.md), else bf16 on "
                        "a CPU with AVX512-BF16/AMX, else fp32 (GPU: fp32). int8: "
                        "NAME.int8.onnx from export_model.py --int8")
    p.add_argument("--enable_mkldnn", type=_bool, default=True,
                   help="accepted for PaddleVideo commands; oneDNN is always on for CPU")
    p.add_argument("--cpu_threads", type=int, default=None, help="default: all cores")
    p.add_argument("--backend", choices=["auto", "paddle", "onnxruntime"], default="auto",
                   help="auto: ONNX Runtime on CPU when NAME.onnx exists and onnxruntime is "
                        "installed (fastest measured), else Paddle Inference")
    p.add_argument("--allow_short", action="store_true",
                   help="predict videos shorter than num_seg (repeating frames)")
    p.add_argument("--benchmark", type=_bool, nargs="?", const=True, default=False,
                   help="print median preprocess / inference / postprocess times")
    return p


def predict_main(argv=None):
    args = predict_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    try:
        from .engine import InferenceEngine
        from .predictor import VideoPredictor, collect_inputs, format_result, write_jsonl
        if not args.enable_mkldnn:
            logger.warning("--enable_mkldnn=False is ignored: oneDNN is the fast CPU path.")
        pipeline = None
        if args.config:
            from ..utils.config import get_config, to_plain
            cfg = get_config(args.config)
            pipeline = to_plain((cfg.get("PIPELINE") or {}).get("test") or {}) or None
        device = "gpu" if args.use_gpu else "cpu"
        precision = None if args.precision == "auto" else args.precision
        if args.backend == "auto":
            args.backend, precision = _auto_backend(args, device, precision)
        engine = InferenceEngine(args.model_dir, args.model_file, args.params_file, args.save_name,
                                 device=device, precision=precision, cpu_threads=args.cpu_threads,
                                 use_tensorrt=args.use_tensorrt, backend=args.backend,
                                 max_batch_size=max(args.batch_size, 1))
        predictor = VideoPredictor(engine, pipeline=pipeline, labels=args.label_list,
                                   top_k=args.top_k, batch_size=args.batch_size,
                                   allow_short=args.allow_short)
        inputs = collect_inputs(args.input_file)
    except _user_errors() as e:
        return _fail(e)
    print(f"model {engine.model_file} ({engine.device}, {engine.precision}, "
          f"{engine.cpu_threads} threads); {len(inputs)} video(s)")
    results, failed = [], 0
    for r in predictor(inputs):
        results.append(r)
        failed += "error" in r
        print(format_result(r), file=sys.stderr if "error" in r else sys.stdout, flush=True)
    if args.output:
        write_jsonl(results, args.output)
        print(f"wrote {len(results)} result(s) to {args.output}")
    if args.benchmark:
        t = predictor.timing_summary()
        fmt = lambda v: "n/a" if v is None else f"{v:.1f} ms"
        print(f"benchmark (median): preprocess {fmt(t['preprocess'])} per video, inference "
              f"{fmt(t['inference'])} per batch of {args.batch_size}, postprocess "
              f"{fmt(t['postprocess'])} per batch")
    if failed:
        print(f"{failed} of {len(results)} video(s) failed", file=sys.stderr)
        return 1
    return 0


def _auto_backend(args, device, precision):
    """(backend, precision) for `--backend auto`: ONNX Runtime on CPU when the export has the ONNX
    file the precision needs (NAME.int8.onnx for int8; for `auto` precision only under
    quant.int8_auto_ok's rule, else NAME.onnx in fp32), otherwise Paddle Inference."""
    import importlib.util
    if (device != "cpu" or precision not in (None, "fp32", "int8")
            or importlib.util.find_spec("onnxruntime") is None):
        return "paddle", precision
    from .engine import resolve_model
    from .quant import int8_auto_ok, int8_path
    try:
        model_file, _, info = resolve_model(args.model_dir, args.model_file, args.params_file,
                                            args.save_name)
    except DeployError:
        return "paddle", precision          # the engine reports the problem
    has_int8 = os.path.isfile(int8_path(model_file))
    if precision == "int8":
        return ("onnxruntime" if has_int8 else "paddle"), precision
    if precision is None and has_int8 and int8_auto_ok(info):
        return "onnxruntime", "int8"
    if os.path.isfile(os.path.splitext(model_file)[0] + ".onnx"):
        return "onnxruntime", "fp32"
    return "paddle", precision


def online_parser():
    p = argparse.ArgumentParser(description="Online TSM, frame by frame.")
    p.add_argument("-i", "--input", required=True, help="video file, camera index (0) or stream URL")
    p.add_argument("--model_dir", default=None, help="exported online step (export_model.py --online)")
    p.add_argument("-c", "--config", default=None, help="or: a unidirectional training config ...")
    p.add_argument("-p", "--weights", default=None, help="... and its weights (runs in dygraph)")
    p.add_argument("--label_list", default=None)
    p.add_argument("--window", type=int, default=None, help="frames averaged (default num_seg)")
    p.add_argument("--frame_step", type=int, default=1, help="predict every n-th frame")
    p.add_argument("--max_frames", type=int, default=None)
    p.add_argument("--precision", choices=["auto", "fp32", "bf16"], default="auto")
    p.add_argument("--cpu_threads", type=int, default=None)
    p.add_argument("--output", default=None, help="write one JSON line per frame here")
    p.add_argument("--quiet", action="store_true", help="no per-frame lines")
    return p


def online_main(argv=None):
    args = online_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    import numpy as np
    try:
        from .labels import load_label_list
        from .online import OnlineRecognizer, OnlineStepEngine, frame_preprocessor
        if args.model_dir:
            step = OnlineStepEngine(args.model_dir, precision=None if args.precision == "auto"
                                    else args.precision, cpu_threads=args.cpu_threads)
            info = step.info or {}
            pipeline, labels = info.get("PIPELINE"), info.get("labels")
            size, num_seg = info["target_size"], info.get("num_seg", 8)
        elif args.config:
            from ..modeling.builder import build_model
            from ..modeling.weights import load_weights
            from ..utils.config import get_config, to_plain
            from .export import pipeline_input_size
            cfg = get_config(args.config)
            step = build_model(cfg.MODEL, load_pretrained=False)
            if args.weights:
                load_weights(step, args.weights, require_head=True)
            pipeline = to_plain(cfg.PIPELINE.test)
            num_seg, size = pipeline_input_size(pipeline)
            labels = None
        else:
            raise DeployError("give --model_dir (an exported online step) or -c CONFIG [-p WEIGHTS].")
        if args.label_list:
            labels = load_label_list(args.label_list)
        runner = OnlineRecognizer(step, frame_preprocessor(pipeline), labels,
                                  window=args.window or num_seg, target_size=size)
        records = runner.run(args.input, args.frame_step, args.max_frames, args.output,
                             echo=None if args.quiet else print)
    except _user_errors() as e:
        return _fail(e)
    lat = [r["latency_ms"] for r in records]
    if lat:
        print(f"{len(records)} frames; latency per frame: median {np.median(lat):.1f} ms, "
              f"p90 {np.percentile(lat, 90):.1f} ms; last prediction: {records[-1]['label']}")
    return 0
