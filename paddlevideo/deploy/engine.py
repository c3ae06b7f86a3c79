"""One inference engine for exported TSM models: Paddle Inference (CPU oneDNN, GPU, TensorRT) or
ONNX Runtime, built from an exported model dir or from an in-memory model.

    engine = InferenceEngine("output/export")               # CPU, fastest accurate precision
    logits = engine(imgs)                                    # numpy [N, T, 3, S, S] -> [N, K]
    engine = InferenceEngine.from_model(model, num_seg=8, target_size=224)   # e.g. for --test

Every failure (missing file, wrong input shape, a runtime error inside Paddle) is a DeployError
with one clear line.
"""
import glob
import logging
import os
import shutil
import tempfile

import numpy as np

from .errors import DeployError

__all__ = ["InferenceEngine", "resolve_model", "cpu_count", "cpu_has_bf16", "PRECISIONS",
           "default_cpu_precision"]

logger = logging.getLogger("paddlevideo")

PRECISIONS = ("fp32", "bf16", "int8", "fp16")


def cpu_count():
    """Cores this process may run on (all cores by default, not Paddle's 1)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def cpu_has_bf16():
    """Whether the CPU computes bf16 natively (AVX512-BF16 or AMX), so oneDNN bf16 is fast."""
    try:
        from paddle.base import core
        return bool(core.supports_bfloat16_fast_performance())
    except Exception:                                  # older Paddle: read the flags
        try:
            with open("/proc/cpuinfo", encoding="utf-8") as f:
                flags = f.read()
            return "avx512_bf16" in flags or "amx_bf16" in flags
        except OSError:
            return False


def default_cpu_precision():
    """The fastest precision that keeps the answers on this CPU: bf16 where native, else fp32
    (see docs/deploy.md for the agreement measured)."""
    return "bf16" if cpu_has_bf16() else "fp32"


def resolve_model(model_dir=None, model_file=None, params_file=None, save_name=None):
    """(model_file, params_file, infer_config dict or None) from a model dir or explicit files."""
    from .export import INFER_SUFFIX, read_infer_config
    if model_dir is not None:
        if not os.path.isdir(model_dir):
            raise DeployError(f"model dir not found: {model_dir}")
        if save_name:
            cfg_path = os.path.join(model_dir, save_name + INFER_SUFFIX)
            configs = [cfg_path] if os.path.isfile(cfg_path) else []
        else:
            configs = sorted(glob.glob(os.path.join(model_dir, "*" + INFER_SUFFIX)))
        if len(configs) > 1:
            names = [os.path.basename(c)[:-len(INFER_SUFFIX)] for c in configs]
            raise DeployError(f"{model_dir} holds several models ({', '.join(names)}); "
                              f"choose one with --save_name.")
        if configs:
            info = read_infer_config(configs[0])
            model_file = os.path.join(model_dir, info["model_file"])
            params_file = os.path.join(model_dir, info["params_file"])
        else:
            stem = save_name or _single_program(model_dir)
            model_file = _existing(os.path.join(model_dir, stem), (".json", ".pdmodel"))
            params_file = os.path.join(model_dir, stem + ".pdiparams")
            info = None
    else:
        if not model_file or not params_file:
            raise DeployError("give --model_dir, or both --model_file and --params_file.")
        info = None
        stem = os.path.splitext(model_file)[0]
        if os.path.isfile(stem + INFER_SUFFIX):
            info = read_infer_config(stem + INFER_SUFFIX)
    for path, what in ((model_file, "model file"), (params_file, "params file")):
        if not os.path.isfile(path):
            raise DeployError(f"{what} not found: {path}. Export one with tools/export_model.py.")
    return model_file, params_file, info


def _single_program(model_dir):
    stems = sorted({os.path.splitext(os.path.basename(p))[0]
                    for ext in ("*.json", "*.pdmodel") for p in glob.glob(os.path.join(model_dir, ext))})
    if not stems:
        raise DeployError(f"{model_dir} has no exported model (NAME.json or NAME.pdmodel with "
                          f"NAME.pdiparams); export one with tools/export_model.py.")
    if len(stems) > 1:
        raise DeployError(f"{model_dir} holds several models ({', '.join(stems)}); choose one "
                          f"with --save_name.")
    return stems[0]


def _existing(prefix, exts):
    for ext in exts:
        if os.path.isfile(prefix + ext):
            return prefix + ext
    return prefix + exts[0]


class InferenceEngine:
    """Runs an exported TSM: `engine(imgs [N, T, 3, S, S] float32) -> logits [N, K]`.

    Args:
        model_dir: an export_model output folder (or give model_file + params_file).
        device: 'cpu' or 'gpu'.
        precision: 'fp32', 'bf16' (CPU, oneDNN; native on AVX512-BF16/AMX CPUs), 'int8' (CPU:
            with backend 'onnxruntime' the checked NAME.int8.onnx of `export_model.py --int8`;
            with 'paddle' only a program that is already quantized), 'fp16' (GPU); None picks
            the fastest one that keeps the answers (bf16 on a CPU that has it, else fp32).
        cpu_threads: math threads on CPU; None uses all cores.
        use_tensorrt: GPU only; TensorRT subgraphs in `precision` (fp32 or fp16).
        backend: 'paddle' (Paddle Inference) or 'onnxruntime' (needs NAME.onnx, or NAME.int8.onnx
            for int8; see onnx_export.py and quant.py).
        input_shape: the expected [-1, T, 3, S, S] when there is no inference config.
    """

    def __init__(self, model_dir=None, model_file=None, params_file=None, save_name=None,
                 device="cpu", precision=None, cpu_threads=None, use_tensorrt=False, gpu_id=0,
                 backend="paddle", input_shape=None, max_batch_size=8):
        self.model_file, self.params_file, self.info = resolve_model(
            model_dir, model_file, params_file, save_name)
        if device not in ("cpu", "gpu"):
            raise DeployError(f"device must be 'cpu' or 'gpu', got '{device}'.")
        self._auto_precision = precision is None
        if precision is None:
            precision = (default_cpu_precision() if device == "cpu" and backend == "paddle"
                         else "fp32")
        if precision not in PRECISIONS:
            raise DeployError(f"precision must be one of {', '.join(PRECISIONS)}, got '{precision}'.")
        if device == "cpu" and precision == "fp16":
            raise DeployError("fp16 needs a GPU; on CPU use bf16 (or fp32).")
        if device == "gpu" and precision in ("bf16",):
            raise DeployError("bf16 is the CPU's low precision here; on GPU use fp16.")
        if use_tensorrt and device != "gpu":
            raise DeployError("--use_tensorrt needs the GPU (--device gpu / --use_gpu=True).")
        self.device, self.precision, self.backend = device, precision, backend
        self.cpu_threads = cpu_threads or cpu_count()
        self.use_tensorrt = use_tensorrt
        shape = (self.info or {}).get("input", {}).get("shape") or input_shape
        self.input_shape = list(shape) if shape else None
        self._tmpdir = None
        self._gpu_id, self._max_batch_size = gpu_id, max_batch_size
        if backend == "paddle":
            self._run = self._build_paddle(gpu_id, max_batch_size)
        elif backend == "onnxruntime":
            self._run = self._build_onnxruntime()
        else:
            raise DeployError(f"backend must be 'paddle' or 'onnxruntime', got '{backend}'.")

    # ---- construction -------------------------------------------------------------------
    @classmethod
    def from_model(cls, model, num_seg, target_size, **kwargs):
        """Export an in-memory recognizer to a temporary dir (checked) and serve it from there."""
        from .export import export_model
        tmp = tempfile.mkdtemp(prefix="pv_engine_")
        try:
            export_model(model, tmp, "model", num_seg=num_seg, target_size=target_size)
            engine = cls(model_dir=tmp, **kwargs)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        engine._tmpdir = tmp
        return engine

    def _build_paddle(self, gpu_id, max_batch_size):
        from paddle import inference as pi
        if self.precision == "int8" and not _is_quantized(self.model_file):
            raise DeployError(f"{self.model_file} is not a quantized model: Paddle Inference runs "
                              f"int8 only from a pre-quantized program. For CPU int8 export "
                              f"NAME.int8.onnx with tools/export_model.py --onnx --int8 "
                              f"CALIB_VIDEOS and use --backend onnxruntime; or use fp32/bf16.")
        config = pi.Config(self.model_file, self.params_file)
        config.disable_glog_info()
        if self.device == "gpu":
            precision = pi.PrecisionType.Half if self.precision == "fp16" else pi.PrecisionType.Float32
            if self.use_tensorrt:
                config.enable_use_gpu(256, gpu_id)
                config.enable_tensorrt_engine(workspace_size=1 << 30, max_batch_size=max_batch_size,
                                              min_subgraph_size=3, precision_mode=precision,
                                              use_static=False, use_calib_mode=False)
                if self.input_shape:
                    name = (self.info or {}).get("input", {}).get("name", "imgs")
                    tail = [int(d) for d in self.input_shape[1:]]
                    config.set_trt_dynamic_shape_info({name: [1] + tail},
                                                      {name: [max_batch_size] + tail},
                                                      {name: [1] + tail})
            else:
                config.enable_use_gpu(256, gpu_id, precision)
        else:
            config.disable_gpu()
            config.set_cpu_math_library_num_threads(self.cpu_threads)
            config.enable_onednn()
            if self.precision == "bf16":
                if not cpu_has_bf16():
                    logger.warning("this CPU has no native bf16 (AVX512-BF16/AMX): bf16 will be "
                                   "slower than fp32 here.")
                config.enable_onednn_bfloat16()
            elif self.precision == "int8":
                config.enable_onednn_int8()
        try:
            predictor = pi.create_predictor(config)
        except Exception as e:
            raise DeployError(f"Paddle Inference could not load {self.model_file}: "
                              f"{_short(e)}") from None
        names = predictor.get_input_names()
        if len(names) != 1:
            raise DeployError(f"{self.model_file} has {len(names)} inputs ({', '.join(names)}); a "
                              f"TSM clip model has one (the per-frame online model is served by "
                              f"paddlevideo.deploy.online).")
        inp = predictor.get_input_handle(names[0])
        out = predictor.get_output_handle(predictor.get_output_names()[0])
        self._predictor = predictor

        def run(imgs):
            inp.reshape(list(imgs.shape))
            inp.copy_from_cpu(imgs)
            predictor.run()
            return out.copy_to_cpu()
        return run

    def _build_onnxruntime(self):
        try:
            import onnxruntime  # noqa: F401  (present?)
        except ImportError:
            raise DeployError("backend 'onnxruntime' needs the onnxruntime package "
                              "(pip install onnxruntime).") from None
        if self.precision not in ("fp32", "int8") or self.device != "cpu":
            raise DeployError("the onnxruntime backend runs fp32 or int8 on CPU here.")
        if self.precision == "int8":
            onnx_file = self._int8_file()
        else:
            onnx_file = os.path.splitext(self.model_file)[0] + ".onnx"
            if not os.path.isfile(onnx_file):
                raise DeployError(f"{onnx_file} not found; make it with tools/export_model.py "
                                  f"--onnx.")
        from .onnx_export import cpu_session
        try:
            session = cpu_session(onnx_file, self.cpu_threads)
        except Exception as e:
            raise DeployError(f"onnxruntime could not load {onnx_file}: {_short(e)}") from None
        name = session.get_inputs()[0].name

        def run(imgs):
            return session.run(None, {name: imgs})[0]
        return run

    def _int8_file(self):
        """NAME.int8.onnx, refused unless NAME.infer.yaml records its check as passed."""
        from .quant import int8_path
        path = int8_path(self.model_file)
        if not os.path.isfile(path):
            raise DeployError(f"{path} not found; make it with tools/export_model.py --onnx "
                              f"--int8 CALIB_VIDEOS (post-training quantization, checked).")
        if self.info is None:
            logger.warning("%s has no inference config: its int8 check cannot be confirmed.", path)
            return path
        check = self.info.get("int8_check") or {}
        if not check.get("passed"):
            raise DeployError(f"{path} has no passing int8 check in the inference config (a "
                              f"stale file?); export again with --onnx --int8 CALIB_VIDEOS.")
        return path

    # ---- use ----------------------------------------------------------------------------
    @property
    def labels(self):
        return (self.info or {}).get("labels")

    @property
    def num_seg(self):
        return self.input_shape[1] if self.input_shape else None

    def check_input(self, imgs):
        """Return imgs as contiguous float32, or DeployError if its shape is not the model's."""
        imgs = np.asarray(imgs)
        if imgs.ndim != 5:
            raise DeployError(f"expected a batch of clips [N, T, 3, H, W], got shape "
                              f"{list(imgs.shape)}.")
        if self.input_shape and list(imgs.shape[1:]) != [int(d) for d in self.input_shape[1:]]:
            want = ["N"] + [int(d) for d in self.input_shape[1:]]
            raise DeployError(f"the model takes input {want} but got {list(imgs.shape)}: the "
                              f"preprocessing (num_seg / crop size) does not match the exported "
                              f"model; export it again or use its own inference config.")
        if imgs.shape[0] == 0:
            raise DeployError("empty batch.")
        return np.ascontiguousarray(imgs, dtype=np.float32)

    def __call__(self, imgs):
        imgs = self.check_input(imgs)
        try:
            return np.asarray(self._run(imgs))
        except DeployError:
            raise
        except Exception as e:
            if self.backend == "paddle" and self.precision == "bf16":
                return self._bf16_failed(imgs, e)
            raise DeployError(f"inference failed on input {list(imgs.shape)}: {_short(e)}") from None

    def _bf16_failed(self, imgs, error):
        """Paddle Inference's bf16 passes fail on some graphs (the unidirectional shift's
        slice/concat is one). A precision chosen automatically falls back to fp32 with a warning;
        one asked for explicitly is an error that says what to use instead."""
        if not self._auto_precision:
            raise DeployError(f"bf16 inference failed for {self.model_file} ({_short(error)}): "
                              f"Paddle Inference's bf16 passes do not handle this model; use "
                              f"--precision fp32.") from None
        logger.warning("bf16 inference failed for %s (%s); using fp32 for this model.",
                       self.model_file, _short(error))
        self.precision = "fp32"
        self._run = self._build_paddle(self._gpu_id, self._max_batch_size)
        return self(imgs)

    def close(self):
        self._run = None
        self._predictor = None
        if self._tmpdir:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def __repr__(self):
        return (f"InferenceEngine({self.model_file}, backend={self.backend}, device={self.device}, "
                f"precision={self.precision}, threads={self.cpu_threads})")


def _is_quantized(model_file):
    """A quantized program carries quantize/dequantize ops."""
    try:
        with open(model_file, "rb") as f:
            data = f.read()
    except OSError:
        return False
    return b"quantize_linear" in data or b"fake_quantize" in data


def _short(error):
    from .export import _first_line
    return _first_line(error)
