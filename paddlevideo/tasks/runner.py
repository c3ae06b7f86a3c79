"""Ways to run a trained model over test batches: dygraph, or Paddle Inference with oneDNN.

Both return class probabilities [B, K]: the softmax averaged over each video's views (clips x
crops), exactly what `Recognizer2D.test_step` computes. On CPU, Paddle Inference with oneDNN
and all cores is several times faster than dygraph (see docs/evaluation.md), so it is the
default there; on GPU dygraph is used.
"""
import logging
import os
import tempfile

import numpy as np
import paddle
import paddle.nn.functional as F

__all__ = ["DygraphRunner", "InferenceRunner", "make_runner", "ENGINES"]

logger = logging.getLogger("paddlevideo")
ENGINES = ("auto", "inference", "dygraph")


class _ViewAveragedProbs(paddle.nn.Layer):
    """Wraps a recognizer so its traced forward is test_step: mean softmax over views."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, imgs):
        return paddle.mean(F.softmax(self.model.forward_views(imgs), axis=-1), axis=1)


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
    """The model traced to a static program, run by a Paddle Inference predictor (oneDNN on CPU).

    `frames` is V*T per sample and (height, width) the input size; the batch size may vary.
    The program and weights are written to a temporary folder removed when the runner closes.
    """

    name = "inference"

    def __init__(self, model, frames, height, width, threads=None, gpu_id=None):
        import paddle.inference as paddle_infer
        from paddle.static import InputSpec

        model.eval()
        self._dir = tempfile.TemporaryDirectory(prefix="paddlevideo_test_")
        prefix = os.path.join(self._dir.name, "model")
        spec = InputSpec([None, int(frames), 3, int(height), int(width)], "float32", "imgs")
        layer = paddle.jit.to_static(_ViewAveragedProbs(model), input_spec=[spec], full_graph=True)
        paddle.jit.save(layer, prefix)
        program = prefix + ".json" if os.path.exists(prefix + ".json") else prefix + ".pdmodel"
        config = paddle_infer.Config(program, prefix + ".pdiparams")
        if gpu_id is not None:
            config.enable_use_gpu(512, int(gpu_id))
        else:
            config.disable_gpu()
            config.enable_mkldnn()
            config.set_cpu_math_library_num_threads(int(threads or 1))
        config.disable_glog_info()
        self.threads = threads
        self.predictor = paddle_infer.create_predictor(config)
        self._input = self.predictor.get_input_handle(self.predictor.get_input_names()[0])
        self._output = self.predictor.get_output_handle(self.predictor.get_output_names()[0])

    def __call__(self, imgs):
        array = imgs.numpy() if hasattr(imgs, "numpy") else np.asarray(imgs)
        array = np.ascontiguousarray(array, dtype=np.float32)
        self._input.reshape(list(array.shape))
        self._input.copy_from_cpu(array)
        self.predictor.run()
        return self._output.copy_to_cpu()

    def close(self):
        self._dir.cleanup()


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
    gpu_id = int(paddle.device.get_device().split(":")[1]) if on_gpu else None
    try:
        return InferenceRunner(model, frames, height, width, threads, gpu_id)
    except Exception as e:          # an engine that cannot trace this model must not stop a test
        if engine == "inference":
            raise
        logger.warning("the Paddle Inference engine could not be built (%s: %s); testing in "
                       "dygraph instead, which is slower.", type(e).__name__, str(e)[:300])
        return DygraphRunner(model)
