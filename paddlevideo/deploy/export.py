"""Export a recognizer to a Paddle Inference model, with its inference config, checked.

`OUTDIR/NAME.json` (Paddle 3's PIR program; `NAME.pdmodel` when Python was started with
`FLAGS_enable_pir_api=0`) + `NAME.pdiparams` + `NAME.infer.yaml`. The YAML holds everything a
predictor needs besides the program: the test pipeline, num_seg, input size, class names. After
saving, the exported program is run on a random batch and its logits compared with the dygraph
model's (max abs diff <= 1e-4 x the logits' scale); a model that gives other answers is an error,
not a file.
"""
import copy
import logging
import os

import numpy as np
import paddle
import yaml

from .errors import DeployError
from .labels import default_labels, load_label_list

__all__ = ["INFER_SUFFIX", "EXPORT_TOLERANCE", "ExportResult", "export_model", "export_from_config",
           "pir_enabled", "verify_export", "read_infer_config", "pipeline_input_size"]

logger = logging.getLogger("paddlevideo")

INFER_SUFFIX = ".infer.yaml"
EXPORT_TOLERANCE = 1e-4        # max abs logit difference, relative to max |logit|
INFER_FORMAT_VERSION = 1


def pir_enabled():
    """Whether paddle.jit.save writes the PIR `.json` format (Paddle 3's default)."""
    return bool(paddle.get_flags(["FLAGS_enable_pir_api"])["FLAGS_enable_pir_api"])


class ExportResult(dict):
    """Paths written and the equality check: model_file, params_file, infer_config, max_abs_diff,
    logit_scale."""

    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None


class _Forward(paddle.nn.Layer):
    """Wraps a layer so that converting it to a static program leaves the original dygraph."""

    def __init__(self, layer):
        super().__init__()
        self.layer = layer

    def forward(self, imgs):
        return self.layer(imgs)


def save_inference_program(layer, path_prefix, input_spec, wrap=True):
    """paddle.jit.save of `layer` in eval mode; returns (model_file, params_file). `wrap` keeps
    `layer` itself dygraph (pass False for a throwaway layer whose forward is not (imgs))."""
    was_training = layer.training
    layer.eval()
    try:
        static = paddle.jit.to_static(_Forward(layer) if wrap else layer, input_spec=input_spec,
                                      full_graph=True)
        paddle.jit.save(static, path_prefix)
    except DeployError:
        raise
    except Exception as e:
        raise DeployError(f"converting the model to a static program failed: "
                          f"{_first_line(e)}") from e
    finally:
        if was_training:
            layer.train()
    for ext in (".json", ".pdmodel"):
        if os.path.isfile(path_prefix + ext):
            return path_prefix + ext, path_prefix + ".pdiparams"
    raise DeployError(f"paddle.jit.save wrote no program file for {path_prefix}.")


def _first_line(error):
    """The informative line of a Paddle error (they start with a long C++ context)."""
    text = str(error).strip()
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("In user code", "File ", "---", "C++ Traceback")):
            return line[:400]
    return text[:400] or type(error).__name__


def pipeline_input_size(pipeline):
    """(num_seg, crop size) the test pipeline produces, or (None, None) where it does not say."""
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


def export_model(model, outdir, save_name="TSM", num_seg=8, target_size=224, model_format=None,
                 infer_config=None, verify=True, fold_bn=True):
    """Export `model` (a Recognizer2D) for input [N, num_seg, 3, S, S] with a free N.

    model_format: 'json' (PIR) or 'pdmodel' (legacy); None takes whatever this Python writes.
    The legacy format is chosen when Python starts (env FLAGS_enable_pir_api=0), not here.
    infer_config: extra keys for NAME.infer.yaml (pipeline, labels, ...).
    fold_bn: fold BatchNorm into the convolutions of the exported copy (faster on CPU; see
    optimize.py). The check compares against the original, unfolded model.
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
    prefix = os.path.join(outdir, save_name)
    spec = [paddle.static.InputSpec([None, num_seg, 3, target_size, target_size], "float32", "imgs")]
    model_file, params_file = save_inference_program(inference_copy(model, fold_bn), prefix, spec)

    head = getattr(model, "head", None)
    backbone = getattr(model, "backbone", None)
    num_classes = getattr(head, "num_classes", None)
    info = {
        "format_version": INFER_FORMAT_VERSION,
        "save_name": save_name,
        "model_file": os.path.basename(model_file),
        "params_file": os.path.basename(params_file),
        "input": {"name": "imgs", "shape": [-1, num_seg, 3, target_size, target_size],
                  "dtype": "float32", "layout": "N, num_seg, C, H, W; RGB, normalised"},
        "num_seg": num_seg,
        "target_size": target_size,
        "num_classes": num_classes,
        "shift_mode": getattr(backbone, "shift_mode", None),
        "shift_ratio": getattr(backbone, "shift_ratio", None),
    }
    info.update(copy.deepcopy(infer_config or {}))
    if num_classes and not info.get("labels"):
        info["labels"] = default_labels(num_classes)
    result = ExportResult(model_file=model_file, params_file=params_file,
                          infer_config=prefix + INFER_SUFFIX)
    if verify:
        diff, scale = verify_export(model, model_file, params_file, num_seg, target_size)
        info["export_check"] = {"max_abs_diff": float(diff), "logit_scale": float(scale),
                                "tolerance": EXPORT_TOLERANCE, "batch": 2, "device": "cpu fp32"}
        result.update(max_abs_diff=diff, logit_scale=scale)
    with open(result.infer_config, "w", encoding="utf-8") as f:
        yaml.safe_dump(info, f, sort_keys=False, allow_unicode=True)
    return result


def verify_export(model, model_file, params_file, num_seg, target_size, batch=2, seed=0):
    """Run the exported program and the dygraph model on one random batch; return
    (max abs diff, logit scale) or raise DeployError when they differ beyond tolerance."""
    from .engine import InferenceEngine
    rng = np.random.RandomState(seed)
    imgs = rng.standard_normal((batch, num_seg, 3, target_size, target_size)).astype("float32")
    was_training = model.training
    model.eval()
    try:
        with paddle.no_grad():
            expected = model(paddle.to_tensor(imgs)).numpy()
    finally:
        if was_training:
            model.train()
    engine = InferenceEngine(model_file=model_file, params_file=params_file, precision="fp32",
                             input_shape=[-1, num_seg, 3, target_size, target_size])
    got = engine(imgs)
    diff = float(np.abs(got - expected).max())
    scale = float(max(np.abs(expected).max(), 1e-6))
    if not diff <= EXPORT_TOLERANCE * scale:
        raise DeployError(f"the exported model gives other logits than the dygraph model: max abs "
                          f"difference {diff:.3g} for logits of scale {scale:.3g} (allowed "
                          f"{EXPORT_TOLERANCE:g} x scale). Do not deploy {model_file}.")
    logger.info("export check: max abs logit difference %.3g (scale %.3g)", diff, scale)
    return diff, scale


def read_infer_config(path):
    """Load NAME.infer.yaml; DeployError if missing or not one of ours."""
    if not os.path.isfile(path):
        raise DeployError(f"inference config not found: {path}")
    try:
        with open(path, encoding="utf-8") as f:
            info = yaml.safe_load(f)
    except yaml.YAMLError as e:
        raise DeployError(f"{path} is not valid YAML: {e}") from None
    if not isinstance(info, dict) or "input" not in info:
        raise DeployError(f"{path} is not an inference config written by export_model.")
    return info


def export_from_config(cfg, weights, outdir, save_name=None, model_format=None, label_list=None,
                       verify=True):
    """Build the model of `cfg` (get_config's result), load `weights` (ours or PaddleVideo's
    checkpoint), and export it with the config's PIPELINE.test and the class names."""
    from ..modeling.builder import build_model
    from ..modeling.weights import load_weights
    from ..utils.config import to_plain

    model_cfg = cfg.get("MODEL")
    if not model_cfg:
        raise DeployError("the config has no MODEL section.")
    pipeline = to_plain((cfg.get("PIPELINE") or {}).get("test") or {})
    if not pipeline:
        raise DeployError("the config has no PIPELINE.test; the exported model's preprocessing "
                          "is taken from it.")
    infer_section = to_plain(cfg.get("INFERENCE") or {})
    backbone = model_cfg.get("backbone") or {}
    p_seg, p_size = pipeline_input_size(pipeline)
    num_seg = infer_section.get("num_seg") or backbone.get("num_seg") or p_seg or 8
    size = infer_section.get("target_size") or p_size or 224
    if p_seg is not None and p_seg != num_seg:
        raise DeployError(f"PIPELINE.test samples {p_seg} frames but the model takes num_seg="
                          f"{num_seg}; make them agree.")
    if p_size is not None and p_size != size:
        raise DeployError(f"PIPELINE.test crops {p_size}px but INFERENCE.target_size is {size}.")

    model = build_model(model_cfg, load_pretrained=False)
    if weights:
        load_weights(model, weights, require_head=True)
    else:
        logger.warning("no weights given: exporting the randomly initialised model.")
    num_classes = getattr(model.head, "num_classes", None)
    label_list = label_list or infer_section.get("label_list")
    labels = load_label_list(label_list, num_classes) if label_list else None
    if labels is None:
        logger.warning("no label list (--label_list or INFERENCE.label_list): predictions will "
                       "be named class_<index>.")
    info = {"model_name": cfg.get("model_name", "TSM"), "PIPELINE": pipeline,
            "weights": str(weights) if weights else None}
    if labels:
        info["labels"] = labels
    return export_model(model, outdir, save_name or cfg.get("model_name") or "TSM",
                        num_seg=num_seg, target_size=size, model_format=model_format,
                        infer_config=info, verify=verify)
