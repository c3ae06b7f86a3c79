"""The temporal shift against a NumPy reference, forward and backward, and its effect in blocks."""
import numpy as np
import paddle
import pytest

import paddle.nn.functional as F

from paddlevideo.modeling import shift as shift_module
from paddlevideo.modeling.backbones.resnet_tsm import ResNetTSM
from paddlevideo.modeling.shift import TemporalShift, shift_folds, temporal_shift
from paddlevideo.utils.config import ConfigError


# (channels, shift_ratio, segments, (c1, c2)): the folds worked out by hand from Paddle's kernel
# (paddle/phi/kernels/{cpu,gpu}/temporal_shift_kernel): c1 = int(C * r), c2 = int(C * 2 * r), in
# float32. c2 is not 2 * c1 when C * r is not whole (20 / 8 = 2.5: c1 = 2, c2 = 5), and float32
# matters: 30 * 0.7/3 is 7.0000005 in float32 (c1 = 7), 6.9999... in float64 (6).
FOLD_CASES = [(16, 0.125, 8, (2, 4)), (16, 0.25, 4, (4, 8)), (16, 1 / 16, 2, (1, 2)),
              (16, 0.125, 3, (2, 4)), (16, 0.375, 5, (6, 12)), (20, 0.125, 4, (2, 5)),
              (12, 0.3, 3, (3, 7)), (15, 0.7 / 3, 4, (3, 7)), (30, 0.7 / 3, 2, (7, 14))]


def shift_reference(x, num_seg, folds, mode, data_format, adjoint=False):
    """out[t] = x[t-1] on channels [0, c1), x[t+1] on [c1, c2) (bidirectional only), zero-padded.

    With adjoint=True, the transposed map (what the gradient of sum(out * g) w.r.t. x is).
    """
    if data_format == "NHWC":
        x = x.transpose(0, 3, 1, 2)
    nt, c, h, w = x.shape
    c1, c2 = folds
    clip = x.reshape(nt // num_seg, num_seg, c, h, w)
    out = clip.copy()
    past = np.zeros_like(clip[:, :, :c1])
    future = np.zeros_like(clip[:, :, c1:c2])
    if not adjoint:
        past[:, 1:] = clip[:, :-1, :c1]                   # from t-1
        future[:, :-1] = clip[:, 1:, c1:c2]               # from t+1
    else:
        past[:, :-1] = clip[:, 1:, :c1]
        future[:, 1:] = clip[:, :-1, c1:c2]
    if mode != "none":
        out[:, :, :c1] = past
        if mode == "bidirectional":
            out[:, :, c1:c2] = future
    out = out.reshape(nt, c, h, w)
    return out.transpose(0, 2, 3, 1) if data_format == "NHWC" else out


def _random(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape).astype("float32")


def _shape(frames, channels, data_format):
    return [frames, channels, 3, 5] if data_format == "NCHW" else [frames, 3, 5, channels]


def test_shift_folds_match_the_hand_worked_kernel_arithmetic():
    for channels, ratio, _, folds in FOLD_CASES:
        assert shift_folds(channels, ratio) == folds, (channels, ratio)


def _observed_folds(channels, ratio):
    """(c1, c2) read off Paddle's op: at t=0 the channels from the past are zero, at t=1 those
    from the future."""
    marker = 1 + np.arange(channels, dtype="float32")
    x = np.stack([marker, marker + 1000])[:, :, None, None]              # 2 frames
    out = F.temporal_shift(paddle.to_tensor(x), seg_num=2, shift_ratio=ratio).numpy()[:, :, 0, 0]
    from_past, from_future = out[0] == 0, out[1] == 0
    c1 = int(from_past.sum())
    c2 = c1 + int(from_future.sum())
    assert from_past[:c1].all() and from_future[c1:c2].all()            # contiguous folds
    return c1, c2


def test_shift_folds_equal_paddles_op_for_every_ratio():
    ratios = [0.125, 1 / 16, 0.3, 0.7 / 3, 0.35, 1 / 3, 0.1, 0.45, 0.2, 0.4999]
    for ratio in ratios:
        for channels in list(range(1, 97)) + [256, 2048]:
            assert shift_folds(channels, ratio) == _observed_folds(channels, ratio), \
                (channels, ratio)


CASES = [(mode, fmt, channels, ratio, seg, folds)
         for mode in ("bidirectional", "unidirectional", "none")
         for fmt in ("NCHW", "NHWC")
         for channels, ratio, seg, folds in FOLD_CASES]


@pytest.mark.parametrize("mode,data_format,channels,ratio,num_seg,folds", CASES)
def test_shift_matches_numpy_forward_and_gradient(mode, data_format, channels, ratio, num_seg,
                                                  folds):
    shape = _shape(2 * num_seg, channels, data_format)
    x_np, g_np = _random(shape, 0), _random(shape, 1)
    x = paddle.to_tensor(x_np, stop_gradient=False)
    out = temporal_shift(x, num_seg, ratio, mode, data_format)
    np.testing.assert_array_equal(out.numpy(),
                                  shift_reference(x_np, num_seg, folds, mode, data_format))
    (out * paddle.to_tensor(g_np)).sum().backward()
    expected = shift_reference(g_np, num_seg, folds, mode, data_format, adjoint=True)
    np.testing.assert_array_equal(x.grad.numpy(), expected)


@pytest.mark.parametrize("data_format", ["NCHW", "NHWC"])
@pytest.mark.parametrize("channels,ratio,num_seg,folds", [c for c in FOLD_CASES if c[0] != 16])
def test_stepping_frame_by_frame_equals_the_offline_unidirectional_shift(channels, ratio, num_seg,
                                                                         folds, data_format):
    """Two streams stepped together from zero buffers give the offline shift of their clips."""
    layer = TemporalShift(num_seg, ratio, "unidirectional", data_format)
    clips = _random([2, num_seg] + _shape(1, channels, data_format)[1:], 2)
    offline = shift_reference(clips.reshape([2 * num_seg] + list(clips.shape[2:])), num_seg,
                              folds, "unidirectional", data_format)
    buffer, stepped = None, []
    for t in range(num_seg):
        frame = paddle.to_tensor(clips[:, t])
        if buffer is None:
            buffer = layer.zero_buffer(frame)
            assert list(buffer.shape[1:]) == layer.buffer_shape(channels, 3, 5)
        out, buffer = layer.step(frame, buffer)
        stepped.append(out.numpy())
    np.testing.assert_array_equal(np.stack(stepped, 1).reshape(offline.shape), offline)
    assert layer.fold(channels) == folds[0]


def test_step_refuses_other_modes_and_wrong_buffers():
    frame = paddle.randn([1, 16, 2, 2])
    with pytest.raises(ConfigError, match="only a unidirectional shift runs frame by frame"):
        TemporalShift(4, 0.125, "bidirectional").step(frame, paddle.zeros([1, 2, 2, 2]))
    with pytest.raises(ValueError,
                       match=r"shift buffer of shape \[3, 2, 2\].*expected \[2, 2, 2\]"):
        TemporalShift(4, 0.125, "unidirectional").step(frame, paddle.zeros([1, 3, 2, 2]))


def test_shift_ratio_is_independent_of_num_seg():
    x = paddle.ones([8 * 2, 64, 1, 1])
    out = temporal_shift(x, 8, 0.125).numpy().reshape(2, 8, 64)
    # frame 0 lost exactly the 8 channels that come from the (absent) past
    assert (out[:, 0] == 0).sum(axis=1).tolist() == [8, 8]
    out4 = temporal_shift(paddle.ones([4, 64, 1, 1]), 4, 0.125).numpy().reshape(4, 64)
    assert (out4[0] == 0).sum() == 8


def test_bidirectional_calls_the_fused_op(monkeypatch):
    calls = []
    fused = shift_module.F.temporal_shift

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return fused(*args, **kwargs)

    monkeypatch.setattr(shift_module.F, "temporal_shift", spy)
    TemporalShift(4, 0.125)(paddle.randn([8, 16, 2, 2]))
    assert calls and calls[0]["seg_num"] == 4 and calls[0]["shift_ratio"] == 0.125


def test_bad_shift_arguments_are_rejected():
    with pytest.raises(ConfigError, match="shift_mode"):
        TemporalShift(8, 0.125, mode="sideways")
    for ratio in (0.75, 0.5, 0, -0.125, "1/8", True):       # Paddle's op itself refuses 0.5
        with pytest.raises(ConfigError, match=r"shift_ratio must be a number in \(0, 0.5\)"):
            TemporalShift(8, ratio)
    TemporalShift(8, 0.4999)


def test_a_ratio_that_shifts_no_channel_of_a_block_is_refused():
    # 64 * 0.01 = 0.64: the 64-channel blocks would silently not shift (a TSN in TSM clothing)
    with pytest.raises(ConfigError, match=r"shift_ratio 0.01 shifts no channel of the 64-channel "
                                          r"input of res2a .*at least 1/64"):
        ResNetTSM(depth=18, shift_ratio=0.01)
    ResNetTSM(depth=18, shift_ratio=1 / 64)
    ResNetTSM(depth=18, shift_ratio=0.01, shift_mode="none")   # TSN: the ratio is unused


def _frame_features(layer, x, num_seg):
    """Run `layer` in eval mode on [num_seg, ...] and return per-frame outputs as numpy."""
    layer.eval()
    with paddle.no_grad():
        return layer(paddle.to_tensor(x)).numpy().reshape(num_seg, -1)


def _changed_frames(layer, num_seg, t, shape):
    rng = np.random.default_rng(1)
    x = rng.standard_normal([num_seg] + shape).astype("float32")
    y = x.copy()
    y[t] += rng.standard_normal(shape).astype("float32")
    a, b = _frame_features(layer, x, num_seg), _frame_features(layer, y, num_seg)
    return [i for i in range(num_seg) if not np.allclose(a[i], b[i], atol=1e-6)]


@pytest.mark.parametrize("mode,expected", [("bidirectional", [2, 3, 4]),
                                           ("unidirectional", [3, 4]),
                                           ("none", [3])])
def test_one_block_mixes_exactly_the_neighbouring_frames(mode, expected):
    paddle.seed(0)
    backbone = ResNetTSM(depth=18, num_seg=6, shift_mode=mode)
    block = backbone.res2a            # 64 -> 64, stride 1: frame order is kept through the block
    assert _changed_frames(block, 6, 3, [64, 4, 4]) == expected


@pytest.mark.parametrize("mode", ["bidirectional", "unidirectional", "none"])
def test_whole_backbone_time_dependence(mode):
    paddle.seed(0)
    backbone = ResNetTSM(depth=18, num_seg=6, shift_mode=mode)
    changed = _changed_frames(backbone, 6, 2, [3, 32, 32])
    if mode == "bidirectional":
        assert changed == [0, 1, 2, 3, 4, 5]          # many shifting blocks reach every frame
    elif mode == "unidirectional":
        assert changed == [2, 3, 4, 5]                # causal: the past is never affected
    else:
        assert changed == [2]
