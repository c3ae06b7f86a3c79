"""Learning-rate schedules defined in epochs, stepped once per training iteration.

Every schedule here is a `paddle.optimizer.lr.LRScheduler` whose `step()` the trainer calls after
each iteration. The schedule turns the iteration count into an epoch position: a fractional one
when `iter_step: True` (the rate changes every iteration) or a whole one when `iter_step: False`
(the rate changes at epoch boundaries, PaddleVideo's TSM default). Because the only state is the
iteration count, a resumed run restores the schedule exactly from the optimizer's state dict.

Any schedule takes a linear warm-up: `warmup_epochs` (may be fractional) from `warmup_start_lr`
up to the schedule's own value at the end of the warm-up.

Linear scaling rule: the shipped rates are for a global batch of 128 clips (8 GPUs x 16); with
another global batch B, scale every rate by B / 128 (see docs/training.md).
"""
import math

from paddle.optimizer.lr import LRScheduler

from ..utils.config import AttrDict, ConfigError
from ..utils.registry import Registry
from ..utils.typecheck import NonNegative, PositiveFloat

__all__ = ["LR_SCHEDULES", "EpochSchedule", "ConstantLR", "PiecewiseDecay",
           "CosineAnnealingDecay", "CustomWarmupCosineDecay", "build_lr"]

LR_SCHEDULES = Registry("learning-rate schedule")


class EpochSchedule(LRScheduler):
    """Base: subclasses define `rate_at(epoch)` for an epoch position (float, 0-based)."""

    def __init__(self, base_lr, steps_per_epoch, iter_step=False, warmup_epochs=0.0,
                 warmup_start_lr=0.0):
        if steps_per_epoch < 1:
            raise ConfigError(f"the training loader yields {steps_per_epoch} batches per epoch; "
                              f"it needs at least one (is the train list empty or the batch "
                              f"larger than the data set with drop_last?).")
        if warmup_epochs < 0:
            raise ConfigError(f"warmup_epochs must be >= 0, got {warmup_epochs}.")
        self.steps_per_epoch = int(steps_per_epoch)
        self.iter_step = bool(iter_step)
        self.warmup_epochs = float(warmup_epochs)
        self.warmup_start_lr = float(warmup_start_lr)
        super().__init__(learning_rate=float(base_lr))

    def epoch_position(self):
        """The epoch position of the iteration about to run (last_epoch counts finished ones)."""
        done = max(self.last_epoch, 0)
        if self.iter_step:
            return done / self.steps_per_epoch
        return float(done // self.steps_per_epoch)

    def rate_at(self, epoch):
        raise NotImplementedError

    def get_lr(self):
        epoch = self.epoch_position()
        if epoch < self.warmup_epochs:
            target = self.rate_at(self.warmup_epochs)
            return self.warmup_start_lr + (target - self.warmup_start_lr) * epoch / self.warmup_epochs
        return self.rate_at(epoch)


@LR_SCHEDULES.register()
class ConstantLR(EpochSchedule):
    """A fixed rate (written in a config as a plain number: `learning_rate: 0.01`)."""

    def __init__(self, learning_rate: PositiveFloat, steps_per_epoch: int,
                 epochs: int | None = None, iter_step: bool = False,
                 warmup_epochs: NonNegative = 0.0, warmup_start_lr: NonNegative = 0.0):
        self.value = float(learning_rate)
        super().__init__(learning_rate, steps_per_epoch, iter_step, warmup_epochs, warmup_start_lr)

    def rate_at(self, epoch):
        return self.value


@LR_SCHEDULES.register()
class PiecewiseDecay(EpochSchedule):
    """`values[i]` from epoch `boundaries[i-1]` on: boundaries [20, 40], values [.02, .002, .0002]
    gives 0.02 for epochs 0-19, 0.002 for 20-39, 0.0002 after (boundaries count epochs)."""

    def __init__(self, boundaries: list[NonNegative], values: list[NonNegative],
                 steps_per_epoch: int, epochs: int | None = None, iter_step: bool = False,
                 warmup_epochs: NonNegative = 0.0, warmup_start_lr: NonNegative = 0.0):
        if len(values) != len(boundaries) + 1:
            raise ConfigError(f"PiecewiseDecay needs one more value than boundaries, got "
                              f"{len(boundaries)} boundaries and {len(values)} values.")
        if list(boundaries) != sorted(boundaries):
            raise ConfigError(f"PiecewiseDecay boundaries must increase, got {list(boundaries)}.")
        self.boundaries = [float(b) for b in boundaries]
        self.values = [float(v) for v in values]
        super().__init__(values[0], steps_per_epoch, iter_step, warmup_epochs, warmup_start_lr)

    def rate_at(self, epoch):
        for boundary, value in zip(self.boundaries, self.values):
            if epoch < boundary:
                return value
        return self.values[-1]


@LR_SCHEDULES.register()
class CosineAnnealingDecay(EpochSchedule):
    """eta_min + (learning_rate - eta_min) * (1 + cos(pi * epoch / T_max)) / 2; T_max defaults to
    the run's epochs."""

    def __init__(self, learning_rate: PositiveFloat, steps_per_epoch: int,
                 epochs: int | None = None, T_max: PositiveFloat | None = None,
                 eta_min: NonNegative = 0.0, iter_step: bool = True,
                 warmup_epochs: NonNegative = 0.0, warmup_start_lr: NonNegative = 0.0):
        self.base, self.eta_min = float(learning_rate), float(eta_min)
        self.t_max = float(T_max or epochs or 1)
        super().__init__(learning_rate, steps_per_epoch, iter_step, warmup_epochs, warmup_start_lr)

    def rate_at(self, epoch):
        epoch = min(epoch, self.t_max)
        return self.eta_min + (self.base - self.eta_min) * (1 + math.cos(math.pi * epoch / self.t_max)) / 2


@LR_SCHEDULES.register()
class CustomWarmupCosineDecay(CosineAnnealingDecay):
    """PaddleVideo's name and keys: linear warm-up from `warmup_start_lr` over `warmup_epochs`,
    then cosine from `cosine_base_lr` to 0 at `max_epoch`, stepped per iteration."""

    def __init__(self, cosine_base_lr: PositiveFloat, steps_per_epoch: int,
                 epochs: int | None = None, warmup_epochs: NonNegative = 0.0,
                 warmup_start_lr: NonNegative = 0.0, max_epoch: PositiveFloat | None = None,
                 iter_step: bool = True):
        super().__init__(cosine_base_lr, steps_per_epoch, epochs, T_max=max_epoch, eta_min=0.0,
                         iter_step=iter_step, warmup_epochs=warmup_epochs,
                         warmup_start_lr=warmup_start_lr)


def build_lr(cfg, steps_per_epoch, epochs=None):
    """OPTIMIZER.learning_rate (a number or {name: ..., ...}) -> an EpochSchedule."""
    if isinstance(cfg, (int, float)):
        return ConstantLR(cfg, steps_per_epoch, epochs)
    if not isinstance(cfg, dict):
        raise ConfigError(f"OPTIMIZER.learning_rate must be a number or a schedule mapping "
                          f"with 'name', got {cfg!r}.")
    if not isinstance(cfg, AttrDict):
        cfg = AttrDict(cfg)
    return LR_SCHEDULES.build(cfg, steps_per_epoch=steps_per_epoch, epochs=epochs)
