"""Online TSM: frame-by-frame outputs equal the offline unidirectional model's on the same frames."""
import numpy as np
import paddle
import pytest

from paddlevideo.deploy import (DeployError, OnlineRecognizer, OnlineStepEngine, export_online,
                                open_stream)
from paddlevideo.modeling import OnlineTSM
from paddlevideo.utils.config import ConfigError

from .conftest import NUM_SEG, SIZE, assert_close_logits, clips, make_model


def offline_frame_logits(model, clip_batch):
    """Per-frame logits [N, T, K] of the offline model (eval) on clips [N, T, 3, S, S]."""
    model.eval()
    with paddle.no_grad():
        return model.frame_logits(paddle.to_tensor(clip_batch)).numpy()


def run_online(step, frames):
    """Per-frame logits [T, K] of one stream from zero buffers (dygraph step)."""
    bufs = step.init_buffers(SIZE)
    out = []
    with paddle.no_grad():
        for f in frames:
            res = step(paddle.to_tensor(f[None]), bufs)
            out.append(res[0].numpy()[0])
            bufs = res[1:]
    return np.stack(out)


def test_online_equals_offline_unidirectional():
    model = make_model("unidirectional", seed=7)
    step = OnlineTSM(model)
    clip = clips(2, seed=8)
    offline = offline_frame_logits(model, clip)                 # [2, T, K]
    with paddle.no_grad():
        clip_logits = model(paddle.to_tensor(clip)).numpy()
    for n in range(2):
        online = run_online(step, clip[n])
        assert_close_logits(online, offline[n])
        # the offline head averages over the num_seg frames: so does the mean of online logits
        assert_close_logits(online.mean(0), clip_logits[n])
    # buffers matter: the same frames with the shift ignored give other answers
    tsn_like = np.stack([run_online(step, clip[0][t:t + 1])[0] for t in range(NUM_SEG)])
    assert np.abs(tsn_like[1:] - offline[0][1:]).max() > 1e-3 * np.abs(offline[0]).max()


def test_bidirectional_model_is_refused():
    with pytest.raises(ConfigError, match="unidirectional.*reads the next frame"):
        OnlineTSM(make_model("bidirectional"))


def test_exported_online_step_equals_offline(tmp_path):
    model = make_model("unidirectional", seed=9)
    out = export_online(model, str(tmp_path), "TSM_online", SIZE)
    engine = OnlineStepEngine(str(tmp_path), precision="fp32", cpu_threads=1)
    assert len(engine.buffer_shapes) == 8                      # ResNet-18: every block shifts
    clip = clips(1, seed=10)[0]
    offline = offline_frame_logits(model, clip[None])[0]
    bufs, got = engine.init_buffers(), []
    for f in clip:
        logits, bufs = engine(f[None], bufs)
        got.append(logits[0])
    assert_close_logits(np.stack(got), offline)
    assert out["infer_config"].endswith(".infer.yaml")


def test_recognizer_smooths_over_window():
    model = make_model("unidirectional", seed=11)
    clip = clips(1, seed=12)[0]
    runner = OnlineRecognizer(model, preprocess=lambda f: f, window=NUM_SEG, target_size=SIZE)
    outs = [runner(f) for f in clip]
    offline = offline_frame_logits(model, clip[None])[0]
    probs = np.exp(offline - offline.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    np.testing.assert_allclose(outs[-1]["probs"], probs.mean(0), atol=1e-5)
    assert all(o["latency_ms"] > 0 for o in outs)


def test_unopenable_sources(tmp_path):
    with pytest.raises(DeployError, match="not found"):
        open_stream(str(tmp_path / "missing.mp4"))
    with pytest.raises(DeployError, match="cannot open camera"):
        open_stream("97")
    bad = tmp_path / "corrupt.mp4"
    bad.write_bytes(b"\x00" * 2048)
    with pytest.raises(DeployError, match="cannot open|no frame"):
        runner = OnlineRecognizer(make_model("unidirectional"), preprocess=lambda f: f,
                                  target_size=SIZE)
        runner.run(str(bad), echo=None)
