"""ONNX export through paddle2onnx, checked with onnxruntime (skipped when they are absent)."""
import numpy as np
import paddle
import pytest

from paddlevideo.deploy import InferenceEngine, export_model

from .conftest import NUM_SEG, SIZE, assert_close_logits, clips, make_model


def test_onnx_equals_dygraph(tmp_path):
    pytest.importorskip("paddle2onnx", reason="optional: pip install paddle2onnx")
    pytest.importorskip("onnxruntime", reason="optional: pip install onnxruntime")
    from paddlevideo.deploy.onnx_export import export_onnx
    model = make_model(seed=13)
    res = export_model(model, str(tmp_path), "TSM", NUM_SEG, SIZE)
    path, diff = export_onnx(res.model_file, res.params_file,
                             input_shape=[-1, NUM_SEG, 3, SIZE, SIZE])
    assert diff is not None
    x = clips(3, seed=14)
    with paddle.no_grad():
        want = model(paddle.to_tensor(x)).numpy()
    got = InferenceEngine(str(tmp_path), backend="onnxruntime", precision="fp32")(x)
    assert_close_logits(got, want)
