"""ONNX export through paddle2onnx (optional: imported only when used).

paddle2onnx 2.1.0 reads Paddle 3's PIR `.json` programs and maps `temporal_shift` (NCHW); the
result is checked against Paddle Inference with onnxruntime when that is installed.
"""
import os

import numpy as np

from .errors import DeployError

__all__ = ["export_onnx", "cpu_session"]


def cpu_session(onnx_file, threads):
    """An onnxruntime CPU session with `threads` intra-op threads and no inter-op parallelism:
    the one recipe for every ONNX Runtime use here (predict, the int8 check)."""
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(onnx_file, options, providers=["CPUExecutionProvider"])


def export_onnx(model_file, params_file, onnx_file=None, opset=13, check=True, input_shape=None):
    """Convert an exported model to ONNX; with `check`, compare onnxruntime's logits with Paddle
    Inference's on a random batch (max abs diff <= 1e-4 x scale). Returns (path, max_abs_diff)."""
    try:
        import paddle2onnx
    except ImportError:
        raise DeployError("ONNX export needs paddle2onnx (pip install paddle2onnx).") from None
    onnx_file = onnx_file or os.path.splitext(model_file)[0] + ".onnx"
    try:
        paddle2onnx.export(model_file, params_file, onnx_file, opset_version=opset,
                           enable_onnx_checker=True)
    except Exception as e:
        raise DeployError(f"paddle2onnx could not convert {model_file}: {e}") from None
    if not os.path.isfile(onnx_file):
        raise DeployError(f"paddle2onnx wrote no {onnx_file}.")
    diff = None
    if check and input_shape:
        try:
            import onnxruntime as ort
        except ImportError:
            return onnx_file, None
        from .engine import InferenceEngine
        from .export import EXPORT_TOLERANCE
        shape = [2] + [int(d) for d in input_shape[1:]]
        x = np.random.RandomState(0).standard_normal(shape).astype("float32")
        ref = InferenceEngine(model_file=model_file, params_file=params_file, precision="fp32",
                              input_shape=input_shape)(x)
        sess = ort.InferenceSession(onnx_file, providers=["CPUExecutionProvider"])
        got = sess.run(None, {sess.get_inputs()[0].name: x})[0]
        diff = float(np.abs(got - ref).max())
        if diff > EXPORT_TOLERANCE * max(float(np.abs(ref).max()), 1e-6):
            raise DeployError(f"ONNX model {onnx_file} differs from Paddle Inference by {diff:.3g}.")
    return onnx_file, diff
