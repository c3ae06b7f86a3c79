"""Clip features: the head's pooled input, the same in dygraph and the exported engine, and the
original network's feature for converted PyTorch checkpoints."""
import json
import os

import numpy as np
import paddle
import pytest

from paddlevideo.deploy.features import FEATURE_TOLERANCE, feature_runner, write_features
from paddlevideo.deploy.vis_cli import features_main
from paddlevideo.modeling import build_model
from paddlevideo.modeling.features import clip_features, feature_permutation
from paddlevideo.modeling.weights import load_weights
from paddlevideo.utils.config import AttrDict

from .conftest import (NUM_SEG, REPO, clips, make_model, save_checkpoint, write_config,
                       write_video)

TORCH_TSM = os.path.join(os.path.dirname(REPO), "shared", "reference", "torch_tsm")


def test_the_fc_of_the_feature_is_the_models_logits():
    model = make_model()
    x = clips(3)
    feats = clip_features(model, x)
    assert feats.shape == (3, 512) and feats.dtype == np.float32
    with paddle.no_grad():
        logits = model(paddle.to_tensor(x)).numpy()
    fc = model.head.fc
    np.testing.assert_allclose(feats @ fc.weight.numpy() + fc.bias.numpy(), logits, atol=1e-5)
    assert feature_permutation(model) is None


def test_exported_engine_gives_the_dygraph_vector():
    model = make_model()
    x = clips(2, seed=7)
    want = clip_features(model, x)
    got = feature_runner(model, NUM_SEG, 64)(x)
    assert np.abs(got - want).max() <= FEATURE_TOLERANCE * np.abs(want).max()


@pytest.mark.skipif(not os.path.isdir(TORCH_TSM), reason="../shared/reference/torch_tsm is absent")
def test_converted_checkpoint_gives_the_original_networks_feature(tmp_path):
    """The original fc (new_fc, from the PyTorch file) on our un-permuted feature gives the
    original network's logits; on the permuted one it does not."""
    from paddlevideo.utils.safe_load import load_torch
    model = build_model(AttrDict(framework="Recognizer2D",
                                 backbone=AttrDict(name="ResNetTSM", depth=18, num_seg=8),
                                 head=AttrDict(name="TSMHead", num_classes=174,
                                               in_channels=512)))
    path = os.path.join(TORCH_TSM, "tsm_r18_mhl.pth")
    load_weights(model, path, require_head=True)
    model.eval()
    state = load_torch(path)["state_dict"]
    w, b = state["module.new_fc.weight"], state["module.new_fc.bias"]
    clip = np.load(os.path.join(TORCH_TSM, "tsm_r18_input.npy"))
    want = np.load(os.path.join(TORCH_TSM, "tsm_r18_logits.npy"))
    feats = clip_features(model, clip)
    np.testing.assert_allclose(feats @ w.T + b, want, atol=1e-3 * want.std())
    perm = feature_permutation(model)
    assert perm is not None and sorted(perm) == list(range(512))
    raw = feats[:, perm]                                     # the swap is its own inverse
    assert np.abs(raw @ w.T + b - want).max() > 1e-2 * want.std()
    exported = feature_runner(model, 8, 112)(clip)
    assert np.abs(exported - feats).max() <= FEATURE_TOLERANCE * np.abs(feats).max()
    # a native checkpoint of the same model records no swap
    other = make_model()
    save_checkpoint(other, tmp_path / "native.pdparams")
    load_weights(other, str(tmp_path / "native.pdparams"), require_head=True)
    assert feature_permutation(other) is None


def test_write_features(tmp_path):
    rows = [{"file": "a.mp4", "start": 0.0}, {"file": "a.mp4", "start": 1.0}]
    written = write_features(str(tmp_path / "f"), np.ones((2, 4)), rows)
    assert written[:2] == [str(tmp_path / "f.npy"), str(tmp_path / "f.json")]
    assert np.load(tmp_path / "f.npy").dtype == np.float32
    assert json.loads((tmp_path / "f.json").read_text())["rows"][1]["start"] == 1.0
    with pytest.raises(Exception, match="2 rows for 3"):
        write_features(str(tmp_path / "g"), np.ones((3, 4)), rows)


def test_the_command_per_clip_and_per_window(tmp_path):
    videos = [write_video(tmp_path / f"v{i}.avi", 60 + 10 * i, seed=i) for i in range(2)]
    config = write_config(tmp_path / "c.yaml")
    weights = tmp_path / "w.pdparams"
    model = make_model()
    save_checkpoint(model, weights)
    assert features_main(["-i", *videos, "-c", config, "-w", str(weights), "--output",
                          str(tmp_path / "clips")]) == 0
    per_clip = np.load(tmp_path / "clips.npy")
    assert per_clip.shape == (2, 512)
    assert features_main(["-i", videos[0], "-c", config, "-w", str(weights), "--per_window",
                          "--window", "1", "--stride", "0.5", "--engine", "dygraph",
                          "--output", str(tmp_path / "win")]) == 0
    rows = json.loads((tmp_path / "win.json").read_text())["rows"]
    assert [r["start_frame"] for r in rows] == [0, 12, 24]        # 0.5 s = 12.5 -> 12 frames
    assert rows[1]["start"] == 12 / 25 and rows[1]["end"] == 37 / 25
    assert np.load(tmp_path / "win.npy").shape == (len(rows), 512)
    assert features_main(["-i", videos[0], "-c", config, "--output", str(tmp_path / "x")]) == 1
