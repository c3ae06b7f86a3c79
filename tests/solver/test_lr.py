"""Learning-rate schedules: values per epoch and iteration, warm-up, exact restore."""
import math

import pytest

from paddlevideo.solver.lr import build_lr
from paddlevideo.utils.config import AttrDict, ConfigError


def rates(schedule, iterations):
    out = []
    for _ in range(iterations):
        out.append(schedule.get_lr())
        schedule.step()
    return out


def test_piecewise_per_epoch_changes_only_at_boundaries():
    s = build_lr(AttrDict(name="PiecewiseDecay", boundaries=[2, 4], values=[0.1, 0.01, 0.001]),
                 steps_per_epoch=3)
    assert rates(s, 18) == [0.1] * 6 + [0.01] * 6 + [0.001] * 6


def test_cosine_per_iteration_and_linear_warmup():
    s = build_lr(AttrDict(name="CosineAnnealingDecay", learning_rate=0.1, iter_step=True,
                          warmup_epochs=1, warmup_start_lr=0.0), steps_per_epoch=4, epochs=4)
    r = rates(s, 16)
    target = 0.05 * (1 + math.cos(math.pi * 1 / 4))        # the cosine's value at epoch 1
    assert r[:4] == pytest.approx([0.0, target / 4, target / 2, 3 * target / 4])
    assert r[4] == pytest.approx(target)
    assert r[6] == pytest.approx(0.05 * (1 + math.cos(math.pi * 1.5 / 4)))
    assert all(a > b for a, b in zip(r[4:], r[5:]))         # strictly falling after warm-up


def test_paddlevideo_warmup_cosine_name():
    s = build_lr(AttrDict(name="CustomWarmupCosineDecay", warmup_start_lr=0.01, warmup_epochs=2,
                          cosine_base_lr=0.1, max_epoch=10), steps_per_epoch=1, epochs=10)
    r = rates(s, 11)
    assert r[0] == pytest.approx(0.01)
    assert r[-1] == pytest.approx(0.0, abs=1e-12)


def test_constant_and_restore_from_state_dict():
    s = build_lr(0.02, steps_per_epoch=5)
    assert rates(s, 3) == [0.02] * 3
    a = build_lr(AttrDict(name="PiecewiseDecay", boundaries=[1], values=[1.0, 0.5]), 2)
    rates(a, 3)
    b = build_lr(AttrDict(name="PiecewiseDecay", boundaries=[1], values=[1.0, 0.5]), 2)
    b.set_state_dict(a.state_dict())
    assert rates(b, 3) == rates(a, 3)


def test_bad_schedules_are_config_errors():
    with pytest.raises(ConfigError, match="one more value"):
        build_lr(AttrDict(name="PiecewiseDecay", boundaries=[1, 2], values=[1.0]), 2)
    with pytest.raises(ConfigError, match="Did you mean"):
        build_lr(AttrDict(name="PiecewiseDecy", boundaries=[1], values=[1.0, 0.1]), 2)
    with pytest.raises(ConfigError, match="has no parameter 'boundary'"):
        build_lr(AttrDict(name="PiecewiseDecay", boundary=[1], values=[1.0, 0.1]), 2)
