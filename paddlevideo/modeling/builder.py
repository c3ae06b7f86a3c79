"""Build a recognizer from the MODEL section of a config."""
from ..utils.config import AttrDict, ConfigError
from .registry import BACKBONES, HEADS, RECOGNIZERS
from .weights import load_weights

__all__ = ["build_backbone", "build_head", "build_model", "model_from_config"]


def build_backbone(cfg):
    return BACKBONES.build(cfg)


def build_head(cfg):
    return HEADS.build(cfg)


def _section(model_cfg, key):
    if key not in model_cfg:
        where = model_cfg.where() if isinstance(model_cfg, AttrDict) else "MODEL"
        raise ConfigError(f"{where}: MODEL needs '{key}'.")
    return model_cfg[key]


def build_model(model_cfg, load_pretrained=True):
    """MODEL {framework, backbone, head} -> recognizer; loads `backbone.pretrained` if set."""
    framework = _section(model_cfg, "framework")
    where = model_cfg.where("framework") if isinstance(model_cfg, AttrDict) else "MODEL.framework"
    cls = RECOGNIZERS.get(framework, where)
    backbone = build_backbone(_section(model_cfg, "backbone"))
    head = build_head(_section(model_cfg, "head"))
    model = cls(backbone=backbone, head=head)
    if load_pretrained and getattr(backbone, "pretrained", None):
        load_weights(model, backbone.pretrained)
    return model


def model_from_config(cfg, weights=None, require_head=True):
    """The recognizer of a config (get_config's result, or its MODEL section) in eval mode, with
    `weights` (path, URL or registered name) loaded over it: export, predict and online use it.

    `backbone.pretrained` is not loaded (the weights hold every tensor). require_head: the file
    must hold a head of the config's class count (load_weights' rule); a model must never run
    with a fresh head in its place. With no weights the model keeps its random initialisation:
    the caller decides whether that is allowed."""
    model_cfg = cfg["MODEL"] if "MODEL" in cfg else cfg
    model = build_model(model_cfg, load_pretrained=False)
    if weights:
        load_weights(model, weights, require_head=require_head)
    model.eval()
    return model
