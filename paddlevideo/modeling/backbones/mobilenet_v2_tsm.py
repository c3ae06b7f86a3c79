"""MobileNetV2 (width 1.0, ReLU6) with temporal shift: the network of TSM's online gesture demo.

Layout as torchvision and the original TSM code build it: a 3x3 stride-2 conv-BN-ReLU6 stem
(`conv`), 17 inverted residual blocks `ir1` ... `ir17` (numbered as the original's `features.1`
... `features.17`; each an optional 1x1 `expand`, a 3x3 `depthwise` and a linear 1x1 `project`,
every conv followed by BatchNorm), a 1x1 conv-BN-ReLU6 to 1280 channels (`conv_last`).

The shift sits where the original puts it: on the input of the first (expansion) conv of the 10
blocks with a residual connection (ir3, ir5, ir6, ir8, ir9, ir10, ir12, ir13, ir15, ir16); the
residual adds the unshifted input. Offline (`ops/models.py`) the shift is bidirectional; online
(`online_demo/mobilenet_v2_tsm.py`) it is unidirectional and each shifting block keeps a buffer.
One block class serves both with the ResNet blocks' contract: `forward(x)` on clips, and
`forward(x, shift_buffer) -> (out, new_buffer)` on one frame per stream.
"""
from typing import Literal

import paddle.nn as nn

from ...utils.config import ConfigError
from ..registry import BACKBONES
from ..shift import SHIFT_MODES, TemporalShift, check_shift_ratio

__all__ = ["MobileNetV2TSM", "MobileNetV2", "BLOCKS", "InvertedResidual", "ConvBN"]

# (expand ratio, output channels, repeats, stride of the first repeat): MobileNetV2 width 1.0
SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
            (6, 160, 3, 2), (6, 320, 1, 1))
STEM_CHANNELS, LAST_CHANNELS = 32, 1280


def _block_table():
    """[(in, out, stride, expand ratio)] of the 17 inverted residual blocks, in order."""
    table, channels = [], STEM_CHANNELS
    for expand, out, repeats, stride in SETTINGS:
        for i in range(repeats):
            table.append((channels, out, stride if i == 0 else 1, expand))
            channels = out
    return tuple(table)


BLOCKS = _block_table()


class ConvBN(nn.Layer):
    """Conv (no bias) + BatchNorm (eps 1e-5) (+ ReLU6), named `_conv`/`_batch_norm` like the
    ResNet units so converters and loaders treat both alike."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, groups=1, act=True):
        super().__init__()
        self._conv = nn.Conv2D(in_channels, out_channels, kernel_size, stride=stride,
                               padding=(kernel_size - 1) // 2, groups=groups, bias_attr=False,
                               weight_attr=nn.initializer.KaimingNormal())
        self._batch_norm = nn.BatchNorm2D(out_channels, epsilon=1e-5)
        self._act = nn.ReLU6() if act else None

    def forward(self, x):
        x = self._batch_norm(self._conv(x))
        return self._act(x) if self._act is not None else x


class InvertedResidual(nn.Layer):
    """expand (1x1, if ratio > 1) -> depthwise 3x3 (carries the stride) -> project (1x1, linear),
    plus the input when shape allows (`use_res`). `shift` (or None) acts on the expand conv's
    input, the residual gets the unshifted input, as in the original."""

    def __init__(self, in_channels, out_channels, stride, expand_ratio, shift=None):
        super().__init__()
        hidden = in_channels * expand_ratio
        self.in_channels, self.stride, self.shift = in_channels, stride, shift
        self.use_res = stride == 1 and in_channels == out_channels
        self.expand = ConvBN(in_channels, hidden, 1) if expand_ratio != 1 else None
        self.depthwise = ConvBN(hidden, hidden, 3, stride, groups=hidden)
        self.project = ConvBN(hidden, out_channels, 1, act=False)

    def forward(self, x, shift_buffer=None):
        new_buffer = None
        if self.shift is None:
            if shift_buffer is not None:
                raise ValueError(f"{self.full_name()} does not shift; it takes no shift buffer.")
            shifted = x
        elif shift_buffer is None:
            shifted = self.shift(x)
        else:
            shifted, new_buffer = self.shift.step(x, shift_buffer)
        out = self.expand(shifted) if self.expand is not None else shifted
        out = self.project(self.depthwise(out))
        if self.use_res:
            out = out + x
        return out if shift_buffer is None else (out, new_buffer)


@BACKBONES.register()
class MobileNetV2TSM(nn.Layer):
    """MobileNetV2 with temporal shift in its 10 residual blocks.

    Input [N*num_seg, 3, H, W]; output the 1280-channel feature map [N*num_seg, 1280, H/32, W/32].
    A unidirectional model also runs one frame at a time (`forward_step`, online TSM), with the
    same per-frame step interface as ResNetTSM, so export --online and online_predict work.

    Args:
        num_seg: frames per clip (T).
        shift_ratio: fraction of the channels shifted each way (1/8 in the original).
        shift_mode: 'bidirectional' (offline TSM), 'unidirectional' (online TSM) or 'none' (TSN).
        pretrained: a path, URL or registered weights name, loaded by the model builder.
    """

    def __init__(self, num_seg: int = 8, shift_ratio: float = 0.125,
                 shift_mode: Literal["bidirectional", "unidirectional", "none"] = "bidirectional",
                 pretrained: str | None = None, in_channels: int = 3):
        super().__init__()
        if shift_mode not in SHIFT_MODES:
            raise ConfigError(f"shift_mode must be one of {SHIFT_MODES}, got '{shift_mode}'.")
        if shift_mode != "none":
            check_shift_ratio(shift_ratio)
        self.num_seg, self.shift_mode, self.shift_ratio = num_seg, shift_mode, shift_ratio
        self.pretrained, self.data_format = pretrained, "NCHW"
        self.conv = ConvBN(in_channels, STEM_CHANNELS, 3, stride=2)
        self.blocks = []
        for index, (c_in, c_out, stride, expand) in enumerate(BLOCKS, start=1):
            shift = None
            if shift_mode != "none" and stride == 1 and c_in == c_out:
                shift = TemporalShift(num_seg, shift_ratio, shift_mode)
                if shift.fold(c_in) == 0:
                    raise ConfigError(f"shift_ratio {shift_ratio} shifts no channel of the "
                                      f"{c_in}-channel input of ir{index}; use at least 1/{c_in}.")
            block = InvertedResidual(c_in, c_out, stride, expand, shift)
            self.blocks.append(self.add_sublayer(f"ir{index}", block))
        self.conv_last = ConvBN(BLOCKS[-1][1], LAST_CHANNELS, 1)
        self.out_channels = LAST_CHANNELS

    def forward(self, x):
        x = self.conv(x)
        for block in self.blocks:
            x = block(x)
        return self.conv_last(x)

    def shift_layout(self):
        """(indices of the shifting blocks, 1-based as the original's `features.i`, {(mode,
        ratio, place)}): what a converted checkpoint's shift must match."""
        shifted = tuple(i for i, b in enumerate(self.blocks, start=1) if b.shift is not None)
        settings = {(b.shift.mode, float(b.shift.shift_ratio), "residual")
                    for b in self.blocks if b.shift is not None}
        return shifted, settings

    # online TSM: the same blocks, one frame at a time

    def check_online(self):
        """Refuse a model whose shift cannot run frame by frame (anything but unidirectional)."""
        if self.shift_mode != "unidirectional":
            raise ConfigError(
                f"online TSM needs a unidirectional model (MODEL.backbone.shift_mode: "
                f"unidirectional, trained so); this MobileNetV2 is '{self.shift_mode}'.")

    def shifting_blocks(self):
        return [b for b in self.blocks if b.shift is not None]

    def buffer_shapes(self, height, width=None):
        """Per-stream [c1, h, w] of each shifting block's buffer for frames of height x width."""
        self.check_online()
        h, w = _downsampled(height, 2), _downsampled(width or height, 2)   # the stem
        shapes = []
        for block in self.blocks:
            if block.shift is not None:
                shapes.append(block.shift.buffer_shape(block.in_channels, h, w))
            h, w = _downsampled(h, block.stride), _downsampled(w, block.stride)
        return shapes

    def forward_step(self, frame, buffers=None):
        """frame [B, 3, H, W] and the previous step's buffers (None: new streams, zero buffers)
        -> (features [B, 1280, h, w], new buffers), as ResNetTSM.forward_step."""
        self.check_online()
        count = len(self.shifting_blocks())
        if buffers is not None and len(buffers) != count:
            raise ValueError(f"MobileNetV2 TSM has {count} shifting blocks, so {count} shift "
                             f"buffers; got {len(buffers)}.")
        x = self.conv(frame)
        new_buffers = []
        for block in self.blocks:
            if block.shift is None:
                x = block(x)
                continue
            k = len(new_buffers)
            buffer = block.shift.zero_buffer(x) if buffers is None else buffers[k]
            x, new_buffer = block(x, buffer)
            new_buffers.append(new_buffer)
        return self.conv_last(x), new_buffers


def _downsampled(size, stride):
    """Output size of a 3x3 pad-1 (or 1x1) layer of this stride."""
    return (size - 1) // stride + 1


@BACKBONES.register()
class MobileNetV2(MobileNetV2TSM):
    """The plain 2D MobileNetV2 of TSN: no shift."""

    def __init__(self, num_seg: int = 8, pretrained: str | None = None, in_channels: int = 3):
        super().__init__(num_seg=num_seg, shift_mode="none", pretrained=pretrained,
                         in_channels=in_channels)
