"""Export a recognizer to a Paddle Inference model, with its inference config, checked.

`OUTDIR/NAME.json` (Paddle 3's PIR program; `NAME.pdmodel` when Python was started with
`FLAGS_enable_pir_api=0`) + `NAME.pdiparams` + `NAME.infer.yaml`. The YAML holds everything a
predictor needs besides the program: the test pipeline, the frame naming for frame folders,
num_seg, input size, class names, where the weights came from. After saving, the exported program
is run on a random batch and its logits compared with the dygraph model's (max abs diff <= 1e-4 x
the logits' scale); a model that gives other answers is an error, not a file.
"""
import copy
import logging
import os
import shutil
import tempfile

from ..utils.config import to_plain
from .errors import DeployError
from .labels import config_label_list, load_label_list
from .runtime import (EXPORT_TOLERANCE, INFER_SUFFIX, INT8_SUFFIX, ONNX_SUFFIX, InferenceEngine,
                      check_against_model, clip_input, paddle_input_spec, read_infer_config,
                      save_program, write_infer_config)

__all__ = ["ExportResult", "export_model", "export_from_config", "pir_enabled",
           "pipeline_input_size", "frame_naming", "record_check"]

logger = logging.getLogger("paddlevideo")

INFER_FORMAT_VERSION = 2       # 2: onnx_check/int8_check carry the file's sha256; `frames` naming
DEFAULT_FRAMES = {"suffix": "img_{:05}.jpg", "start_index": 1}   # data/extract_frames.py's


def pir_enabled():
    """Whether paddle.jit.save writes the PIR `.json` format (Paddle 3's default)."""
    import paddle
    return bool(paddle.get_flags(["FLAGS_enable_pir_api"])["FLAGS_enable_pir_api"])


class ExportResult(dict):
    """Paths written and the equality check: model_file, params_file, infer_config, max_abs_diff,
    logit_scale."""

    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None


def pipeline_input_size(pipeline):
    """(num_seg, crop size) the test pipeline produces; None for what it does not say."""
    num_seg = size = None
    if not pipeline:
        return None, None
    sample = pipeline.get("sample") or {}
    num_seg = sample.get("num_seg")
    for op in pipeline.get("transform") or []:
        if isinstance(op, dict):
            for name, params in op.items():
                params = params or {}
                if name in ("CenterCrop", "TenCrop", "ThreeCrop", "UniformCrop"):
                    size = params.get("target_size", size)
    return num_seg, size


def frame_naming(cfg):
    """{suffix, start_index} of frame folders for this config: DATASET.test's when it reads
    frames, else data/extract_frames.py's defaults (img_00001.jpg, ...)."""
    test = ((cfg.get("DATASET") or {}).get("test") or {})
    return {"suffix": test.get("suffix") or DEFAULT_FRAMES["suffix"],
            "start_index": int(test.get("start_index", DEFAULT_FRAMES["start_index"]))}


def _move_into_place(tmpdir, outdir, save_name, written):
    """Move the checked files from `tmpdir` into `outdir`, replacing an earlier export of the same
    name; the ONNX files and the other program format of that earlier export are removed (they
    belong to other weights)."""
    prefix = os.path.join(outdir, save_name)
    if os.path.isfile(prefix + INFER_SUFFIX):     # first: it must never vouch for the new files
        os.remove(prefix + INFER_SUFFIX)
    for ext in (".json", ".pdmodel", ONNX_SUFFIX, INT8_SUFFIX):
        stale = prefix + ext
        if os.path.isfile(stale) and os.path.basename(stale) not in written:
            os.remove(stale)
            logger.warning("removed %s: it was made by an earlier export", stale)
    for name in written:                          # the inference config last: it vouches for the rest
        os.replace(os.path.join(tmpdir, name), os.path.join(outdir, name))


def export_model(model, outdir, save_name="TSM", num_seg=8, target_size=224, model_format=None,
                 infer_config=None, verify=True, fold_bn=True):
    """Export `model` (a Recognizer2D) for input [N, num_seg, 3, S, S] with a free N.

    model_format: 'json' (PIR) or 'pdmodel' (legacy); None takes whatever this Python writes.
    The legacy format is chosen when Python starts (env FLAGS_enable_pir_api=0), not here.
    infer_config: extra keys for NAME.infer.yaml (pipeline, labels, ...).
    fold_bn: fold BatchNorm into the convolutions of the exported copy (faster on CPU; see
    optimize.py). The check compares against the original, unfolded model.
    The files are written and checked in a temporary folder inside `outdir` and moved into place
    only when the check passed, so a failed export leaves an earlier one intact.
    """
    from .optimize import inference_copy
    if model_format not in (None, "json", "pdmodel"):
        raise DeployError(f"model_format must be 'json' or 'pdmodel', got '{model_format}'.")
    writes = "json" if pir_enabled() else "pdmodel"
    if model_format is not None and model_format != writes:
        raise DeployError(
            f"this Python writes the '{writes}' format; for '{model_format}' start it with "
            f"FLAGS_enable_pir_api={'0' if model_format == 'pdmodel' else '1'} in the environment "
            f"(tools/export_model.py does this for --model_format).")
    os.makedirs(outdir, exist_ok=True)
    tmpdir = tempfile.mkdtemp(prefix=".export-", dir=outdir)
    try:
        spec = clip_input(num_seg, target_size)
        model_file, params_file = save_program(inference_copy(model, fold_bn),
                                               os.path.join(tmpdir, save_name),
                                               [paddle_input_spec(spec)])
        head = getattr(model, "head", None)
        backbone = getattr(model, "backbone", None)
        num_classes = getattr(head, "num_classes", None)
        info = {
            "format_version": INFER_FORMAT_VERSION,
            "save_name": save_name,
            "model_file": os.path.basename(model_file),
            "params_file": os.path.basename(params_file),
            "input": spec,
            "num_seg": num_seg,
            "target_size": target_size,
            "num_classes": num_classes,
            "shift_mode": getattr(backbone, "shift_mode", None),
            "shift_ratio": getattr(backbone, "shift_ratio", None),
        }
        info.update(copy.deepcopy(infer_config or {}))
        result = ExportResult()
        if verify:
            engine = InferenceEngine(model_file=model_file, params_file=params_file,
                                     backend="paddle", precision="fp32", input_shape=spec["shape"])
            diff, scale = check_against_model(model, engine, spec["shape"],
                                              f"the exported program {save_name}")
            engine.close()
            logger.info("export check: max abs logit difference %.3g (scale %.3g)", diff, scale)
            info["export_check"] = {"max_abs_diff": diff, "logit_scale": scale,
                                    "tolerance": EXPORT_TOLERANCE, "batch": 2,
                                    "device": "cpu fp32"}
            result.update(max_abs_diff=diff, logit_scale=scale)
        write_infer_config(os.path.join(tmpdir, save_name + INFER_SUFFIX), info)
        written = sorted(os.listdir(tmpdir), key=lambda n: n.endswith(INFER_SUFFIX))
        _move_into_place(tmpdir, outdir, save_name, written)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    prefix = os.path.join(outdir, save_name)
    result.update(model_file=os.path.join(outdir, os.path.basename(model_file)),
                  params_file=prefix + ".pdiparams", infer_config=prefix + INFER_SUFFIX)
    return result


def _input_size(cfg, pipeline):
    """(num_seg, crop size) of the exported model: INFERENCE's, the backbone's, the pipeline's."""
    inference = to_plain(cfg.get("INFERENCE") or {})
    backbone = (cfg.get("MODEL") or {}).get("backbone") or {}
    p_seg, p_size = pipeline_input_size(pipeline)
    num_seg = inference.get("num_seg") or backbone.get("num_seg") or p_seg or 8
    size = inference.get("target_size") or p_size or 224
    if p_seg is not None and p_seg != num_seg:
        raise DeployError(f"PIPELINE.test samples {p_seg} frames but the model takes num_seg="
                          f"{num_seg}; make them agree.")
    if p_size is not None and p_size != size:
        raise DeployError(f"PIPELINE.test crops {p_size}px but INFERENCE.target_size is {size}.")
    return int(num_seg), int(size)


def export_from_config(cfg, weights, outdir, save_name=None, model_format=None, label_list=None,
                       random_weights=False, verify=True):
    """Build the model of `cfg` (get_config's result), load `weights` (ours or PaddleVideo's
    checkpoint; the whole model, head included), and export it with the config's PIPELINE.test,
    frame naming and class names (`label_list`, else DATASET.label_list).

    An untrained model is exported only with `random_weights=True` (for benchmarks): one without
    weights by accident would predict nonsense with confidence. Nothing is written before the
    weights have loaded."""
    from ..modeling.builder import model_from_config
    if weights and random_weights:
        raise DeployError("give either -p WEIGHTS or --random_weights, not both.")
    if not weights and not random_weights:
        raise DeployError("no weights to export: give -p WEIGHTS (a checkpoint, a PaddleVideo "
                          ".pdparams, a URL or a registered name), or --random_weights to export "
                          "an untrained model on purpose (benchmarks).")
    if not cfg.get("MODEL"):
        raise DeployError("the config has no MODEL section.")
    pipeline = to_plain((cfg.get("PIPELINE") or {}).get("test") or {})
    if not pipeline:
        raise DeployError("the config has no PIPELINE.test; the exported model's preprocessing "
                          "is taken from it.")
    num_seg, size = _input_size(cfg, pipeline)
    model = model_from_config(cfg, weights, require_head=True)
    num_classes = getattr(model.head, "num_classes", None)
    label_list = label_list or config_label_list(cfg)
    labels = load_label_list(label_list, num_classes) if label_list else None
    if labels is None:
        logger.warning("no label list (--label_list or DATASET.label_list): predictions will "
                       "be named class_<index>.")
    info = {"model_name": cfg.get("model_name", "TSM"), "PIPELINE": pipeline,
            "frames": frame_naming(cfg),
            "weights": str(weights) if weights else None,
            "random_weights": bool(random_weights),
            "label_list": os.path.abspath(label_list) if label_list else None}
    if labels:
        info["labels"] = labels
    result = export_model(model, outdir, save_name or cfg.get("model_name") or "TSM",
                          num_seg=num_seg, target_size=size, model_format=model_format,
                          infer_config=info, verify=verify)
    result.model = model          # for the online export of the same weights
    return result


def record_check(infer_config, key, record):
    """Write `record` as `key` (onnx_check, int8_check) into NAME.infer.yaml, keeping the rest."""
    info = read_infer_config(infer_config)
    info[key] = record
    write_infer_config(infer_config, info)
