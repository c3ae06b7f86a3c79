"""Parameter groups: fc weight x5, fc bias x10 without decay, BatchNorm without decay; clipping."""
import numpy as np
import paddle
import pytest

from paddlevideo.modeling import build_model
from paddlevideo.solver import build_optimizer, param_groups
from paddlevideo.utils.config import AttrDict, ConfigError

LR, WD = 0.1, 0.01


def tiny_model():
    paddle.seed(0)
    return build_model(AttrDict(framework="Recognizer2D",
                                backbone=AttrDict(name="ResNetTSM", depth=18, num_seg=2),
                                head=AttrDict(name="TSMHead", num_classes=3, in_channels=512)))


def opt_cfg(**kw):
    cfg = AttrDict(name="Momentum", momentum=0.9, learning_rate=LR,
                   weight_decay=AttrDict(name="L2", value=WD))
    cfg.update(kw)
    return cfg


def test_groups_split_as_tsm_trains():
    model = tiny_model()
    groups = {g["name"]: g for g in param_groups(model, WD)}
    names = {id(p): n for n, p in model.named_parameters()}
    assert [names[id(p)] for p in groups["fc_weight"]["params"]] == ["head.fc.weight"]
    assert [names[id(p)] for p in groups["fc_bias"]["params"]] == ["head.fc.bias"]
    assert (groups["fc_weight"]["learning_rate"], groups["fc_bias"]["learning_rate"]) == (5.0, 10.0)
    assert groups["fc_bias"]["weight_decay"] == 0.0 and groups["norm"]["weight_decay"] == 0.0
    assert all("_batch_norm" in names[id(p)] for p in groups["norm"]["params"])
    assert all("_conv" in names[id(p)] for p in groups["weights"]["params"])
    total = sum(len(g["params"]) for g in groups.values())
    assert total == len([p for p in model.parameters() if not p.stop_gradient])


def test_one_step_applies_multipliers_and_decay():
    """With every gradient 1, the first Momentum step moves p by -lr * mult * (1 + wd * p)."""
    model = tiny_model()
    optimizer, _ = build_optimizer(opt_cfg(), model, steps_per_epoch=1)
    params = dict(model.named_parameters())
    picks = {"head.fc.weight": (5, WD), "head.fc.bias": (10, 0.0),
             "backbone.conv._batch_norm.weight": (1, 0.0), "backbone.conv._conv.weight": (1, WD)}
    before = {k: params[k].numpy().copy() for k in picks}
    loss = sum(paddle.sum(p) for p in model.parameters() if not p.stop_gradient)
    loss.backward()
    optimizer.step()
    for key, (mult, wd) in picks.items():
        expected = before[key] - LR * mult * (1.0 + wd * before[key])
        np.testing.assert_allclose(params[key].numpy(), expected, rtol=1e-5, atol=1e-6,
                                   err_msg=key)


def test_global_norm_clipping_bounds_the_update():
    model = tiny_model()
    optimizer, _ = build_optimizer(opt_cfg(weight_decay=None, momentum=0.0,
                                           grad_clip=AttrDict(name="ClipGradByGlobalNorm", value=1.0),
                                           fc_lr_mult=1.0, fc_bias_lr_mult=1.0), model, 1)
    trainable = [p for p in model.parameters() if not p.stop_gradient]
    before = [p.numpy().copy() for p in trainable]
    loss = sum(paddle.sum(p) * 1000.0 for p in trainable)
    loss.backward()
    optimizer.step()
    delta = np.sqrt(sum(((p.numpy() - b) ** 2).sum() for p, b in zip(trainable, before)))
    assert delta == pytest.approx(LR * 1.0, rel=1e-3)      # global norm clipped to 1, times lr


def test_unsupported_optimizer_and_missing_lr():
    model = tiny_model()
    with pytest.raises(ConfigError, match="not supported"):
        build_optimizer(opt_cfg(name="Adagrad"), model, 1)
    cfg = opt_cfg()
    del cfg["learning_rate"]
    with pytest.raises(ConfigError, match="learning_rate"):
        build_optimizer(cfg, model, 1)


def test_adam_first_step_is_lr_times_multiplier():
    """Adam's first step is lr * sign(grad) per parameter, scaled by the group multiplier."""
    model = tiny_model()
    optimizer, _ = build_optimizer(opt_cfg(name="Adam", weight_decay=None), model, 1)
    params = dict(model.named_parameters())
    before = {k: params[k].numpy().copy() for k in ("head.fc.bias", "head.fc.weight",
                                                     "backbone.conv._conv.weight")}
    loss = sum(paddle.sum(p) for p in model.parameters() if not p.stop_gradient)
    loss.backward()
    optimizer.step()
    for key, mult in (("head.fc.bias", 10), ("head.fc.weight", 5), ("backbone.conv._conv.weight", 1)):
        np.testing.assert_allclose(before[key] - params[key].numpy(), LR * mult, rtol=1e-3)
