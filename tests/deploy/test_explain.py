"""Grad-CAM (paddlevideo.explain.grad_cam): a closed-form case, the sanity check that the map
depends on the head, determinism, and its refusals."""
import numpy as np
import paddle
import paddle.nn as nn
import pytest

from paddlevideo.explain import EPS, evidence_share, grad_cam, overlay
from paddlevideo.modeling.heads.tsn_head import TSNHead
from paddlevideo.modeling.recognizers import Recognizer2D

from .conftest import NUM_SEG, SIZE, clips, make_model


class _Pass(nn.Layer):
    """A backbone that is the identity (or a 2x2 average pool): its output is known."""

    def __init__(self, num_seg, pool=False):
        super().__init__()
        self.num_seg = num_seg
        self.pool = nn.AvgPool2D(2) if pool else None

    def forward(self, x):
        return self.pool(x) if self.pool is not None else x * 1.0


def _linear_model(pool=False, classes=3, seed=0):
    paddle.seed(seed)
    model = Recognizer2D(_Pass(NUM_SEG, pool), TSNHead(classes, in_channels=3, drop_ratio=0.0))
    rng = np.random.RandomState(seed)
    model.head.fc.weight.set_value(rng.normal(0, 1, (3, classes)).astype("float32"))
    model.eval()
    return model


def test_closed_form_map_of_a_linear_model():
    """Backbone = identity, head = mean pool + fc: the score's gradient is w_c / (T h w) at every
    frame and position, so the map is ReLU(sum_c w_c x[t, c]) / (T h w), scaled over the clip."""
    model = _linear_model()
    clip = np.random.RandomState(1).standard_normal((NUM_SEG, 3, 8, 8)).astype("float32")
    w = model.head.fc.weight.numpy()
    for target in range(3):
        raw = np.maximum(np.einsum("c,tchw->thw", w[:, target], clip), 0) / (NUM_SEG * 64)
        want = (raw - raw.min()) / (raw.max() - raw.min() + EPS)
        got = grad_cam(model, clip, target=target)
        assert got.dtype == np.float32 and got.shape == (NUM_SEG, 8, 8)
        np.testing.assert_allclose(got, want, atol=1e-5)
    # the default target is the top class
    logits = model(paddle.to_tensor(clip[None])).numpy()[0]
    np.testing.assert_array_equal(grad_cam(model, clip), grad_cam(model, clip,
                                                                    target=int(logits.argmax())))


def test_map_is_upsampled_to_the_clip_and_spans_zero_to_one():
    model = _linear_model(pool=True)
    clip = np.random.RandomState(2).standard_normal((NUM_SEG, 3, 8, 8)).astype("float32")
    cam = grad_cam(model, clip, target=0)
    assert cam.shape == (NUM_SEG, 8, 8) and cam.dtype == np.float32
    assert cam.min() == 0.0 and 0.999 < cam.max() <= 1.0
    # a pooled map upsampled bilinearly: each 2x2 block's mean is the pooled closed form's shape
    w = model.head.fc.weight.numpy()[:, 0]
    pooled = clip.reshape(NUM_SEG, 3, 4, 2, 4, 2).mean(axis=(3, 5))
    raw = np.maximum(np.einsum("c,tchw->thw", w, pooled), 0)
    assert np.corrcoef(cam.reshape(NUM_SEG, 4, 2, 4, 2).mean(axis=(2, 4)).ravel(),
                       raw.ravel())[0, 1] > 0.9


def test_map_depends_on_the_head_and_is_deterministic():
    model = make_model()
    trainable = [p.stop_gradient for p in model.parameters()]
    clip = clips(1, seed=3)[0]
    first = grad_cam(model, clip, target=2)
    assert first.shape == (NUM_SEG, SIZE, SIZE)
    np.testing.assert_array_equal(first, grad_cam(model, clip, target=2))
    assert [p.stop_gradient for p in model.parameters()] == trainable   # restored after the call
    assert not model.training
    model.head.fc.weight.set_value(np.random.RandomState(9).normal(
        0, 0.05, model.head.fc.weight.shape).astype("float32"))
    second = grad_cam(model, clip, target=2)
    assert np.abs(first - second).mean() > 0.05


def test_a_named_layer_online_tsn_and_nhwc_models():
    clip = clips(1, seed=4)[0]
    for kw in ({"mode": "unidirectional"}, {"mode": "none"}):
        cam = grad_cam(make_model(**kw), clip)
        assert cam.shape == (NUM_SEG, SIZE, SIZE) and 0.99 < cam.max() <= 1.0
    model = make_model()
    name = [n for n, _ in model.named_sublayers() if n.startswith("backbone.")
            and n.count(".") == 1][-2]              # the second-to-last block
    cam = grad_cam(model, clip, layer=name)
    assert cam.shape == (NUM_SEG, SIZE, SIZE)
    assert not np.allclose(cam, grad_cam(model, clip))


def test_refusals():
    model = make_model()
    clip = clips(1, seed=5)[0]
    with pytest.raises(ValueError, match="outside the model's 10 classes"):
        grad_cam(model, clip, target=10)
    with pytest.raises(ValueError, match="no layer 'backbone.nope'"):
        grad_cam(model, clip, layer="backbone.nope")
    with pytest.raises(ValueError, match="one clip"):
        grad_cam(model, clips(2))


def test_evidence_share_and_overlay():
    cam = np.zeros((4, 6, 6), np.float32)
    cam[1] = 1.0
    cam[3, :3] = 1.0
    np.testing.assert_allclose(evidence_share(cam), [0, 2 / 3, 0, 1 / 3])
    np.testing.assert_allclose(evidence_share(np.zeros((2, 3, 3))), [0.5, 0.5])
    frames = np.full((4, 12, 12, 3), 100, np.uint8)
    out = overlay(frames, cam)
    assert out.shape == frames.shape and out.dtype == np.uint8
    assert not np.array_equal(out[1], out[0])


def test_the_explain_command(tmp_path, capsys):
    from PIL import Image

    from paddlevideo.deploy.vis_cli import explain_main

    from .conftest import save_checkpoint, write_config, write_labels, write_video
    video = write_video(tmp_path / "v.avi", 40)
    config = write_config(tmp_path / "c.yaml", label_list=write_labels(tmp_path / "l.txt"))
    weights = tmp_path / "w.pdparams"
    save_checkpoint(make_model(), weights)
    out = tmp_path / "out"
    assert explain_main(["-i", video, "-c", config, "-w", str(weights), "--target", "name_3",
                         "--output", str(out)]) == 0
    assert "Grad-CAM of name_3 (3)" in capsys.readouterr().out
    cam = np.load(out / "cam.npy")
    assert cam.shape == (NUM_SEG, SIZE, SIZE) and cam.max() <= 1.0
    assert Image.open(out / "cam.gif").n_frames == NUM_SEG
    assert Image.open(out / "cam_grid.png").size[0] > 200
    assert explain_main(["-i", video, "-c", config, "-w", str(weights), "--target", "nope",
                         "--output", str(out)]) == 1
    assert "--target 'nope' is not a class name" in capsys.readouterr().err
    assert explain_main(["-i", video, "-c", config, "--output", str(out)]) == 1
    assert "needs -c CONFIG and -w WEIGHTS" in capsys.readouterr().err


def test_frame_averaged_weights_variant():
    """average='frame' gives each frame its own channel weights (mmaction2's code)."""
    model = _linear_model()
    clip = np.random.RandomState(1).standard_normal((NUM_SEG, 3, 8, 8)).astype("float32")
    np.testing.assert_allclose(grad_cam(model, clip, 1, average="frame"),
                               grad_cam(model, clip, 1), atol=1e-6)
    tsm = make_model()
    x = clips(1, seed=6)[0]
    # at the last stage the head (pool, consensus, fc) gives every frame the same gradient, so
    # the two agree; at an earlier block the later shifts make the frames' gradients differ
    np.testing.assert_allclose(grad_cam(tsm, x, 2, average="frame"), grad_cam(tsm, x, 2),
                               atol=1e-5)
    name = [n for n, _ in tsm.named_sublayers() if n.startswith("backbone.")
            and n.count(".") == 1][-3]
    frame = grad_cam(tsm, x, 2, layer=name, average="frame")
    assert frame.shape == (NUM_SEG, SIZE, SIZE) and 0.99 < frame.max() <= 1.0
    assert not np.allclose(frame, grad_cam(tsm, x, 2, layer=name), atol=1e-3)
    with pytest.raises(ValueError, match="average must be"):
        grad_cam(tsm, x, average="video")
