"""ONNX export of an exported model through paddle2onnx, checked with ONNX Runtime.

paddle2onnx 2.1 reads Paddle 3's PIR `.json` programs and maps `temporal_shift` (NCHW). Its
default post-step, Polygraphy's constant folding, is switched off (`optimize_tool="None"`): it sets
POLYGRAPHY_AUTOINSTALL_DEPS=1 and then runs `pip install` (onnx_graphsurgeon from NVIDIA's index,
sympy, onnxruntime) in the middle of an export, which stalls offline and changes the user's
environment online. The folding is done instead by ONNX Runtime (already required), with its
hardware-independent "basic" graph optimisations (constant folding, Conv+Add/BN and MatMul+Add
fusions), saved as standard ONNX operators: the file stays portable, and ONNX Runtime's shape
inference for int8 quantization works on it. The ONNX model is kept only when ONNX Runtime gives
the Paddle Inference program's logits; the check, with the file's digest, goes into
NAME.infer.yaml.
"""
import importlib.util
import os
import shutil
import tempfile

import numpy as np

from .errors import DeployError, first_line
from .runtime import InferenceEngine, check_same_logits, file_digest, onnx_path, ort_session

__all__ = ["onnx_available", "convert_to_onnx", "export_onnx"]

OPSET = 13


def onnx_available():
    """'' when an ONNX export can be made and checked here, else why not (a missing package)."""
    missing = [name for name in ("paddle2onnx", "onnxruntime")
               if importlib.util.find_spec(name) is None]
    return f"{' and '.join(missing)} not installed" if missing else ""


def _convert(model_file, params_file, out_file, opset):
    """paddle2onnx, without its Polygraphy step."""
    import paddle2onnx
    try:
        paddle2onnx.export(model_file, params_file, out_file, opset_version=opset,
                           enable_onnx_checker=True, optimize_tool="None")
    except Exception as e:
        raise DeployError(f"paddle2onnx could not convert {model_file}: {first_line(e)}") from None
    if not os.path.isfile(out_file):
        raise DeployError(f"paddle2onnx could not convert {model_file} (its log above says why).")


def _fold(raw_file, out_file):
    """ONNX Runtime's basic optimisations of `raw_file`, saved to `out_file`, declaring only the
    operator sets its nodes use."""
    import onnx
    ort_session(raw_file, 1, save_optimized=out_file)
    model = onnx.load(out_file)
    used = {node.domain for node in model.graph.node} | {""}
    keep = [o for o in model.opset_import if o.domain in used]
    del model.opset_import[:]
    model.opset_import.extend(keep)
    onnx.save(model, out_file)


def convert_to_onnx(model_file, params_file, onnx_file, opset=OPSET):
    """paddle2onnx + constant folding of an exported program into `onnx_file` (replaced if
    there), unchecked: the callers check it against Paddle Inference."""
    if os.path.isfile(onnx_file):
        os.remove(onnx_file)
    workdir = tempfile.mkdtemp(prefix=".onnx-", dir=os.path.dirname(os.path.abspath(onnx_file)))
    try:
        raw = os.path.join(workdir, "raw.onnx")
        _convert(model_file, params_file, raw, opset)
        _fold(raw, onnx_file)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def export_onnx(model_file, params_file, input_shape, onnx_file=None, opset=OPSET, threads=None):
    """Convert an exported model to ONNX and check ONNX Runtime's logits against Paddle
    Inference's on a random batch (max abs diff <= 1e-4 x scale). Returns the check record
    {file, sha256, max_abs_diff, logit_scale, passed}; a model that differs is deleted and
    raises DeployError."""
    missing = onnx_available()
    if missing:
        raise DeployError(f"ONNX export needs paddle2onnx and onnxruntime (requirements.txt): "
                          f"{missing}.")
    onnx_file = onnx_file or onnx_path(model_file)
    convert_to_onnx(model_file, params_file, onnx_file, opset)
    shape = [2] + [int(d) for d in input_shape[1:]]
    x = np.random.RandomState(0).standard_normal(shape).astype("float32")
    ref = InferenceEngine(model_file=model_file, params_file=params_file, backend="paddle",
                          precision="fp32", input_shape=input_shape, cpu_threads=threads)(x)
    session = ort_session(onnx_file, threads)
    got = session.run(None, {session.get_inputs()[0].name: x})[0]
    try:
        diff, scale = check_same_logits(got, ref, f"the ONNX model {onnx_file} (ONNX Runtime vs "
                                                  f"Paddle Inference)")
    except DeployError:
        os.remove(onnx_file)
        raise
    return {"file": os.path.basename(onnx_file), "sha256": file_digest(onnx_file),
            "max_abs_diff": diff, "logit_scale": scale, "opset": opset, "passed": True}
