"""Build a recognizer from the MODEL section of a config."""
from ..utils.config import AttrDict, ConfigError
from .registry import BACKBONES, HEADS, RECOGNIZERS
from .weights import load_weights

__all__ = ["build_backbone", "build_head", "build_model"]


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
