"""Every depth builds and trains a step; layouts agree; the recognizer's contract holds."""
import numpy as np
import paddle
import pytest

from paddlevideo.modeling import build_model
from paddlevideo.modeling.backbones.resnet_tsm import STAGES, ResNetTSM
from paddlevideo.utils.config import AttrDict


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


def test_inplace_shift_differs_from_residual_shift():
    paddle.seed(0)
    residual = build_model(model_cfg(18))
    inplace = build_model(model_cfg(18, shift_place="inplace"))
    inplace.set_state_dict(residual.state_dict())
    residual.eval(), inplace.eval()
    imgs = paddle.randn([1, 4, 3, 32, 32])
    assert not np.allclose(residual(imgs).numpy(), inplace(imgs).numpy())


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
