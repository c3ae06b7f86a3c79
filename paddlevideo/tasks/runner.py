"""Ways to run a trained model over test batches: dygraph, or the inference runtime.

Both return class probabilities [B, K]: the softmax averaged over each video's views (clips x
crops), exactly what `Recognizer2D.test_step` computes. On CPU, Paddle Inference with oneDNN
and all cores is several times faster than dygraph (see docs/evaluation.md), so it is the
default there; on GPU dygraph is used.
"""
import logging

import numpy as np
import paddle

from ..deploy.errors import first_line
from ..deploy.runtime import InferenceEngine, softmax

__all__ = ["DygraphRunner", "InferenceRunner", "make_runner", "ENGINES"]

logger = logging.getLogger("paddlevideo")
ENGINES = ("auto", "inference", "dygraph")


class DygraphRunner:
    """The model as it is, in eval mode, without gradients."""

    name = "dygraph"

    def __init__(self, model):
        self.model = model
        self.model.eval()

    def __call__(self, imgs):
        with paddle.no_grad():
            return self.model.test_step([imgs]).numpy()


class InferenceRunner:
    """The inference runtime's engine (Paddle Inference, oneDNN, fp32, `threads` cores) over a
    saved copy of the model, checked against it when built. Each video's V views run as V
    clips; their softmax is averaged as in test_step.
    """

    name = "inference"

    def __init__(self, model, num_seg, size, threads=None, gpu_id=None):
        model.eval()
        self.num_seg = int(num_seg)
        device = "gpu" if gpu_id is not None else "cpu"
        self.engine = InferenceEngine.from_model(model, num_seg=self.num_seg, target_size=int(size),
                                                 device=device, backend="paddle", precision="fp32",
                                                 cpu_threads=threads, gpu_id=gpu_id or 0)
        self.threads = self.engine.cpu_threads

    def __call__(self, imgs):
        array = imgs.numpy() if hasattr(imgs, "numpy") else np.asarray(imgs)
        n, frames = array.shape[:2]
        views = frames // self.num_seg
        clips = array.reshape((n * views, self.num_seg) + tuple(array.shape[2:]))
        probs = softmax(self.engine(clips)).reshape(n, views, -1)
        return probs.mean(axis=1).astype(np.float32)

    def close(self):
        self.engine.close()


def make_runner(model, sample_shape, engine="auto", threads=None):
    """A runner for samples of `sample_shape` [V*T, 3, H, W].

    engine: 'inference' (Paddle Inference), 'dygraph', or 'auto' (inference on CPU, dygraph on
    GPU). If the inference engine cannot be built, 'auto' falls back to dygraph with a warning.
    """
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}.")
    on_gpu = "gpu" in paddle.device.get_device()
    if engine == "dygraph" or (engine == "auto" and on_gpu):
        return DygraphRunner(model)
    frames, _, height, width = sample_shape
    if height != width:
        logger.warning("the inference engine takes square inputs; %dx%d runs in dygraph.",
                       height, width)
        return DygraphRunner(model)
    gpu_id = int(paddle.device.get_device().split(":")[1]) if on_gpu else None
    try:
        return InferenceRunner(model, model.num_seg, height, threads, gpu_id)
    except Exception as e:          # an engine that cannot trace this model must not stop a test
        if engine == "inference":
            raise
        logger.warning("the Paddle Inference engine could not be built (%s: %s); testing in "
                       "dygraph instead, which is slower.", type(e).__name__, first_line(e))
        return DygraphRunner(model)
