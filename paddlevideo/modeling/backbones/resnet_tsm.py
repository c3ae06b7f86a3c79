"""ResNet with temporal shift (TSM), depths 18 to 152.

Layer names follow PaddleVideo's ResNet-TSM (`conv`, `res2a.conv0._conv.weight`, ...; the third
stage of ResNet-101/152 is `res4a, res4b1, res4b2, ...`), so its released checkpoints load
unchanged. The shift sits on the residual branch of every block (BasicBlock too), except in
ResNet-101/152: when the third stage has 23 or more blocks, blocks 0, 2, 4, ... of *every* stage
shift and the others do not, as in the original TSM code and mmaction2 (18 of ResNet-101's 33
blocks).
"""
from typing import Annotated, Literal

import paddle
import paddle.nn as nn

from ...utils.config import ConfigError
from ...utils.typecheck import Channels, Range, Segments
from ..registry import BACKBONES
from ..shift import SHIFT_MODES, TemporalShift, check_shift_ratio

__all__ = ["ResNetTSM", "block_name", "ConvBNLayer", "BasicBlock", "BottleneckBlock", "STAGES"]

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
    """What both block types share: shift, residual branch, shortcut, ReLU.

    `forward(x)` is the offline block on clips [N*num_seg, ...]. `forward(x, shift_buffer)` is the
    same block on one frame of each stream [B, ...] and returns (out, new_buffer): the shift takes
    the previous frame's channels from `shift_buffer` (see TemporalShift.step). Offline and
    online run this one method, so they cannot drift apart.

    shift_place 'residual' shifts only the branch (the shortcut gets the unshifted input);
    'inplace' shifts the block input, which both the branch and the shortcut then receive.
    """

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
        if self.shift_place == "inplace":
            x = shifted
        out = self.branch(shifted)
        identity = self.short(x) if self.short is not None else x
        out = self.relu(out + identity)
        return out if shift_buffer is None else (out, new_buffer)


class BasicBlock(_ShiftBlock):
    """3x3 -> 3x3, for ResNet-18/34."""
    expansion = 1

    def __init__(self, in_channels, channels, stride, shift, shift_place, data_format):
        super().__init__()
        self.in_channels, self.stride = in_channels, stride
        self.shift, self.shift_place = shift, shift_place
        self.conv0 = ConvBNLayer(in_channels, channels, 3, stride, data_format=data_format)
        self.conv1 = ConvBNLayer(channels, channels, 3, act=False, data_format=data_format)
        self.short = _projection(in_channels, channels, stride, data_format)
        self.relu = nn.ReLU()

    def branch(self, x):
        return self.conv1(self.conv0(x))


class BottleneckBlock(_ShiftBlock):
    """1x1 -> 3x3 (carries the stride) -> 1x1 (x4), for ResNet-50/101/152."""
    expansion = 4

    def __init__(self, in_channels, channels, stride, shift, shift_place, data_format):
        super().__init__()
        self.in_channels, self.stride = in_channels, stride
        self.shift, self.shift_place = shift, shift_place
        self.conv0 = ConvBNLayer(in_channels, channels, 1, data_format=data_format)
        self.conv1 = ConvBNLayer(channels, channels, 3, stride, data_format=data_format)
        self.conv2 = ConvBNLayer(channels, channels * 4, 1, act=False, data_format=data_format)
        self.short = _projection(in_channels, channels * 4, stride, data_format)
        self.relu = nn.ReLU()

    def branch(self, x):
        return self.conv2(self.conv1(self.conv0(x)))


def _projection(in_channels, out_channels, stride, data_format):
    """A 1x1 projection shortcut where the block changes the shape, else None (identity)."""
    if in_channels == out_channels and stride == 1:
        return None
    return ConvBNLayer(in_channels, out_channels, 1, stride, act=False, data_format=data_format)


def block_name(depth, stage, index):
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
    A unidirectional model also runs one frame at a time: `forward_step` (online TSM).

    Args:
        depth: 18, 34, 50, 101 or 152.
        num_seg: frames per clip (T).
        shift_ratio: fraction of the channels shifted each way (1/8 in the paper), in (0, 0.5).
        shift_mode: 'bidirectional' (TSM), 'unidirectional' (online TSM) or 'none' (TSN).
        shift_place: 'residual' (shift on the residual branch, the paper's choice) or 'inplace'.
        data_format: 'NCHW' or 'NHWC' (faster with AMP on tensor cores).
        pretrained: a path, URL or registered weights name, loaded by the model builder.
    """

    def __init__(self, depth: Literal[18, 34, 50, 101, 152] = 50, num_seg: Segments = 8,
                 shift_ratio: Annotated[float, Range(0, 0.5, low_open=True, high_open=True)] = 0.125,
                 shift_mode: Literal["bidirectional", "unidirectional", "none"] = "bidirectional",
                 shift_place: Literal["residual", "inplace"] = "residual",
                 data_format: Literal["NCHW", "NHWC"] = "NCHW", pretrained: str | None = None,
                 in_channels: Channels = 3):
        super().__init__()
        if depth not in STAGES:
            raise ConfigError(f"ResNetTSM depth must be one of {sorted(STAGES)}, got {depth}.")
        if shift_mode not in SHIFT_MODES:
            raise ConfigError(f"shift_mode must be one of {SHIFT_MODES}, got '{shift_mode}'.")
        if shift_place not in SHIFT_PLACES:
            raise ConfigError(f"shift_place must be one of {SHIFT_PLACES}, got '{shift_place}'.")
        if data_format not in ("NCHW", "NHWC"):
            raise ConfigError(f"data_format must be 'NCHW' or 'NHWC', got '{data_format}'.")
        if shift_mode != "none":
            check_shift_ratio(shift_ratio)
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
                    if shift.fold(channels_in) == 0:
                        raise ConfigError(
                            f"shift_ratio {shift_ratio} shifts no channel of the "
                            f"{channels_in}-channel input of {block_name(depth, stage, i)} "
                            f"(int({channels_in} * {shift_ratio}) = 0); use at least "
                            f"1/{channels_in}.")
                stride = 2 if i == 0 and stage > 0 else 1
                block = block_cls(channels_in, channels, stride, shift, shift_place, data_format)
                self.blocks.append(self.add_sublayer(block_name(depth, stage, i), block))
                channels_in = channels * block_cls.expansion
        self.out_channels = channels_in

    def _stem(self, x):
        if self.data_format == "NHWC":
            x = paddle.transpose(x, [0, 2, 3, 1])
        return self.pool(self.conv(x))

    def _to_nchw(self, x):
        return paddle.transpose(x, [0, 3, 1, 2]) if self.data_format == "NHWC" else x

    def forward(self, x):
        x = self._stem(x)
        for block in self.blocks:
            x = block(x)
        return self._to_nchw(x)

    # online TSM: the same blocks, one frame at a time

    def check_online(self):
        """Refuse a model whose shift cannot run frame by frame (anything but unidirectional)."""
        if self.shift_mode != "unidirectional":
            raise ConfigError(
                f"online TSM needs a unidirectional model (MODEL.backbone.shift_mode: "
                f"unidirectional, trained so); this one is '{self.shift_mode}'"
                + (", whose shift reads the next frame, which a stream does not have yet."
                   if self.shift_mode == "bidirectional" else "."))

    def shifting_blocks(self):
        """The blocks that shift, in order: one buffer each (ResNet-101/152: every other block)."""
        return [b for b in self.blocks if b.shift is not None]

    def buffer_shapes(self, height, width=None):
        """Per-stream shape of each shifting block's buffer for frames of height x width (square
        by default): [c1, h, w] in NCHW, [h, w, c1] in NHWC, h and w the block input's size."""
        self.check_online()
        h, w = height, width or height
        h, w = [_downsampled(_downsampled(n, 2), 2) for n in (h, w)]        # stem conv, max-pool
        shapes = []
        for block in self.blocks:
            if block.shift is not None:
                shapes.append(block.shift.buffer_shape(block.in_channels, h, w))
            h, w = _downsampled(h, block.stride), _downsampled(w, block.stride)
        return shapes

    def forward_step(self, frame, buffers=None):
        """One frame of each of B streams: frame [B, 3, H, W] (NCHW) and the buffers the previous
        step returned (None: a new stream, zero buffers) -> (features NCHW [B, C, h, w], new
        buffers). Frame t of a stream gives what the offline unidirectional model gives for
        frame t of a clip that starts with the stream."""
        self.check_online()
        count = len(self.shifting_blocks())
        if buffers is not None and len(buffers) != count:
            raise ValueError(f"ResNet-{self.depth} TSM has {count} shifting blocks, so {count} "
                             f"shift buffers; got {len(buffers)}.")
        x = self._stem(frame)
        new_buffers = []
        for block in self.blocks:
            if block.shift is None:
                x = block(x)
                continue
            k = len(new_buffers)
            buffer = block.shift.zero_buffer(x) if buffers is None else buffers[k]
            x, new_buffer = block(x, buffer)
            new_buffers.append(new_buffer)
        return self._to_nchw(x), new_buffers


def _downsampled(size, stride):
    """Output size of every strided layer here (3x3 pad 1, 1x1 pad 0, 7x7 pad 3, max-pool 3
    pad 1 all give the same)."""
    return (size - 1) // stride + 1


@BACKBONES.register()
class ResNet(ResNetTSM):
    """The plain 2D ResNet of TSN: ResNetTSM with no shift (PaddleVideo's name for it)."""

    def __init__(self, depth: Literal[18, 34, 50, 101, 152] = 50, num_seg: Segments = 8,
                 data_format: Literal["NCHW", "NHWC"] = "NCHW", pretrained: str | None = None,
                 in_channels: Channels = 3):
        super().__init__(depth=depth, num_seg=num_seg, shift_mode="none", data_format=data_format,
                         pretrained=pretrained, in_channels=in_channels)
