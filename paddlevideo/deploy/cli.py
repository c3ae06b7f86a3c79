"""Command lines of tools/export_model.py, tools/predict.py and tools/online_predict.py.

One grammar, PaddleVideo's where it has one: -c CONFIG, -w/-p WEIGHTS, --override KEY=VALUE
(repeatable; predict and online_predict also take main.py's -o KEY=VALUE, export keeps
PaddleVideo's -o OUTPUT), -i INPUT (repeatable), --label_list. Every problem a user can fix is one
line `error: ...` and exit status 1, as in main.py; argparse's usage errors exit 2.
"""
import argparse
import logging
import os
import re
import signal
import sys

from ..utils import quiet
from .errors import DeployError

__all__ = ["export_parser", "export_main", "run_export", "predict_parser", "predict_main",
           "online_parser", "online_main", "serve_parser", "serve_main"]

logger = logging.getLogger("paddlevideo")

_OVERRIDE_LIKE = re.compile(r"^[A-Za-z_][\w]*(\.[\w\[\]]+)*=")


def _user_errors():
    from ..modeling.weights import WeightsError
    from ..utils.config import ConfigError
    from ..utils.download import DownloadError
    return (DeployError, ConfigError, WeightsError, DownloadError)


def _fail(error):
    print(f"error: {error}", file=sys.stderr)
    return 1


def _load_config(path, overrides):
    """The config with its overrides, through the same loading and checks as main.py."""
    from ..config_check import load_and_check_config
    return load_and_check_config(path, list(overrides or []))


def _override(text):
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"'{text}' is not KEY=VALUE (e.g. "
                                         f"MODEL.backbone.num_seg=16)")
    return text


def _output_folder(text):
    """export_model.py's -o is PaddleVideo's output folder; an override typed there would make a
    folder named after it, so it is refused before anything is written."""
    if _OVERRIDE_LIKE.match(text):
        raise argparse.ArgumentTypeError(
            f"'{text}' looks like a config override, but export_model.py's -o is the output "
            f"folder (as in PaddleVideo); pass overrides with --override {text}")
    return text


def _file_name(text):
    """export's --save_name is the stem of the files it writes: a name, never a path (as the
    config's model_name, its default)."""
    from ..utils.typecheck import FileName
    if text not in FileName():
        raise argparse.ArgumentTypeError(f"{text!r} must be {FileName()!r}")
    return text


def _bool(text):
    if isinstance(text, bool):
        return text
    if text.lower() in ("1", "true", "yes", "y", "on", "t"):
        return True
    if text.lower() in ("0", "false", "no", "n", "off", "f"):
        return False
    raise argparse.ArgumentTypeError(f"expected True or False, got '{text}'")


class _Once(argparse.Action):
    """A flag with one value: given twice it is an error, where argparse would silently keep the
    last one (two -c or --model_dir on one line would run something else than the user read)."""

    def __call__(self, parser, namespace, values, option_string=None):
        seen = namespace.__dict__.setdefault("_given_once", set())
        if self.dest in seen:
            parser.error(f"{'/'.join(self.option_strings)} was given twice; it takes one value")
        seen.add(self.dest)
        setattr(namespace, self.dest, values)


class _Parser(argparse.ArgumentParser):
    """ArgumentParser whose single-value options refuse to be given twice."""

    def add_argument(self, *args, **kwargs):
        if args and args[0].startswith("-") and "action" not in kwargs and "nargs" not in kwargs:
            kwargs["action"] = _Once
        return super().add_argument(*args, **kwargs)

    def parse_args(self, args=None, namespace=None):
        parsed = super().parse_args(args, namespace)
        parsed.__dict__.pop("_given_once", None)
        return parsed


def _add_overrides(p, short_o):
    flags = ("-o", "--override") if short_o else ("--override",)
    p.add_argument(*flags, dest="override", action="extend", nargs="+", type=_override,
                   default=[], metavar="KEY=VALUE",
                   help="config override, e.g. MODEL.backbone.num_seg=16 (repeatable; several "
                        "may follow one flag)")


def _setup_logging(level=logging.INFO):
    logging.basicConfig(level=level, format="%(message)s")


# the same grammar and error handling for the timeline, explain and extract_features commands
# (deploy/vis_cli.py)
Parser, user_errors, fail, load_config = _Parser, _user_errors, _fail, _load_config
add_overrides, setup_logging, bool_arg = _add_overrides, _setup_logging, _bool


# ---- export ---------------------------------------------------------------------------------------
def export_parser():
    p = _Parser(
        prog="export_model.py", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Export a trained TSM to Paddle Inference and ONNX, checked against the "
                    "training model.\n\n"
                    "  python tools/export_model.py -c CONFIG -p WEIGHTS -o OUTDIR [--save_name NAME]\n"
                    "      [--model_format json|pdmodel] [--label_list FILE] [--online] [--no_onnx]\n"
                    "      [--int8 CALIB_VIDEOS [--calib_clips 32] [--int8_min_agreement A]]\n"
                    "      [--override KEY=VALUE ...]")
    p.add_argument("-c", "--config", required=True, help="training config (YAML)")
    p.add_argument("-p", "--pretrained", "-w", "--weights", dest="weights", default=None,
                   help="weights: our checkpoint, a PaddleVideo .pdparams, a URL or a registered "
                        "name (required unless --random_weights)")
    p.add_argument("--random_weights", action="store_true",
                   help="export the untrained model on purpose (benchmarks); its predictions mean "
                        "nothing")
    p.add_argument("-o", "--output_path", default="./inference", type=_output_folder,
                   help="output folder (PaddleVideo's -o); config overrides go to --override")
    p.add_argument("--save_name", default=None, type=_file_name,
                   help="file stem (default: the config's model_name)")
    p.add_argument("--model_format", choices=["json", "pdmodel"], default="json",
                   help="json: Paddle 3 PIR program (default); pdmodel: legacy program")
    p.add_argument("--label_list", default=None,
                   help="class names, 'INDEX NAME' per line (default: the config's "
                        "DATASET.label_list)")
    p.add_argument("--online", action="store_true",
                   help="also export the per-frame online step (unidirectional models)")
    onnx = p.add_mutually_exclusive_group()
    onnx.add_argument("--onnx", dest="onnx", action="store_true", default=None,
                      help="write the checked NAME.onnx, or fail (default: written when "
                           "paddle2onnx and onnxruntime are installed)")
    onnx.add_argument("--no_onnx", dest="onnx", action="store_false",
                      help="skip the ONNX model (predict then runs Paddle Inference)")
    p.add_argument("--int8", default=None, metavar="CALIB",
                   help="also write NAME.int8.onnx: ONNX Runtime post-training quantization "
                        "calibrated on CALIB (videos or frame folders: a folder, glob or list), "
                        "checked against fp32 and refused when top-1 agreement is too low")
    p.add_argument("--calib_clips", type=int, default=32,
                   help="calibration clips read from CALIB (default 32, at least 8)")
    p.add_argument("--int8_min_agreement", type=float, default=None,
                   help="required top-1 agreement with fp32 on the calibration clips (default "
                        "0.99, allowing one disagreement when there are fewer than 100 clips)")
    _add_overrides(p, short_o=False)
    return p


def export_main(argv=None):
    """tools/export_model.py: parse, fix the program format before Paddle starts, export."""
    args = export_parser().parse_args(argv)
    if argv is None:                   # run as a program: Paddle's noise off the terminal
        quiet.install()
    os.environ["FLAGS_enable_pir_api"] = "0" if args.model_format == "pdmodel" else "1"
    return run_export(args)


def run_export(args):
    """Export after the arguments are parsed; 0, or 1 with one `error:` line."""
    _setup_logging()
    try:
        from .export import export_from_config, record_check
        from .onnx_export import export_onnx, onnx_available
        from .runtime import INFER_SUFFIX, read_infer_config
        missing = onnx_available()
        if args.int8 and args.onnx is False:
            raise DeployError("--int8 quantizes the ONNX model: drop --no_onnx.")
        if missing and (args.onnx or args.int8):
            raise DeployError(f"--onnx/--int8 need paddle2onnx and onnxruntime "
                              f"(requirements.txt): {missing}.")
        if args.int8 and not os.path.exists(args.int8):
            raise DeployError(f"--int8: calibration videos not found: {args.int8}")
        with_onnx = args.onnx is not False and not missing
        cfg = _load_config(args.config, args.override)
        mode = ((cfg.get("MODEL") or {}).get("backbone") or {}).get("shift_mode")
        if args.online and mode != "unidirectional":
            raise DeployError(f"--online needs a unidirectional model (MODEL.backbone.shift_mode: "
                              f"unidirectional); this config's is {mode or 'bidirectional'}, whose "
                              f"shift reads the next frame, which a stream does not have yet.")
        result = export_from_config(cfg, args.weights, args.output_path, args.save_name,
                                    model_format=args.model_format, label_list=args.label_list,
                                    random_weights=args.random_weights)
        print(f"exported {result.model_file} and {result.params_file}")
        print(f"inference config {result.infer_config}")
        print(f"check: exported logits differ from the dygraph model's by at most "
              f"{result.max_abs_diff:.3g} (logit scale {result.logit_scale:.3g})")
        info = read_infer_config(result.infer_config)
        if with_onnx:
            check = export_onnx(result.model_file, result.params_file, info["input"]["shape"])
            record_check(result.infer_config, "onnx_check", check)
            print(f"onnx {os.path.join(args.output_path, check['file'])} (checked: ONNX Runtime "
                  f"vs Paddle Inference max abs diff {check['max_abs_diff']:.3g})")
            if args.int8:
                _export_int8(args, os.path.join(args.output_path, check["file"]),
                             result.infer_config)
        else:
            print(f"onnx: not written ({'--no_onnx' if args.onnx is False else missing}); "
                  f"predict will run Paddle Inference")
        if args.online:
            from .online import export_online
            name = os.path.basename(result.infer_config)[:-len(INFER_SUFFIX)] + "_online"
            out = export_online(result.model, os.path.join(args.output_path, "online"), name,
                                info["target_size"],
                                {k: info.get(k) for k in ("PIPELINE", "labels", "frames")
                                 if info.get(k) is not None})
            print(f"online step {out['model_file']} (checked against the dygraph step)")
            if with_onnx:
                from .online_onnx import export_online_onnx
                check = export_online_onnx(model_file=out["model_file"],
                                           params_file=out["params_file"])
                record_check(out["infer_config"], "onnx_check", check)
                print(f"online onnx {check['file']} (checked: ONNX Runtime vs Paddle Inference "
                      f"over {check['frames']} frames, max abs diff {check['max_abs_diff']:.3g})")
    except _user_errors() as e:
        return _fail(e)
    return 0


def _export_int8(args, onnx_file, infer_config):
    """Calibrate, quantize and check NAME.int8.onnx; record the check in NAME.infer.yaml."""
    from .export import record_check
    from .quant import Int8Refused, calibration_clips, quantize_onnx
    from .runtime import read_infer_config
    info = read_infer_config(infer_config)
    clips = calibration_clips(args.int8, info.get("PIPELINE"), args.calib_clips,
                              num_seg=info.get("num_seg"), frames=info.get("frames"))
    print(f"int8: calibrating on {len(clips)} clip(s) from {args.int8}")
    try:
        record = quantize_onnx(onnx_file, clips, min_agreement=args.int8_min_agreement)
    except Int8Refused as e:
        record_check(infer_config, "int8_check", e.record)
        raise
    record["calibration_source"] = os.path.abspath(args.int8)
    record_check(infer_config, "int8_check", record)
    speed = (f"; batch 1: {record['int8_ms']:.1f} ms vs fp32 {record['fp32_ms']:.1f} ms "
             f"(x{record['speedup']:.2f})" if "speedup" in record else "")
    print(f"int8 {os.path.join(os.path.dirname(onnx_file), record['file'])}: top-1 agreement "
          f"with fp32 {record['agree']}/{record['clips']} (required {record['required']:.3f}), "
          f"max logit difference {record['rel_diff']:.1%} of the logit scale{speed}")


# ---- predict --------------------------------------------------------------------------------------
def predict_parser():
    p = _Parser(
        prog="predict.py", description="Predict class names for videos and frame folders with an "
                                       "exported TSM.")
    p.add_argument("-i", "--input_file", "--input", dest="input_file", action="extend", nargs="+",
                   required=True, metavar="INPUT",
                   help="videos, frame folders, folders (searched recursively), globs (quote "
                        "them: 'clips/**/*.mp4') or list files (.txt/.list/.csv, one path per "
                        "line, optionally with PaddleVideo's label fields); repeatable")
    p.add_argument("--prefix", default=None,
                   help="folder that relative paths in list files start from (PaddleVideo's "
                        "data_prefix)")
    p.add_argument("--model_dir", default=None, help="export_model.py's output folder")
    p.add_argument("--model_file", default=None, help="NAME.json / NAME.pdmodel (PaddleVideo form)")
    p.add_argument("--params_file", default=None, help="NAME.pdiparams (PaddleVideo form)")
    p.add_argument("--save_name", default=None, help="which model when model_dir holds several")
    p.add_argument("-c", "--config", default=None,
                   help="training config: with -w, the network to export (once, cached); with "
                        "--model_dir, its PIPELINE.test and label list replace the export's")
    p.add_argument("-w", "--weights", "-p", "--pretrained", dest="weights", default=None,
                   help="weights instead of --model_dir: a registered name (e.g. TSM_k400, no -c "
                        "needed), or a checkpoint/URL with -c; exported once into "
                        "$PADDLEVIDEO_HOME/exports and reused")
    _add_overrides(p, short_o=True)
    p.add_argument("--label_list", default=None,
                   help="class names ('INDEX NAME' per line, or package:NAME for a shipped list); "
                        "default: the model's")
    p.add_argument("--top_k", type=int, default=5)
    p.add_argument("-b", "--batch_size", type=int, default=1)
    p.add_argument("--output", default=None,
                   help="write one JSON line per input here, as each is predicted (its folder is "
                        "created); run again with the same --output to continue where it stopped")
    p.add_argument("--use_gpu", type=_bool, default=False)
    p.add_argument("--use_tensorrt", type=_bool, default=False)
    p.add_argument("--backend", choices=["auto", "paddle", "onnxruntime"], default="auto",
                   help="auto: ONNX Runtime on CPU when the export has a checked NAME.onnx "
                        "(fastest measured), else Paddle Inference")
    p.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16", "int8"], default="auto",
                   help="auto: fp32 with ONNX Runtime (int8 only when its export check passed and "
                        "it measured faster, see docs/deploy.md); with Paddle Inference bf16 on "
                        "a CPU with AVX512-BF16/AMX, else fp32 (GPU: fp32). int8: NAME.int8.onnx "
                        "from export_model.py --int8")
    p.add_argument("--enable_mkldnn", type=_bool, default=True,
                   help="accepted for PaddleVideo commands; oneDNN is always on for CPU")
    p.add_argument("--cpu_threads", type=int, default=None, help="default: all cores")
    p.add_argument("--allow_short", action="store_true",
                   help="accepted for older commands: inputs with fewer frames than num_seg are "
                        "always predicted as main.py --test does (frames repeat), with a note")
    p.add_argument("--benchmark", "--enable_benchmark", dest="benchmark", type=_bool, nargs="?",
                   const=True, default=False,
                   help="print median preprocess / inference / postprocess times")
    return p


def predict_main(argv=None):
    args = predict_parser().parse_args(argv)
    if argv is None:
        quiet.install()
    _setup_logging(logging.WARNING)
    try:
        from .api import Predictor
        from .inputs import collect_inputs
        from .predictor import format_result
        from .results_file import ResultsFile, check_output_target
        if args.output:                # refused before the model loads: nothing is written
            check_output_target(args.output)
        if not args.enable_mkldnn:
            logger.warning("--enable_mkldnn=False is ignored: oneDNN is the fast CPU path.")
        predictor = Predictor(args.model_dir, args.config, args.weights, args.override,
                              args.label_list, args.model_file, args.params_file, args.save_name,
                              device="gpu" if args.use_gpu else "cpu", precision=args.precision,
                              backend=args.backend, cpu_threads=args.cpu_threads,
                              use_tensorrt=args.use_tensorrt, top_k=args.top_k,
                              batch_size=args.batch_size, log=lambda m: print(m, flush=True))
        engine = predictor.engine
        print(f"predict: {engine.describe()}", flush=True)
        if engine.note:
            print(f"  (not ONNX Runtime: {engine.note})", flush=True)
        if (engine.info or {}).get("random_weights"):
            print("warning: this model was exported with --random_weights: its predictions mean "
                  "nothing", file=sys.stderr)
        items = collect_inputs(args.input_file, args.prefix, predictor.frames)
        results = ResultsFile(args.output, predictor.model_id) if args.output else None
    except _user_errors() as e:
        return _fail(e)
    try:
        done, failed = _predict_into(predictor, items, results, args.output, format_result)
    except _Interrupted as stop:
        return stop.code
    except DeployError as e:               # the output cannot be written (disk full, ...)
        return _fail(e)
    if results:
        print(f"wrote {done} result(s) to {args.output}")
    if args.benchmark:
        t = predictor.timing_summary()
        fmt = lambda v: "n/a" if v is None else f"{v:.1f} ms"      # noqa: E731
        print(f"benchmark (median): preprocess {fmt(t['preprocess'])} per input, inference "
              f"{fmt(t['inference'])} per batch of {args.batch_size}, postprocess "
              f"{fmt(t['postprocess'])} per batch")
    if failed:
        print(f"{failed} of {done} input(s) failed", file=sys.stderr)
        return 1
    return 0


class _Interrupted(Exception):
    """predict stopped early on purpose: its exit code."""

    def __init__(self, code):
        super().__init__(code)
        self.code = code


def _predict_into(predictor, items, results, output, format_result):
    """Predict `items`, printing each and appending it to `results`; (done, failed). The
    results file is closed however this ends; a close that fails after a write already failed
    does not raise a second time."""
    try:
        total = len(items)
        if results:
            items = [i for i in items if not results.is_done(i)]
            if len(items) < total:
                print(f"continuing {output}: {total - len(items)} of {total} input(s) already "
                      f"predicted there")
            if not items:
                print(f"nothing left to predict: all {total} input(s) are in {output}")
                raise _Interrupted(0)
        print(f"{len(items)} input(s)", flush=True)
        done = failed = 0
        try:
            for record in predictor(items):
                done += 1
                failed += "error" in record
                if results:
                    results.write(record)
                print(format_result(record), file=sys.stderr if "error" in record else sys.stdout,
                      flush=True)
        except KeyboardInterrupt:
            where = (f"; the {done} result(s) so far are in {output}: run the same command to "
                     f"continue" if results else "")
            print(f"interrupted after {done} of {len(items)} input(s){where}", file=sys.stderr)
            raise _Interrupted(130) from None
    finally:
        if results:
            results.close()
    return done, failed


# ---- online ---------------------------------------------------------------------------------------
def online_parser():
    p = _Parser(prog="online_predict.py",
                                description="Online (unidirectional) TSM, frame by frame.")
    p.add_argument("-i", "--input", "--input_file", dest="input", required=True,
                   help="video file, camera index (0) or stream URL")
    p.add_argument("--model_dir", default=None, help="exported online step (export_model.py --online)")
    p.add_argument("-c", "--config", default=None, help="or: a unidirectional training config ...")
    p.add_argument("-p", "--pretrained", "-w", "--weights", dest="weights", default=None,
                   help="... and its weights (runs in dygraph)")
    _add_overrides(p, short_o=True)
    p.add_argument("--label_list", default=None,
                   help="class names (default: the exported step's, or the config's "
                        "DATASET.label_list)")
    p.add_argument("--window", type=int, default=None, help="frames averaged (default num_seg)")
    p.add_argument("--frame_step", type=int, default=1, help="predict every n-th frame")
    p.add_argument("--max_frames", type=int, default=None)
    p.add_argument("--precision", choices=["auto", "fp32", "bf16"], default="auto")
    p.add_argument("--cpu_threads", type=int, default=None)
    p.add_argument("--output", default=None, help="write one JSON line per frame here")
    p.add_argument("--quiet", action="store_true", help="no per-frame lines")
    rules = p.add_argument_group(
        "the original gesture demo's output rules (docs/deploy.md, 'Online TSM')")
    rules.add_argument("--demo_rules", action="store_true",
                       help="all of the demo's rules with its settings, for a Jester model: "
                            "--logit_window 12 --refine --hide its 5 hidden gestures")
    rules.add_argument("--logit_window", type=int, default=None,
                       help="show the argmax of the mean of the last N frames' logits (the demo: "
                            "12) instead of the mean probability over --window")
    rules.add_argument("--refine", action=argparse.BooleanOptionalAction, default=None,
                       help="the demo's history smoothing: a label shows once the one before it "
                            "held two frames; 'Doing other things' shows as 'No gesture'")
    rules.add_argument("--hide", default=None, metavar="NAME[,NAME]",
                       help="classes never shown (the previous label stays); --hide '' hides none")
    p.add_argument("--display", choices=["auto", "on", "off"], default="auto",
                   help="show the video with its label (auto: when a display is there)")
    p.add_argument("--annotated", default=None, metavar="OUT.mp4",
                   help="write the video with the label drawn on each frame here")
    return p


def online_main(argv=None):
    args = online_parser().parse_args(argv)
    if argv is None:
        quiet.install()
    _setup_logging(logging.WARNING)
    import numpy as np
    try:
        from .labels import config_label_list, load_label_list
        from .online import OnlineRecognizer, OnlineStepEngine, frame_preprocessor
        if args.model_dir and args.config:
            raise DeployError("give --model_dir (an exported online step) or -c CONFIG -w WEIGHTS, "
                              "not both.")
        if args.override and not args.config:
            raise DeployError("-o/--override changes the config given with -c; there is none.")
        if args.model_dir:
            step = OnlineStepEngine(args.model_dir, precision=None if args.precision == "auto"
                                    else args.precision, cpu_threads=args.cpu_threads)
            info = step.info or {}
            pipeline, labels = info.get("PIPELINE"), info.get("labels")
            size, num_seg = info["target_size"], info.get("num_seg", 8)
            print(f"online: Paddle Inference {step.precision} (CPU): {step.model_file}", flush=True)
        elif args.config:
            from ..modeling.builder import model_from_config
            from ..utils.config import to_plain
            from .export import pipeline_input_size
            if not args.weights:
                raise DeployError("-c CONFIG runs the model in dygraph and needs its weights: add "
                                  "-w WEIGHTS (or use --model_dir with an exported online step).")
            cfg = _load_config(args.config, args.override)
            step = model_from_config(cfg, args.weights, require_head=True)
            pipeline = to_plain(cfg.PIPELINE.test)
            num_seg, size = pipeline_input_size(pipeline)
            num_classes = step.head.num_classes
            path = None if args.label_list else config_label_list(cfg)   # --label_list wins
            labels = load_label_list(path, num_classes) if path else None
            print(f"online: dygraph fp32 ({args.config}, weights {args.weights})", flush=True)
        else:
            raise DeployError("give --model_dir (an exported online step) or -c CONFIG -w WEIGHTS.")
        if args.label_list:
            labels = load_label_list(args.label_list, (step.info or {}).get("num_classes")
                                     if args.model_dir else step.head.num_classes)
        from .online import display_available
        from .output_rules import rules_from_flags
        runner = OnlineRecognizer(step, frame_preprocessor(pipeline), labels,
                                  window=args.window or num_seg, target_size=size,
                                  rules=rules_from_flags(args.demo_rules, args.logit_window,
                                                         args.refine, args.hide, labels))
        display = {"on": True, "off": False}.get(args.display,
                                                  "auto" if display_available() else False)
        records = runner.run(args.input, args.frame_step, args.max_frames, args.output,
                             echo=None if args.quiet else print, display=display,
                             annotated=args.annotated)
    except _user_errors() as e:
        return _fail(e)
    lat = [r["latency_ms"] for r in records]
    if lat:
        print(f"{len(records)} frames; latency per frame: median {np.median(lat):.1f} ms, "
              f"p90 {np.percentile(lat, 90):.1f} ms; last prediction: {records[-1]['label']}")
    return 0


# ---- serve ---------------------------------------------------------------------------------------
def serve_parser():
    p = _Parser(prog="serve.py", description="Serve a TSM over HTTP with dynamic batching "
                                              "(docs/serving.md).")
    p.add_argument("--model_dir", default=None, help="export_model.py's output folder")
    p.add_argument("-c", "--config", default=None, help="training config (with -w)")
    p.add_argument("-w", "--weights", "-p", "--pretrained", dest="weights", default=None,
                   help="a registered name (no -c needed) or a checkpoint with -c; exported once "
                        "into $PADDLEVIDEO_HOME/exports")
    _add_overrides(p, short_o=True)
    p.add_argument("--label_list", default=None, help="class names replacing the model's")
    p.add_argument("--top_k", type=int, default=5)
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on; anything beyond 127.0.0.1 should set --token")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--max_batch", type=int, default=8, help="clips per model run, at most")
    p.add_argument("--max_wait_ms", type=float, default=10.0,
                   help="how long a clip waits for others to join its batch")
    p.add_argument("--workers", type=int, default=2, help="decoding threads")
    p.add_argument("--max_upload_mb", type=float, default=100.0)
    p.add_argument("--token", default=None,
                   help=f"require 'Authorization: Bearer TOKEN' (default: $PADDLEVIDEO_TOKEN)")
    p.add_argument("--use_gpu", type=_bool, default=False)
    p.add_argument("--use_tensorrt", type=_bool, default=False)
    p.add_argument("--backend", choices=["auto", "paddle", "onnxruntime"], default="auto")
    p.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16", "int8"],
                   default="auto")
    p.add_argument("--cpu_threads", type=int, default=None)
    return p


def serve_main(argv=None):
    args = serve_parser().parse_args(argv)
    _setup_logging(logging.INFO)
    from .serve import TOKEN_ENV, create_app
    token = args.token or os.environ.get(TOKEN_ENV) or None
    try:
        if args.max_batch < 1 or args.workers < 1 or args.max_upload_mb <= 0 or \
                args.max_wait_ms < 0:
            raise DeployError("--max_batch and --workers must be >= 1, --max_upload_mb > 0 and "
                              "--max_wait_ms >= 0.")
        try:
            import fastapi  # noqa: F401
            import python_multipart  # noqa: F401
            import uvicorn
        except ImportError as e:
            raise DeployError(f"the server needs fastapi, uvicorn and python-multipart "
                              f"(requirements.txt): {e}") from None
        from .api import Predictor
        predictor = Predictor(args.model_dir, args.config, args.weights, args.override,
                              args.label_list, device="gpu" if args.use_gpu else "cpu",
                              precision=args.precision, backend=args.backend,
                              cpu_threads=args.cpu_threads, use_tensorrt=args.use_tensorrt,
                              top_k=args.top_k, batch_size=args.max_batch,
                              log=lambda m: print(m, flush=True))
        app = create_app(predictor, args.max_batch, args.max_wait_ms, args.workers,
                         args.max_upload_mb, token)
    except _user_errors() as e:
        return _fail(e)
    if args.host not in ("127.0.0.1", "localhost", "::1") and not token:
        print(f"warning: listening on {args.host} without --token: anyone who reaches it can use "
              f"the model", file=sys.stderr)
    print(f"serving {predictor.describe()} on http://{args.host}:{args.port} (max_batch "
          f"{args.max_batch}, max_wait {args.max_wait_ms} ms, {args.workers} decode workers)",
          flush=True)
    config = uvicorn.Config(app, host=args.host, port=args.port, log_level="warning",
                            access_log=False)
    # uvicorn stops on SIGTERM/SIGINT (no new connections, requests in flight answered) and then
    # raises the signal again to whatever handler was there before: ours notes it, so the process
    # ends with status 0 after a clean shutdown instead of being killed by its own signal.
    stopped_by = []
    previous = {sig: signal.signal(sig, lambda number, frame: stopped_by.append(number))
                for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        uvicorn.Server(config).run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if stopped_by:
        print(f"stopped by {signal.Signals(stopped_by[0]).name}: requests in flight were answered",
              flush=True)
    return 0
