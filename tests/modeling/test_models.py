"""Every depth builds and trains a step; layouts agree; the recognizer's contract holds."""
import numpy as np
import paddle
import pytest

from paddlevideo.modeling import build_model
from paddlevideo.modeling.backbones.resnet_tsm import STAGES, BottleneckBlock, ResNetTSM
from paddlevideo.modeling.shift import temporal_shift
from paddlevideo.utils.config import AttrDict, ConfigError


def model_cfg(depth=18, num_seg=4, num_classes=5, **backbone):
    return AttrDict(framework="Recognizer2D",
                    backbone=AttrDict(name="ResNetTSM", depth=depth, num_seg=num_seg, **backbone),
                    head=AttrDict(name="TSMHead", num_classes=num_classes,
                                  in_channels=512 if depth < 50 else 2048))


@pytest.mark.parametrize("depth", sorted(STAGES))
def test_every_depth_runs_forward_and_backward(depth):
    paddle.seed(0)
    model = build_model(model_cfg(depth, num_seg=2))
    imgs = paddle.randn([1, 2, 3, 32, 32])
    out = model.train_step([imgs, paddle.to_tensor([3])])
    assert out["loss"].shape == [] and np.isfinite(out["loss"].item())
    out["loss"].backward()
    grads = [p.grad for p in model.parameters() if not p.stop_gradient]
    assert all(g is not None for g in grads)
    assert float(model.backbone.conv._conv.weight.grad.abs().sum()) > 0


@pytest.mark.parametrize("depth,shifting", [(18, {"res2a": True, "res2b": True, "res5b": True}),
                                            (50, {f"res{s}{b}": True for s in (2, 5) for b in "abc"})])
def test_every_block_shifts_in_shallow_stages(depth, shifting):
    backbone = ResNetTSM(depth=depth)
    for name, shifts in shifting.items():
        assert (getattr(backbone, name).shift is not None) == shifts


@pytest.mark.parametrize("depth,blocks", [(101, (3, 4, 23, 3)), (152, (3, 8, 36, 3))])
def test_deep_resnets_shift_every_other_block_of_every_stage(depth, blocks):
    """The original TSM code and mmaction2: with a third stage of 23+ blocks, blocks 0, 2, 4, ...
    of each stage shift (18 of ResNet-101's 33 blocks)."""
    backbone = ResNetTSM(depth=depth)
    expected = [i % 2 == 0 for count in blocks for i in range(count)]
    assert [b.shift is not None for b in backbone.blocks] == expected
    if depth == 101:
        assert sum(expected) == 18
    assert backbone.res4b1.shift is None and backbone.res5b.shift is None
    assert backbone.res2a.shift is not None and backbone.res5c.shift is not None


def test_tsn_mode_has_no_shift_and_registered_resnet_is_tsn():
    assert all(b.shift is None for b in ResNetTSM(depth=18, shift_mode="none").blocks)
    model = build_model(AttrDict(framework="Recognizer2D",
                                 backbone=AttrDict(name="ResNet", depth=18, num_seg=4),
                                 head=AttrDict(name="TSNHead", num_classes=3, in_channels=512)))
    assert all(b.shift is None for b in model.backbone.blocks)


@pytest.mark.parametrize("mode", ["bidirectional", "unidirectional"])
def test_nhwc_equals_nchw(mode):
    paddle.seed(0)
    nchw = build_model(model_cfg(18, shift_mode=mode))
    nhwc = build_model(model_cfg(18, shift_mode=mode, data_format="NHWC"))
    nhwc.set_state_dict(nchw.state_dict())
    assert [list(v.shape) for v in nchw.state_dict().values()] == \
           [list(v.shape) for v in nhwc.state_dict().values()]
    nchw.eval(), nhwc.eval()
    imgs = paddle.randn([2, 4, 3, 32, 32])
    np.testing.assert_allclose(nhwc(imgs).numpy(), nchw(imgs).numpy(), rtol=1e-4, atol=1e-5)


def _branch(block, x):
    """The block's residual branch written out from its convolutions."""
    for name in ("conv0", "conv1", "conv2"):
        if hasattr(block, name):
            x = getattr(block, name)(x)
    return x


@pytest.mark.parametrize("place", ["residual", "inplace"])
@pytest.mark.parametrize("depth,name", [(18, "res2b"), (18, "res3a"), (50, "res3a")])
def test_the_shortcut_receives_the_input_the_shift_place_says(place, depth, name):
    """'inplace': branch AND shortcut get the shifted input; 'residual': only the branch does.
    res2b has an identity shortcut, res3a a strided projection (BasicBlock and Bottleneck)."""
    paddle.seed(0)
    backbone = ResNetTSM(depth=depth, num_seg=4, shift_place=place)
    backbone.eval()
    block = getattr(backbone, name)
    x = paddle.randn([8, block.in_channels, 8, 8])
    with paddle.no_grad():
        shifted = temporal_shift(x, 4, 0.125)
        branch = _branch(block, shifted)

        def block_with_shortcut_on(inputs):
            identity = block.short(inputs) if block.short is not None else inputs
            return paddle.nn.functional.relu(branch + identity).numpy()

        got = block(x).numpy()
        right = block_with_shortcut_on(shifted if place == "inplace" else x)
        wrong = block_with_shortcut_on(x if place == "inplace" else shifted)
    np.testing.assert_allclose(got, right, rtol=1e-5, atol=1e-5)
    assert np.abs(got - wrong).max() > 1e-2 * np.abs(got).max()      # the two are told apart


def test_recognizer_does_not_modify_its_inputs_and_averages_views():
    paddle.seed(0)
    model = build_model(model_cfg(18, num_seg=4))
    model.eval()
    imgs = paddle.randn([2, 3 * 4, 3, 32, 32])            # 3 views of 4 frames
    before = imgs.numpy().copy()
    probs = model.test_step([imgs])
    np.testing.assert_array_equal(imgs.numpy(), before)
    assert imgs.shape == [2, 12, 3, 32, 32]
    assert probs.shape == [2, 5]
    np.testing.assert_allclose(probs.sum(axis=1).numpy(), [1, 1], rtol=1e-5)
    per_view = [paddle.nn.functional.softmax(model(imgs[:, 4 * v:4 * v + 4]), -1).numpy()
                for v in range(3)]
    np.testing.assert_allclose(probs.numpy(), np.mean(per_view, axis=0), rtol=1e-4, atol=1e-6)


def test_frames_not_a_multiple_of_num_seg_is_a_clear_error():
    model = build_model(model_cfg(18, num_seg=4))
    with pytest.raises(ValueError, match="not a multiple of the model's num_seg=4"):
        model(paddle.randn([1, 6, 3, 32, 32]))


def test_initialisation():
    paddle.seed(0)
    model = build_model(model_cfg(50, num_classes=400))
    bn = model.backbone.res3a.conv1._batch_norm
    assert np.all(bn.weight.numpy() == 1) and np.all(bn.bias.numpy() == 0)
    conv = model.backbone.res3a.conv1._conv.weight.numpy()       # 128 x 128 x 3 x 3
    fan_in = 128 * 9
    assert abs(conv.std() - np.sqrt(2 / fan_in)) < 0.1 * np.sqrt(2 / fan_in)
    fc = model.head.fc
    assert fc.weight.shape == [2048, 400]
    assert abs(fc.weight.numpy().std() - 0.001) < 1e-4 and np.all(fc.bias.numpy() == 0)


def test_cross_entropy_and_label_smoothing_match_the_formula():
    from paddlevideo.modeling.losses import CrossEntropyLoss
    logits = paddle.to_tensor([[2.0, 0.5, 0.0]])
    labels = paddle.to_tensor([0])
    plain = CrossEntropyLoss()(logits, labels).item()
    smooth = CrossEntropyLoss(label_smoothing=0.1)(logits, labels).item()
    log_p = np.log(np.exp([2, 0.5, 0]) / np.exp([2, 0.5, 0]).sum())
    assert plain == pytest.approx(-log_p[0], rel=1e-5)
    assert smooth == pytest.approx(-(0.9 + 0.1 / 3) * log_p[0] - (0.1 / 3) * (log_p[1] + log_p[2]), rel=1e-5)


# online TSM: the per-frame step of the model itself

def _eval_model(depth=18, num_seg=3, seed=0, **backbone):
    paddle.seed(seed)
    model = build_model(model_cfg(depth, num_seg=num_seg, shift_mode="unidirectional", **backbone))
    model.eval()
    return model


def _stream(model, clips, buffers=None):
    """Per-frame logits [N, T, K] of N streams stepped together, and the final buffers."""
    out = []
    with paddle.no_grad():
        for t in range(clips.shape[1]):
            logits, buffers = model.forward_step(clips[:, t], buffers)
            out.append(logits.numpy())
    return np.stack(out, 1), buffers


def _close(got, want, tol=1e-4):
    scale = float(np.abs(want).max())
    assert float(np.abs(got - want).max()) <= tol * scale


@pytest.mark.parametrize("depth,place,data_format,ratio,buffers", [
    (18, "residual", "NCHW", 0.125, 8),
    (18, "inplace", "NHWC", 0.3, 8),          # 64 * 0.3 = 19.2: folds that are not whole
    (50, "inplace", "NCHW", 0.125, 16),
    (101, "residual", "NHWC", 0.125, 18),     # blocks 0, 2, 4, ... of each stage: 18 buffers
])
def test_forward_step_equals_the_offline_model_frame_by_frame(depth, place, data_format, ratio,
                                                              buffers):
    model = _eval_model(depth, shift_place=place, data_format=data_format, shift_ratio=ratio)
    clips = paddle.randn([2, 3, 3, 32, 32])
    with paddle.no_grad():
        offline = model.frame_logits(clips).numpy()               # [2, T, K]
        clip_logits = model(clips).numpy()
    online, final = _stream(model, clips)
    _close(online, offline)
    _close(online.mean(1), clip_logits)                           # the head averages frames
    assert len(final) == buffers == len(model.buffer_shapes(32))
    # the buffers carry the past: without them frames 1.. differ
    alone = np.stack([_stream(model, clips[:, t:t + 1])[0][:, 0] for t in range(3)], 1)
    assert np.abs(alone[:, 1:] - offline[:, 1:]).max() > 1e-3 * np.abs(offline).max()


@pytest.mark.parametrize("depth,data_format", [(18, "NCHW"), (101, "NHWC")])
def test_buffer_shapes_are_those_the_step_makes(depth, data_format):
    """The shapes computed from the strides equal the buffers a step creates, odd sizes too."""
    model = _eval_model(depth, data_format=data_format, shift_ratio=0.3)
    for height, width in ((33, 33), (40, 57)):
        with paddle.no_grad():
            _, buffers = model.forward_step(paddle.zeros([2, 3, height, width]))
        made = [list(b.shape) for b in buffers]
        assert made == [[2] + s for s in model.buffer_shapes(height, width)]
        axis = 1 if data_format == "NCHW" else 3
        assert [s[axis] for s in made] == [int(b.in_channels * np.float32(0.3))
                                           for b in model.backbone.shifting_blocks()]


def test_online_step_refuses_what_cannot_stream():
    frame = paddle.zeros([1, 3, 32, 32])
    for mode, why in (("bidirectional", "reads the next frame"), ("none", "'none'")):
        model = build_model(model_cfg(18, shift_mode=mode))
        with pytest.raises(ConfigError, match=f"needs a unidirectional model.*{why}"):
            model.forward_step(frame)
        with pytest.raises(ConfigError, match="unidirectional"):
            model.buffer_shapes(32)
    model = _eval_model(18)
    with pytest.raises(ValueError, match="8 shifting blocks, so 8 shift buffers; got 7"):
        model.forward_step(frame, [paddle.zeros([1] + s) for s in model.buffer_shapes(32)][:7])
    plain = BottleneckBlock(256, 64, 1, None, "residual", "NCHW")    # as res2b of ResNet-101
    with pytest.raises(ValueError, match="does not shift; it takes no shift buffer"):
        plain(paddle.zeros([1, 256, 8, 8]), paddle.zeros([1, 32, 8, 8]))
