"""A whole config checked before anything runs: every value against what takes it, and the
sections against each other.

    from paddlevideo.config_check import load_and_check_config
    cfg = load_and_check_config("configs/recognition/tsm/tsm_k400_videos.yaml", ["epochs=10"])

`get_config` (utils/config.py) reads the file, merges its bases, applies the overrides and checks
the fixed sections. `check_config` then checks each component's parameters against its
constructor (model, datasets, pipelines, metric, learning-rate schedule; nothing is loaded or
downloaded: the pipeline ops, the metric and the schedule are cheap and are built, the model and
the datasets are only checked), and what a run would get silently wrong if they disagreed:

- the frames per clip the Sampler gives (num_seg x seg_len) and the backbone's num_seg, in every
  mode (16 frames into an 8-segment model would be averaged as two "views");
- a frames dataset with a frames decoder, a video dataset with a video decoder;
- the class count of DATASET.label_list (when the file exists), METRIC.num_classes and
  MODEL.head.num_classes;
- INFERENCE.num_seg and the backbone's num_seg; INFERENCE's target_size, short_size and seg_len
  (PaddleVideo's inference-helper keys) and PIPELINE.test's; a MultiCropMetric's views and the
  test pipeline's.

Every problem is one ConfigError naming the file:line (or the `-o`) that wrote the key.
"""
import os

from .utils.config import AttrDict, ConfigError, get_config
from .utils.label_files import resolve_label_path
from .utils.registry import parameter_default

__all__ = ["load_and_check_config", "check_config", "load_model"]

MODES = ("train", "valid", "test")


def load_and_check_config(path, overrides=None):
    """get_config + check_config: the config every tool runs with, or one ConfigError."""
    return check_config(get_config(path, overrides))


def load_model(config, weights=None, overrides=()):
    """The checked dygraph recognizer of `config` (a path, or get_config's result) in eval mode,
    with `weights` (path, URL or registered name; ours, PaddleVideo's or a PyTorch TSM checkpoint)
    loaded whole, head included. Without weights the model keeps its random initialisation, and
    a warning says so. `paddlevideo.load_model` is this function."""
    import logging
    from .modeling.builder import model_from_config
    cfg = (load_and_check_config(config, list(overrides)) if isinstance(config, (str, os.PathLike))
           else check_config(config))
    if not weights:
        logging.getLogger("paddlevideo").warning(
            "load_model: no weights given: the model has random weights and its answers mean "
            "nothing.")
    return model_from_config(cfg, weights, require_head=True)


def _value(cls, cfg, key):
    """cfg[key], else the constructor's default."""
    return cfg[key] if key in cfg else parameter_default(cls, key)


def _where(node, key):
    """Where `key` of `node` was set, or that it takes the default."""
    if key in node:
        return node.where(key)
    return f"{node.where()}, its default"


def _section(cfg, name, required=True):
    node = cfg.get(name)
    if node is None and required:
        raise ConfigError(f"{cfg.where()}: the config has no {name} section; see "
                          f"configs/recognition/tsm/tsm_k400_videos.yaml.")
    return node


def _check_model(cfg):
    """(backbone class, backbone cfg, head cfg) after checking every model component."""
    from .modeling import BACKBONES, HEADS, LOSSES, RECOGNIZERS
    model = _section(cfg, "MODEL")
    for key in ("framework", "backbone", "head"):
        if key not in model:
            raise ConfigError(f"{model.where()}: MODEL needs '{key}'.")
    RECOGNIZERS.get(model.framework, model.where("framework"))
    backbone_cls, _ = BACKBONES.check(model.backbone)
    HEADS.check(model.head)
    loss = model.head.get("loss_cfg")
    if loss is not None:
        LOSSES.check(loss)
    return backbone_cls, model.backbone, model.head


def _check_pipelines(cfg):
    """{mode: Compose} for each mode of PIPELINE (its ops are built: cheap, no file is read)."""
    from .loader import Compose
    pipeline = _section(cfg, "PIPELINE", required=False) or {}
    return {mode: Compose(pipeline[mode]) for mode in MODES if mode in pipeline}


def _decode_op(cfg, mode, compose):
    """(name, where) of the decode step of PIPELINE[mode], or (None, where) if it has none."""
    step = cfg.PIPELINE[mode]
    if "decode" not in step:
        return None, step.where()
    return type(compose.ops[0]).__name__, step.where("decode")


def _check_datasets(cfg, pipelines):
    """Each DATASET mode's parameters, and its decoder against PIPELINE's."""
    from .loader import DATASETS
    dataset = _section(cfg, "DATASET", required=False) or {}
    for mode in MODES:
        if mode not in dataset:
            continue
        ds = dataset[mode]
        cls, _ = DATASETS.check(ds, name_key="format", injected=("pipeline", "mode"))
        needed = getattr(cls, "decoder", None)
        if needed is None or mode not in pipelines:
            continue
        found, where = _decode_op(cfg, mode, pipelines[mode])
        if found != needed:
            what = "frame folders" if getattr(cls, "kind", "") == "frames" else "video files"
            has = f"has {found}" if found else "has no decode step"
            raise ConfigError(f"{ds.where('format')}: {ds.format} reads {what} and needs "
                              f"`decode: {{name: {needed}}}` in PIPELINE.{mode}, but {where} "
                              f"{has}.")


def _check_frames_per_clip(cfg, pipelines, backbone_cls, backbone):
    num_seg = _value(backbone_cls, backbone, "num_seg")
    for mode, compose in pipelines.items():
        samplers = [op for op in compose.ops if hasattr(op, "num_seg")]
        if not samplers:
            continue
        op = samplers[-1]
        frames = op.num_seg * getattr(op, "seg_len", 1)
        if frames != num_seg:
            sample = cfg.PIPELINE[mode].get("sample")
            where = _where(sample, "num_seg") if isinstance(sample, AttrDict) \
                else cfg.PIPELINE[mode].where()
            detail = f"num_seg {op.num_seg} x seg_len {op.seg_len}" if op.seg_len != 1 \
                else f"num_seg {op.num_seg}"
            raise ConfigError(f"{where}: PIPELINE.{mode} samples {frames} frames per clip "
                              f"({detail}) but the backbone takes num_seg={num_seg} "
                              f"({_where(backbone, 'num_seg')}); make them equal.")
    inference = cfg.get("INFERENCE") or {}
    if "num_seg" in inference and inference["num_seg"] != num_seg:
        raise ConfigError(f"{inference.where('num_seg')}: INFERENCE.num_seg is "
                          f"{inference['num_seg']} but the backbone takes num_seg={num_seg} "
                          f"({_where(backbone, 'num_seg')}); make them equal.")


def _check_inference(cfg, pipelines):
    """PaddleVideo's INFERENCE sizes must be what PIPELINE.test does: the exported model's
    preprocessing is PIPELINE.test, so a different INFERENCE value would be silently unused."""
    inference = cfg.get("INFERENCE") or {}
    test = pipelines.get("test")
    if not inference or test is None:
        return
    found = {}
    for op in test.ops:
        if hasattr(op, "seg_len"):
            found["seg_len"] = op.seg_len
        if hasattr(op, "short_size"):
            found["short_size"] = op.short_size
        if getattr(op, "tw", None) is not None and op.tw == op.th:
            found["target_size"] = op.tw
    for key, value in found.items():
        if key in inference and inference[key] != value:
            raise ConfigError(f"{inference.where(key)}: INFERENCE.{key} is {inference[key]} but "
                              f"PIPELINE.test gives {value}, and the exported model preprocesses "
                              f"as PIPELINE.test does; make them equal or remove INFERENCE.{key}.")


def _label_count(path):
    """Classes in a label list: one per non-empty line ('INDEX NAME' or a bare name)."""
    with open(path, encoding="utf-8") as f:
        return sum(1 for line in f if line.strip())


def _check_class_counts(cfg, head):
    num_classes = head.num_classes
    here = f"MODEL.head.num_classes is {num_classes} ({head.where('num_classes')})"
    dataset = cfg.get("DATASET") or {}
    path = dataset.get("label_list")
    if path:
        try:
            path = resolve_label_path(path)
        except ValueError as e:
            raise ConfigError(f"{dataset.where('label_list')}: {e}") from None
    if path and os.path.isfile(path):
        count = _label_count(path)
        if count != num_classes:
            raise ConfigError(f"{dataset.where('label_list')}: {path} names {count} classes but "
                              f"{here}; give the label list of the data set the model is "
                              f"trained on, or fix num_classes.")
    metric = cfg.get("METRIC") or {}
    if "num_classes" in metric and metric["num_classes"] != num_classes:
        raise ConfigError(f"{metric.where('num_classes')}: METRIC.num_classes is "
                          f"{metric['num_classes']} but {here}; remove METRIC.num_classes (it "
                          f"follows the head).")


def _check_metric(cfg, head, pipelines):
    from .metrics import build_metric
    metric_cfg = cfg.get("METRIC")
    if metric_cfg is None:
        return
    metric = build_metric(metric_cfg, head.num_classes)
    if "test" in pipelines:             # the protocol --test reports
        try:
            metric.check_views(pipelines["test"].num_clips, pipelines["test"].num_crops)
        except ConfigError as e:
            raise ConfigError(f"{metric_cfg.where()}: {e}") from None


def _check_schedule(cfg):
    """The learning-rate schedule's parameters, then the schedule itself (built: it is cheap)."""
    from .solver.lr import LR_SCHEDULES, build_lr
    optimizer = cfg.get("OPTIMIZER")
    if optimizer is None or "learning_rate" not in optimizer:
        return
    schedule = optimizer.learning_rate
    if isinstance(schedule, dict):
        LR_SCHEDULES.check(schedule, injected=("steps_per_epoch", "epochs"))
    try:
        build_lr(schedule, steps_per_epoch=1, epochs=cfg.get("epochs"))
    except ConfigError as e:           # the schedule's own checks do not know the file
        raise ConfigError(f"{optimizer.where('learning_rate')}: {e}") from None


def check_config(cfg):
    """Check a loaded config (get_config's result) as a whole; return it, or raise ConfigError."""
    backbone_cls, backbone, head = _check_model(cfg)
    pipelines = _check_pipelines(cfg)
    _check_datasets(cfg, pipelines)
    _check_frames_per_clip(cfg, pipelines, backbone_cls, backbone)
    _check_inference(cfg, pipelines)
    _check_class_counts(cfg, head)
    _check_metric(cfg, head, pipelines)
    _check_schedule(cfg)
    return cfg
