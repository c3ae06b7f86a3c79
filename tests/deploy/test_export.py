"""Export: the exported program gives the dygraph model's logits (CPU), from a live model and
from a PaddleVideo-format checkpoint, in both program formats."""
import os
import subprocess
import sys

import numpy as np
import paddle
import pytest
import yaml

from paddlevideo.deploy.errors import DeployError
from paddlevideo.deploy.export import export_model
from paddlevideo.deploy.runtime import INFER_SUFFIX, InferenceEngine, cpu_has_bf16

from .conftest import (NUM_SEG, REPO, SIZE, assert_close_logits, clips, make_model, write_config)


def test_exported_logits_equal_dygraph(tmp_path):
    model = make_model()
    result = export_model(model, str(tmp_path), "TSM", num_seg=NUM_SEG, target_size=SIZE)
    assert os.path.isfile(tmp_path / "TSM.json") and os.path.isfile(tmp_path / "TSM.pdiparams")
    x = clips(3)                                        # free batch size: 3 was never traced
    with paddle.no_grad():
        want = model(paddle.to_tensor(x)).numpy()
    got = InferenceEngine(str(tmp_path), precision="fp32", cpu_threads=1)(x)
    assert got.shape == (3, 10)
    assert_close_logits(got, want)
    info = yaml.safe_load(open(tmp_path / ("TSM" + INFER_SUFFIX)))
    assert info["input"]["shape"] == [-1, NUM_SEG, 3, SIZE, SIZE]
    assert info["num_seg"] == NUM_SEG and "labels" not in info       # no names given: none made up
    assert info["export_check"]["max_abs_diff"] <= 1e-4 * info["export_check"]["logit_scale"]
    # the original model is still a dygraph model (export worked on a copy)
    assert not isinstance(model.forward, paddle.jit.api.StaticFunction) if hasattr(
        paddle.jit.api, "StaticFunction") else True
    with paddle.no_grad():
        np.testing.assert_allclose(model(paddle.to_tensor(x)).numpy(), want, rtol=0, atol=0)


def test_export_from_paddlevideo_checkpoint_pdmodel(tmp_path):
    """A state dict saved by paddle.save with PaddleVideo's key names, exported by the tool in the
    legacy .pdmodel format (a fresh Python, since the format is fixed at start-up)."""
    model = make_model(seed=3)
    state = model.state_dict()
    assert "backbone.res2a.conv0._conv.weight" in state and "head.fc.weight" in state
    assert "backbone.conv._batch_norm._variance" in state
    ckpt = str(tmp_path / "TSM_best.pdparams")
    paddle.save({k: v for k, v in state.items()}, ckpt)
    cfg = write_config(tmp_path / "tsm.yaml")
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, os.path.join(REPO, "tools", "export_model.py"),
                           "-c", cfg, "-p", ckpt, "-o", str(out), "--model_format", "pdmodel",
                           "--no_onnx"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert os.path.isfile(out / "TSM.pdmodel") and not os.path.isfile(out / "TSM.json")
    x = clips(2, seed=5)
    with paddle.no_grad():
        want = model(paddle.to_tensor(x)).numpy()
    assert_close_logits(InferenceEngine(str(out), precision="fp32")(x), want)
    # PaddleVideo's --model_file/--params_file form reads the same files
    got = InferenceEngine(model_file=str(out / "TSM.pdmodel"),
                          params_file=str(out / "TSM.pdiparams"), precision="fp32")(x)
    assert_close_logits(got, want)


def test_engine_from_model_and_bf16(tmp_path):
    model = make_model(seed=4)
    x = clips(4, seed=6)
    with paddle.no_grad():
        want = model(paddle.to_tensor(x)).numpy()
    engine = InferenceEngine.from_model(model, NUM_SEG, SIZE, precision="fp32")
    assert_close_logits(engine(x), want)
    engine.close()
    if not cpu_has_bf16():
        pytest.skip("no native bf16 on this CPU")
    got = InferenceEngine.from_model(model, NUM_SEG, SIZE, precision="bf16")(x)
    # bf16 keeps 8 bits of mantissa: differences of about 1% of the logit scale, so the top-1
    # can only change where fp32's top two are closer than twice the difference
    diff = np.abs(got - want).max()
    assert diff <= 0.05 * np.abs(want).max()
    top2 = np.sort(want, axis=1)[:, -2:]
    clear = (top2[:, 1] - top2[:, 0]) > 2 * diff
    assert (got.argmax(1) == want.argmax(1))[clear].all()



def test_wrong_input_shape_is_a_clear_error(tmp_path):
    export_model(make_model(), str(tmp_path), "TSM", num_seg=NUM_SEG, target_size=SIZE)
    engine = InferenceEngine(str(tmp_path), precision="fp32")
    with pytest.raises(DeployError, match=r"takes input \['N', 4, 3, 64, 64\]"):
        engine(clips(1, num_seg=8))
    with pytest.raises(DeployError, match="takes input"):
        engine(clips(1, size=32))
    with pytest.raises(DeployError, match="expected a batch of clips"):
        engine(np.zeros((4, 3, SIZE, SIZE), np.float32))


def test_missing_model_files_are_clear_errors(tmp_path):
    with pytest.raises(DeployError, match="model dir not found"):
        InferenceEngine(str(tmp_path / "nope"))
    with pytest.raises(DeployError, match="has no exported model"):
        InferenceEngine(str(tmp_path))
    with pytest.raises(DeployError, match="model file not found"):
        InferenceEngine(model_file=str(tmp_path / "a.json"), params_file=str(tmp_path / "a.pdiparams"))
    (tmp_path / "x.json").write_text("{not a program")
    (tmp_path / "x.pdiparams").write_bytes(b"junk")
    with pytest.raises(DeployError, match="could not load"):
        InferenceEngine(str(tmp_path))
