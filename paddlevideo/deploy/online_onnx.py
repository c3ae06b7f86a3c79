"""The exported online step (NAME_online.json, `export_model.py --online`) in ONNX Runtime.

`export_online_onnx` converts the step with paddle2onnx (as `onnx_export` does for clip models)
and checks it against Paddle Inference frame by frame over a few random frames, the buffers
carried along, so a conversion that mishandles the buffers cannot pass. `OnlineOnnxStep` runs it
behind OnlineStepEngine's interface: `(logits, buffers) = step(frame, buffers)`.
"""
import os

import numpy as np

from .errors import DeployError
from .online import OnlineStepEngine
from .onnx_export import OPSET, convert_to_onnx, onnx_available
from .runtime import check_same_logits, file_digest, onnx_path, ort_session, resolve_model

__all__ = ["export_online_onnx", "OnlineOnnxStep"]

CHECK_FRAMES = 4


class OnlineOnnxStep:
    """An online-step ONNX model under ONNX Runtime, numpy in and out."""

    def __init__(self, onnx_file, buffer_shapes, threads=None):
        if not os.path.isfile(onnx_file):
            raise DeployError(f"online ONNX model not found: {onnx_file}")
        self.onnx_file = onnx_file
        self.buffer_shapes = [list(s) for s in buffer_shapes]
        self.session = ort_session(onnx_file, threads)
        self.input_names = [i.name for i in self.session.get_inputs()]
        if len(self.input_names) != 1 + len(self.buffer_shapes):
            raise DeployError(f"{onnx_file} has {len(self.input_names)} inputs; an online step "
                              f"with {len(self.buffer_shapes)} buffers has "
                              f"{1 + len(self.buffer_shapes)}.")

    def init_buffers(self, batch=1):
        return [np.zeros([batch] + s[1:], np.float32) for s in self.buffer_shapes]

    def __call__(self, frame, buffers):
        frame = np.ascontiguousarray(frame, dtype=np.float32)
        if frame.ndim == 3:
            frame = frame[None]
        feed = dict(zip(self.input_names, [frame] + [np.ascontiguousarray(b) for b in buffers]))
        outs = self.session.run(None, feed)
        return outs[0], outs[1:]


def export_online_onnx(model_dir=None, model_file=None, params_file=None, save_name=None,
                       onnx_file=None, threads=None, frames=CHECK_FRAMES):
    """Write NAME.onnx beside an exported online step and check it against Paddle Inference
    over `frames` random frames of one stream (logits within the export tolerance). Returns the
    check record {file, sha256, max_abs_diff, logit_scale, frames, passed}; a model that
    differs is deleted and raises DeployError."""
    missing = onnx_available()
    if missing:
        raise DeployError(f"ONNX export needs paddle2onnx and onnxruntime (requirements.txt): "
                          f"{missing}.")
    model_file, params_file, info = resolve_model(model_dir, model_file, params_file, save_name)
    if not info or info.get("kind") != "online_step":
        raise DeployError(f"{model_file} is not an exported online step (its NAME.infer.yaml "
                          f"must say kind: online_step); export with --online.")
    engine = OnlineStepEngine(model_file=model_file, params_file=params_file, precision="fp32",
                              cpu_threads=threads, buffer_shapes=info["buffers"])
    onnx_file = onnx_file or onnx_path(model_file)
    convert_to_onnx(model_file, params_file, onnx_file)
    step = OnlineOnnxStep(onnx_file, info["buffers"], threads)
    size = int(info["target_size"])
    rng = np.random.RandomState(0)
    bufs_p, bufs_o, want, got = engine.init_buffers(), step.init_buffers(), [], []
    for _ in range(frames):
        frame = rng.standard_normal((1, 3, size, size)).astype("float32")
        logits, bufs_p = engine(frame, bufs_p)
        want.append(logits)
        logits, bufs_o = step(frame, bufs_o)
        got.append(logits)
    try:
        diff, scale = check_same_logits(np.concatenate(got), np.concatenate(want),
                                        f"the online ONNX model {onnx_file} (ONNX Runtime vs "
                                        f"Paddle Inference)")
    except DeployError:
        os.remove(onnx_file)
        raise
    return {"file": os.path.basename(onnx_file), "sha256": file_digest(onnx_file),
            "max_abs_diff": diff, "logit_scale": scale, "frames": frames, "opset": OPSET,
            "passed": True}
