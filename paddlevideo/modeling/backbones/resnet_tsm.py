"""ResNet with temporal shift (TSM), depths 18 to 152.

Layer names follow PaddleVideo's ResNet-TSM (`conv`, `res2a.conv0._conv.weight`, ...; the third
stage of ResNet-101/152 is `res4a, res4b1, res4b2, ...`), so its released checkpoints load
unchanged. The shift sits on the residual branch of every block (BasicBlock too), except in
ResNet-101/152: when the third stage has 23 or more blocks, blocks 0, 2, 4, ... of *every* stage
shift and the others do not, as in the original TSM code and mmaction2 (18 of ResNet-101's 33
blocks).
"""
from typing import Literal

import paddle
import paddle.nn as nn

from ..registry import BACKBONES
from ..shift import SHIFT_MODES, TemporalShift

__all__ = ["ResNetTSM", "ConvBNLayer", "BasicBlock", "BottleneckBlock", "STAGES"]

# depth -> (block type, blocks per stage)
STAGES = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}
SHIFT_PLACES = ("residual", "inplace")
DEEP_STAGE = 23   # a third stage this deep makes every stage shift only every other block


class ConvBNLayer(nn.Layer):
    """Conv (no bias) + BatchNorm (+ ReLU), named `_conv` and `_batch_norm` as in PaddleVideo."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, act=True,
                 data_format="NCHW"):
        super().__init__()
        self._conv = nn.Conv2D(in_channels, out_channels, kernel_size, stride=stride,
                               padding=(kernel_size - 1) // 2, bias_attr=False,
                               weight_attr=nn.initializer.KaimingNormal(),
                               data_format=data_format)
        self._batch_norm = nn.BatchNorm2D(out_channels, data_format=data_format)
        self._act = nn.ReLU() if act else None

    def forward(self, x):
        x = self._batch_norm(self._conv(x))
        return self._act(x) if self._act is not None else x


class _ShiftBlock(nn.Layer):
    """Shared forward of both block types: shift, residual branch, shortcut, ReLU."""

    def forward(self, x):
        if self.shift is not None and self.shift_place == "inplace":
            x = self.shift(x)
        branch = self.shift(x) if self.shift is not None and self.shift_place == "residual" else x
        for unit in self.branch_units():
            branch = unit(branch)
        identity = self.short(x) if self.short is not None else x
        return self.relu(branch + identity)


class BasicBlock(_ShiftBlock):
    """3x3 -> 3x3, for ResNet-18/34."""
    expansion = 1

    def __init__(self, in_channels, channels, stride, shift, shift_place, data_format):
        super().__init__()
        self.shift, self.shift_place = shift, shift_place
        self.conv0 = ConvBNLayer(in_channels, channels, 3, stride, data_format=data_format)
        self.conv1 = ConvBNLayer(channels, channels, 3, act=False, data_format=data_format)
        self.short = _projection(in_channels, channels, stride, data_format)
        self.relu = nn.ReLU()

    def branch_units(self):
        return (self.conv0, self.conv1)


class BottleneckBlock(_ShiftBlock):
    """1x1 -> 3x3 (carries the stride) -> 1x1 (x4), for ResNet-50/101/152."""
    expansion = 4

    def __init__(self, in_channels, channels, stride, shift, shift_place, data_format):
        super().__init__()
        self.shift, self.shift_place = shift, shift_place
        self.conv0 = ConvBNLayer(in_channels, channels, 1, data_format=data_format)
        self.conv1 = ConvBNLayer(channels, channels, 3, stride, data_format=data_format)
        self.conv2 = ConvBNLayer(channels, channels * 4, 1, act=False, data_format=data_format)
        self.short = _projection(in_channels, channels * 4, stride, data_format)
        self.relu = nn.ReLU()

    def branch_units(self):
        return (self.conv0, self.conv1, self.conv2)


def _projection(in_channels, out_channels, stride, data_format):
    """A 1x1 projection shortcut where the block changes the shape, else None (identity)."""
    if in_channels == out_channels and stride == 1:
        return None
    return ConvBNLayer(in_channels, out_channels, 1, stride, act=False, data_format=data_format)


def _block_name(depth, stage, index):
    """PaddleVideo's names: res2a, res2b, ...; res4a, res4b1, res4b2, ... in deep third stages."""
    prefix = f"res{stage + 2}"
    if depth in (101, 152) and stage == 2:
        return prefix + ("a" if index == 0 else f"b{index}")
    return prefix + chr(ord("a") + index)


@BACKBONES.register()
class ResNetTSM(nn.Layer):
    """ResNet-{18,34,50,101,152} with temporal shift.

    Input: [N*num_seg, 3, H, W] (NCHW whatever `data_format`; NHWC runs transpose on entry and exit).
    Output: the last feature map, NCHW [N*num_seg, C, H/32, W/32].

    Args:
        depth: 18, 34, 50, 101 or 152.
        num_seg: frames per clip (T).
        shift_ratio: fraction of the channels shifted each way (1/8 in the paper).
        shift_mode: 'bidirectional' (TSM), 'unidirectional' (online TSM) or 'none' (TSN).
        shift_place: 'residual' (shift on the residual branch, the paper's choice) or 'inplace'.
        data_format: 'NCHW' or 'NHWC' (faster with AMP on tensor cores).
        pretrained: a path, URL or registered weights name, loaded by the model builder.
    """

    def __init__(self, depth: Literal[18, 34, 50, 101, 152] = 50, num_seg: int = 8,
                 shift_ratio: float = 0.125,
                 shift_mode: Literal["bidirectional", "unidirectional", "none"] = "bidirectional",
                 shift_place: Literal["residual", "inplace"] = "residual",
                 data_format: Literal["NCHW", "NHWC"] = "NCHW", pretrained: str | None = None,
                 in_channels: int = 3):
        super().__init__()
        if depth not in STAGES:
            raise ValueError(f"ResNetTSM depth must be one of {sorted(STAGES)}, got {depth}.")
        if shift_mode not in SHIFT_MODES:
            raise ValueError(f"shift_mode must be one of {SHIFT_MODES}, got '{shift_mode}'.")
        if shift_place not in SHIFT_PLACES:
            raise ValueError(f"shift_place must be one of {SHIFT_PLACES}, got '{shift_place}'.")
        if data_format not in ("NCHW", "NHWC"):
            raise ValueError(f"data_format must be 'NCHW' or 'NHWC', got '{data_format}'.")
        self.depth, self.num_seg, self.data_format = depth, num_seg, data_format
        self.shift_mode, self.shift_ratio, self.pretrained = shift_mode, shift_ratio, pretrained

        kind, blocks = STAGES[depth]
        block_cls = BasicBlock if kind == "basic" else BottleneckBlock
        self.conv = ConvBNLayer(in_channels, 64, 7, stride=2, data_format=data_format)
        self.pool = nn.MaxPool2D(3, stride=2, padding=1, data_format=data_format)
        self.blocks = []
        channels_in = 64
        every = 2 if blocks[2] >= DEEP_STAGE else 1
        for stage, count in enumerate(blocks):
            channels = 64 * 2 ** stage
            for i in range(count):
                shift = None
                if shift_mode != "none" and i % every == 0:
                    shift = TemporalShift(num_seg, shift_ratio, shift_mode, data_format)
                stride = 2 if i == 0 and stage > 0 else 1
                block = block_cls(channels_in, channels, stride, shift, shift_place, data_format)
                self.blocks.append(self.add_sublayer(_block_name(depth, stage, i), block))
                channels_in = channels * block_cls.expansion
        self.out_channels = channels_in

    def forward(self, x):
        if self.data_format == "NHWC":
            x = paddle.transpose(x, [0, 2, 3, 1])
        x = self.pool(self.conv(x))
        for block in self.blocks:
            x = block(x)
        if self.data_format == "NHWC":
            x = paddle.transpose(x, [0, 3, 1, 2])
        return x


@BACKBONES.register()
class ResNet(ResNetTSM):
    """The plain 2D ResNet of TSN: ResNetTSM with no shift (PaddleVideo's name for it)."""

    def __init__(self, depth: Literal[18, 34, 50, 101, 152] = 50, num_seg: int = 8,
                 data_format: Literal["NCHW", "NHWC"] = "NCHW", pretrained: str | None = None,
                 in_channels: int = 3):
        super().__init__(depth=depth, num_seg=num_seg, shift_mode="none", data_format=data_format,
                         pretrained=pretrained, in_channels=in_channels)
