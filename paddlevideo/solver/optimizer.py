"""The optimizer from a config's OPTIMIZER section, with TSM's parameter groups.

Groups (as in the TSM paper and PaddleVideo):
- convolution weights: base rate, L2 weight decay;
- BatchNorm scale and shift: base rate, no decay (`no_weight_decay_on_bn: True`);
- the classifier's weight (`head.fc.weight`): `fc_lr_mult` x the rate (5), with decay;
- the classifier's bias (`head.fc.bias`): `fc_bias_lr_mult` x the rate (10), no decay.
The groups are applied as per-parameter attributes (`optimize_attr['learning_rate']`, an L2
regularizer each) on one flat parameter list, not as Paddle parameter groups: Paddle clips the
gradients of each parameter group separately, which would turn global-norm clipping into
per-group clipping.
"""
import paddle
import paddle.nn as nn
from paddle.regularizer import L2Decay

from ..utils.config import AttrDict, ConfigError, suggest
from .lr import build_lr

__all__ = ["build_optimizer", "param_groups", "accumulator_kinds", "OPTIMIZERS"]

OPTIMIZERS = ("Momentum", "SGD", "Adam")
# What each optimizer keeps per parameter: accumulator kind -> whether it has the parameter's
# shape (else it is one number). Resuming checks a checkpoint's optimizer state against this.
_ACCUMULATORS = {"Momentum": {"velocity": True}, "SGD": {},
                 "Adam": {"moment1": True, "moment2": True, "beta1_pow_acc": False,
                          "beta2_pow_acc": False}}


def accumulator_kinds(name):
    """{kind: has the parameter's shape} of the state optimizer `name` keeps per parameter."""
    return dict(_ACCUMULATORS[name])


def _weight_decay(cfg):
    """OPTIMIZER.weight_decay ({name: L2, value: x} or a number) -> float coefficient."""
    wd = cfg.get("weight_decay")
    if wd is None:
        return 0.0
    if isinstance(wd, (int, float)):
        return float(wd)
    where = cfg.where("weight_decay") if isinstance(cfg, AttrDict) else "OPTIMIZER.weight_decay"
    if not isinstance(wd, dict) or "value" not in wd:
        raise ConfigError(f"{where}: weight_decay must be a number or {{name: L2, value: 1e-4}}.")
    name = wd.get("name", "L2")
    if name not in ("L2", "L2Decay"):
        raise ConfigError(f"{where}: weight decay '{name}' is not supported; use L2 (what TSM "
                          f"was trained with).")
    return float(wd["value"])


def _grad_clip(cfg):
    clip = cfg.get("grad_clip")
    if clip is None:
        return None
    where = cfg.where("grad_clip") if isinstance(cfg, AttrDict) else "OPTIMIZER.grad_clip"
    if isinstance(clip, (int, float)):
        return nn.ClipGradByGlobalNorm(clip_norm=float(clip))
    if not isinstance(clip, dict) or "value" not in clip:
        raise ConfigError(f"{where}: grad_clip must be {{name: ClipGradByGlobalNorm, value: 20.0}}.")
    name = clip.get("name", "ClipGradByGlobalNorm")
    if name != "ClipGradByGlobalNorm":
        raise ConfigError(f"{where}: gradient clipping '{name}' is not supported; use "
                          f"ClipGradByGlobalNorm.")
    return nn.ClipGradByGlobalNorm(clip_norm=float(clip["value"]))


def _is_norm_layer(layer):
    return isinstance(layer, (nn.layer.norm._BatchNormBase, nn.LayerNorm, nn.GroupNorm))


def param_groups(model, weight_decay, fc_lr_mult=5.0, fc_bias_lr_mult=10.0,
                 no_weight_decay_on_bn=True):
    """Split the trainable parameters into Paddle parameter groups (see the module doc).

    Returns a list of dicts {'params', 'learning_rate' (multiplier), 'weight_decay', 'name'};
    empty groups are left out.
    """
    norm_params = set()
    for _, layer in model.named_sublayers(include_self=True):
        if _is_norm_layer(layer):
            norm_params.update(id(p) for p in layer.parameters(include_sublayers=False))
    groups = {
        "weights": {"params": [], "learning_rate": 1.0, "weight_decay": weight_decay},
        "norm": {"params": [], "learning_rate": 1.0,
                 "weight_decay": 0.0 if no_weight_decay_on_bn else weight_decay},
        "fc_weight": {"params": [], "learning_rate": float(fc_lr_mult), "weight_decay": weight_decay},
        "fc_bias": {"params": [], "learning_rate": float(fc_bias_lr_mult), "weight_decay": 0.0},
    }
    for name, param in model.named_parameters():
        if param.stop_gradient:
            continue
        # "head.fc.weight" on a recognizer; DataParallel adds a "_layers." prefix
        if name.endswith("head.fc.weight"):
            key = "fc_weight"
        elif name.endswith("head.fc.bias"):
            key = "fc_bias"
        elif id(param) in norm_params:
            key = "norm"
        else:
            key = "weights"
        groups[key]["params"].append(param)
    return [dict(group, name=key) for key, group in groups.items() if group["params"]]


def build_optimizer(cfg, model, steps_per_epoch, epochs=None):
    """OPTIMIZER section + model -> (optimizer, lr schedule).

    `steps_per_epoch` is the number of optimizer steps in one epoch (the schedule counts epochs).
    """
    if cfg is None:
        raise ConfigError("the config has no OPTIMIZER section; training needs one (see "
                          "configs/recognition/tsm/tsm_k400_videos.yaml).")
    name = cfg.get("name", "Momentum")
    if name not in OPTIMIZERS:
        where = cfg.where("name") if isinstance(cfg, AttrDict) else "OPTIMIZER.name"
        raise ConfigError(f"{where}: optimizer '{name}' is not supported." + suggest(name, OPTIMIZERS))
    if "learning_rate" not in cfg:
        where = cfg.where() if isinstance(cfg, AttrDict) else "OPTIMIZER"
        raise ConfigError(f"{where}: OPTIMIZER needs 'learning_rate' (a number or a schedule).")
    schedule = build_lr(cfg["learning_rate"], steps_per_epoch, epochs)
    groups = param_groups(model, _weight_decay(cfg), cfg.get("fc_lr_mult", 5.0),
                          cfg.get("fc_bias_lr_mult", 10.0), cfg.get("no_weight_decay_on_bn", True))
    params = []
    for group in groups:
        for param in group["params"]:
            param.optimize_attr["learning_rate"] = group["learning_rate"]
            param.regularizer = L2Decay(group["weight_decay"])
            params.append(param)
    clip = _grad_clip(cfg)
    if name == "Momentum":
        optimizer = paddle.optimizer.Momentum(learning_rate=schedule,
                                              momentum=float(cfg.get("momentum", 0.9)),
                                              parameters=params,
                                              use_nesterov=bool(cfg.get("use_nesterov", False)),
                                              grad_clip=clip)
    elif name == "Adam":        # with L2 on the gradient (coupled), like the other two
        optimizer = paddle.optimizer.Adam(learning_rate=schedule, parameters=params,
                                          beta1=float(cfg.get("beta1", 0.9)),
                                          beta2=float(cfg.get("beta2", 0.999)), grad_clip=clip)
    else:
        optimizer = paddle.optimizer.SGD(learning_rate=schedule, parameters=params, grad_clip=clip)
    return optimizer, schedule
