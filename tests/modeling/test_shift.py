"""The temporal shift against a NumPy reference, forward and backward, and its effect in blocks."""
import numpy as np
import paddle
import pytest

from paddlevideo.modeling import shift as shift_module
from paddlevideo.modeling.backbones.resnet_tsm import ResNetTSM
from paddlevideo.modeling.shift import TemporalShift, temporal_shift


def shift_reference(x, num_seg, ratio, mode, data_format, adjoint=False):
    """out[t] = x[t-1] on the first fold, x[t+1] on the second (bidirectional only), zero-padded.

    With adjoint=True, the transposed map (what the gradient of sum(out * g) w.r.t. x is).
    """
    if data_format == "NHWC":
        x = x.transpose(0, 3, 1, 2)
    nt, c, h, w = x.shape
    clip = x.reshape(nt // num_seg, num_seg, c, h, w)
    out = clip.copy()
    fold = int(c * ratio)
    past = np.zeros_like(clip[:, :, :fold])
    future = np.zeros_like(clip[:, :, fold:2 * fold])
    if not adjoint:
        past[:, 1:] = clip[:, :-1, :fold]                 # from t-1
        future[:, :-1] = clip[:, 1:, fold:2 * fold]       # from t+1
    else:
        past[:, :-1] = clip[:, 1:, :fold]
        future[:, 1:] = clip[:, :-1, fold:2 * fold]
    if mode != "none":
        out[:, :, :fold] = past
        if mode == "bidirectional":
            out[:, :, fold:2 * fold] = future
    out = out.reshape(nt, c, h, w)
    return out.transpose(0, 2, 3, 1) if data_format == "NHWC" else out


CASES = [(mode, fmt, ratio, seg)
         for mode in ("bidirectional", "unidirectional", "none")
         for fmt in ("NCHW", "NHWC")
         for ratio, seg in ((0.125, 8), (0.25, 4), (1 / 16, 2), (0.125, 3), (0.5 * 0.75, 5))]


@pytest.mark.parametrize("mode,data_format,ratio,num_seg", CASES)
def test_shift_matches_numpy_forward_and_gradient(mode, data_format, ratio, num_seg):
    rng = np.random.default_rng(0)
    shape = [2 * num_seg, 16, 3, 5] if data_format == "NCHW" else [2 * num_seg, 3, 5, 16]
    x_np = rng.standard_normal(shape).astype("float32")
    g_np = rng.standard_normal(shape).astype("float32")
    x = paddle.to_tensor(x_np, stop_gradient=False)
    out = temporal_shift(x, num_seg, ratio, mode, data_format)
    np.testing.assert_array_equal(out.numpy(), shift_reference(x_np, num_seg, ratio, mode, data_format))
    (out * paddle.to_tensor(g_np)).sum().backward()
    expected = shift_reference(g_np, num_seg, ratio, mode, data_format, adjoint=True)
    np.testing.assert_array_equal(x.grad.numpy(), expected)


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
    with pytest.raises(ValueError, match="shift_mode"):
        TemporalShift(8, 0.125, mode="sideways")
    with pytest.raises(ValueError, match="shift_ratio"):
        TemporalShift(8, 0.75)


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
