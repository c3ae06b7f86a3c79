"""The temporal shift: the whole idea of TSM in one place.

Frames of a clip are stacked in the batch dimension as [N*T, C, H, W]. Shifting a fold of the
channels one step along T lets the 2D convolutions that follow mix information from neighbouring
frames at no extra FLOPs or parameters.

With c = int(C * shift_ratio):
- `bidirectional` (offline TSM): channels [0, c) take frame t-1 and channels [c, 2c) take
  frame t+1 (zeros past either end); the rest stay. This is exactly Paddle's fused
  `paddle.nn.functional.temporal_shift`, which we call.
- `unidirectional` (online TSM): channels [0, c) take frame t-1 (zeros at t = 0); nothing comes
  from the future, so a stream can be processed frame by frame with a one-frame buffer.
- `none`: identity (TSN).

`shift_ratio` is the fraction shifted each way; the paper's default is 1/8 whatever T is.
"""
import paddle
import paddle.nn as nn
import paddle.nn.functional as F

__all__ = ["SHIFT_MODES", "temporal_shift", "TemporalShift", "shift_channels"]

SHIFT_MODES = ("bidirectional", "unidirectional", "none")


def shift_channels(channels, shift_ratio):
    """How many channels move in each direction (the same rounding as Paddle's op)."""
    return int(channels * shift_ratio)


def _shift_from_past(x, num_seg, shift_ratio, data_format):
    """Unidirectional shift composed of reshape/slice/concat, so it exports with any batch size."""
    channel_axis = 1 if data_format == "NCHW" else 3
    fold = shift_channels(x.shape[channel_axis], shift_ratio)
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
    raise ValueError(f"shift_mode must be one of {SHIFT_MODES}, got '{mode}'.")


class TemporalShift(nn.Layer):
    """The shift as a parameter-free layer, so a block's shift can be found (and swapped by the
    online runner, which replaces it with a stateful per-frame version)."""

    def __init__(self, num_seg, shift_ratio=0.125, mode="bidirectional", data_format="NCHW"):
        super().__init__()
        if mode not in SHIFT_MODES:
            raise ValueError(f"shift_mode must be one of {SHIFT_MODES}, got '{mode}'.")
        if not 0 < shift_ratio <= 0.5:
            raise ValueError(f"shift_ratio must be in (0, 0.5] (the fraction shifted each way), "
                             f"got {shift_ratio}.")
        self.num_seg = num_seg
        self.shift_ratio = shift_ratio
        self.mode = mode
        self.data_format = data_format

    def forward(self, x):
        return temporal_shift(x, self.num_seg, self.shift_ratio, self.mode, self.data_format)

    def extra_repr(self):
        return f"num_seg={self.num_seg}, shift_ratio={self.shift_ratio}, mode={self.mode}"
