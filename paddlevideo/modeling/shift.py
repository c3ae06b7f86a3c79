"""The temporal shift: the whole idea of TSM in one place.

Frames of a clip are stacked in the batch dimension as [N*T, C, H, W]. Shifting a fold of the
channels one step along T lets the 2D convolutions that follow mix information from neighbouring
frames at no extra FLOPs or parameters.

With (c1, c2) = shift_folds(C, shift_ratio), i.e. c1 = int(C * r) and c2 = int(2 * C * r) computed
as Paddle's kernel does (float32; c2 is NOT 2 * c1 when C * r is not a whole number):
- `bidirectional` (offline TSM): channels [0, c1) take frame t-1 and channels [c1, c2) take
  frame t+1 (zeros past either end); the rest stay. This is exactly Paddle's fused
  `paddle.nn.functional.temporal_shift`, which we call.
- `unidirectional` (online TSM): channels [0, c1) take frame t-1 (zeros at t = 0); nothing comes
  from the future, so a stream can be processed frame by frame with a one-frame buffer
  (`TemporalShift.step`).
- `none`: identity (TSN).

`shift_ratio` is the fraction shifted each way; the paper's default is 1/8 whatever T is.
"""
import numbers

import numpy as np
import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from ..utils.config import ConfigError

__all__ = ["SHIFT_MODES", "temporal_shift", "TemporalShift", "shift_folds", "check_shift_ratio"]

SHIFT_MODES = ("bidirectional", "unidirectional", "none")


def shift_folds(channels, shift_ratio):
    """(c1, c2): channels [0, c1) come from frame t-1 and [c1, c2) from t+1.

    The same arithmetic as Paddle's temporal_shift kernel (CPU and GPU): the ratio is a float32
    attribute and `int(c * r)`, `int(c * 2 * r)` are evaluated in float32, which differs from
    float64 for some ratios (C=15, r=0.7/3 gives (3, 7) in float32, (3, 6) in float64).
    """
    ratio = np.float32(shift_ratio)
    return int(np.float32(channels) * ratio), int(np.float32(2 * channels) * ratio)


def check_shift_ratio(shift_ratio):
    """Refuse a ratio outside (0, 0.5): Paddle's op rejects 0.5 and above, 0 shifts nothing."""
    if isinstance(shift_ratio, bool) or not isinstance(shift_ratio, numbers.Real) \
            or not 0 < shift_ratio < 0.5:
        raise ConfigError(f"shift_ratio must be a number in (0, 0.5), the fraction of channels "
                          f"shifted each way (the paper uses 0.125), got {shift_ratio!r}.")


def _channel_axis(data_format):
    return 1 if data_format == "NCHW" else 3


def _shift_from_past(x, num_seg, shift_ratio, data_format):
    """Unidirectional shift composed of reshape/slice/concat, so it exports with any batch size."""
    channel_axis = _channel_axis(data_format)
    fold = shift_folds(x.shape[channel_axis], shift_ratio)[0]
    if fold == 0:
        return x
    clip = paddle.reshape(x, [-1, num_seg] + list(x.shape[1:]))          # [N, T, ...]
    axis = channel_axis + 1
    past, keep = paddle.split(clip, [fold, clip.shape[axis] - fold], axis=axis)
    first = paddle.zeros_like(past[:, :1])
    past = paddle.concat([first, past[:, :-1]], axis=1)                  # frame t gets t-1
    out = paddle.concat([past, keep], axis=axis)
    return paddle.reshape(out, [-1] + list(x.shape[1:]))


def temporal_shift(x, num_seg, shift_ratio=0.125, mode="bidirectional", data_format="NCHW"):
    """Shift `x` [N*num_seg, C, H, W] (or NHWC) along time; see the module docstring."""
    if mode == "bidirectional":
        return F.temporal_shift(x, seg_num=num_seg, shift_ratio=shift_ratio, data_format=data_format)
    if mode == "unidirectional":
        return _shift_from_past(x, num_seg, shift_ratio, data_format)
    if mode == "none":
        return x
    raise ConfigError(f"shift_mode must be one of {SHIFT_MODES}, got '{mode}'.")


class TemporalShift(nn.Layer):
    """The shift as a parameter-free layer, owned by the block it feeds.

    `forward(x)` shifts a stack of clips [N*num_seg, ...] (offline). `step(x, buffer)` is the same
    unidirectional shift for one frame of each stream [B, ...]: `buffer` holds the first c1
    channels of the previous frame's input (zeros for a stream's first frame) and replaces those
    channels of `x`; it returns (shifted, new_buffer), new_buffer being `x`'s own first c1
    channels. Stepping T frames from a zero buffer gives exactly the offline unidirectional shift.
    """

    def __init__(self, num_seg, shift_ratio=0.125, mode="bidirectional", data_format="NCHW"):
        super().__init__()
        if mode not in SHIFT_MODES:
            raise ConfigError(f"shift_mode must be one of {SHIFT_MODES}, got '{mode}'.")
        check_shift_ratio(shift_ratio)
        self.num_seg = num_seg
        self.shift_ratio = shift_ratio
        self.mode = mode
        self.data_format = data_format
        self.channel_axis = _channel_axis(data_format)

    def forward(self, x):
        return temporal_shift(x, self.num_seg, self.shift_ratio, self.mode, self.data_format)

    def fold(self, channels):
        """Channels taken from the previous frame (= the buffer's channel count)."""
        return shift_folds(channels, self.shift_ratio)[0]

    def buffer_shape(self, channels, height, width):
        """One stream's buffer: [c1, h, w] (NCHW) or [h, w, c1] (NHWC)."""
        fold = self.fold(channels)
        return [fold, height, width] if self.channel_axis == 1 else [height, width, fold]

    def zero_buffer(self, x):
        """The buffer of a stream's first frame, for frames `x` [B, ...]: zeros."""
        channels = x.shape[self.channel_axis]
        fold = self.fold(channels)
        return paddle.zeros_like(paddle.split(x, [fold, channels - fold], self.channel_axis)[0])

    def step(self, x, buffer):
        """(shifted x, new buffer) for one frame of each stream; see the class docstring."""
        if self.mode != "unidirectional":
            raise ConfigError(f"only a unidirectional shift runs frame by frame; this one is "
                              f"'{self.mode}' (MODEL.backbone.shift_mode).")
        axis = self.channel_axis
        channels = x.shape[axis]
        fold = self.fold(channels)
        want = self.buffer_shape(channels, *[x.shape[a] for a in (1, 2, 3) if a != axis])
        if list(buffer.shape[1:]) != want:
            raise ValueError(f"shift buffer of shape {list(buffer.shape[1:])} for a frame of "
                             f"shape {list(x.shape[1:])}; expected {want}.")
        new_buffer, keep = paddle.split(x, [fold, channels - fold], axis=axis)
        return paddle.concat([buffer, keep], axis=axis), new_buffer

    def extra_repr(self):
        return f"num_seg={self.num_seg}, shift_ratio={self.shift_ratio}, mode={self.mode}"
