"""The inference runtime: the one place that runs an exported TSM.

    engine = InferenceEngine("output/export")          # picks the fastest checked engine
    logits = engine(imgs)                               # numpy [N, T, 3, S, S] -> [N, K]
    engine = InferenceEngine.from_model(model, num_seg=8, target_size=224, backend="paddle",
                                        precision="fp32")   # a live model, e.g. for --test

What lives here, once: the clip model's input spec; saving a layer as an inference program; the
inference config (NAME.infer.yaml) on disk; the Paddle Inference config and the ONNX Runtime
session; the precision and engine choice; the check that two sets of logits agree (`difference <=
tolerance x scale`); softmax. Both the tasks (`main.py --test`) and the deploy side import it; it
imports only leaves (errors, optimize, utils.env, utils.quiet), so the import graph has no cycles.

Every failure (missing file, wrong input shape, a runtime error inside Paddle) is a DeployError
with one clear line.
"""
import functools
import glob
import hashlib
import logging
import os
import shutil
import tempfile

import numpy as np
import yaml

from ..utils import quiet
from ..utils import yaml_bounds as bounded_yaml
from ..utils.env import available_cores
from .errors import DeployError, first_line

__all__ = ["INFER_SUFFIX", "ONNX_SUFFIX", "INT8_SUFFIX", "EXPORT_TOLERANCE", "PRECISIONS",
           "BACKENDS", "TARGET_AGREEMENT", "AUTO_MIN_SPEEDUP", "AUTO_MIN_CLIPS", "clip_input",
           "paddle_input_spec", "save_program", "read_infer_config", "check_labels",
           "write_infer_config", "file_digest", "onnx_path", "int8_path", "resolve_model",
           "cpu_has_bf16", "cpu_has_vnni", "default_cpu_precision", "paddle_predictor", "ort_session",
           "onnxruntime_installed", "int8_auto_ok", "checked_onnx", "choose_engine", "softmax",
           "logit_difference", "check_same_logits", "check_against_model", "InferenceEngine"]

logger = logging.getLogger("paddlevideo")

INFER_SUFFIX = ".infer.yaml"
ONNX_SUFFIX = ".onnx"
INT8_SUFFIX = ".int8.onnx"
EXPORT_TOLERANCE = 1e-4        # max abs logit difference allowed, relative to max |logit|
PRECISIONS = ("fp32", "bf16", "int8", "fp16")
BACKENDS = ("paddle", "onnxruntime")
BACKEND_NAMES = {"paddle": "Paddle Inference", "onnxruntime": "ONNX Runtime"}
# `auto` precision takes an int8 model only when its export check agreed this well with fp32 on at
# least this many clips, and it measured this much faster (see docs/deploy.md, "int8").
TARGET_AGREEMENT = 0.99
AUTO_MIN_SPEEDUP = 1.15
AUTO_MIN_CLIPS = 32


# ---- the clip model's input, and saving a program -------------------------------------------------
def clip_input(num_seg, target_size):
    """The input record of a clip model (NAME.infer.yaml's `input`): one float32 tensor `imgs`
    [N, num_seg, 3, S, S] with a free N."""
    return {"name": "imgs", "shape": [-1, int(num_seg), 3, int(target_size), int(target_size)],
            "dtype": "float32", "layout": "N, num_seg, C, H, W; RGB, normalised"}


def paddle_input_spec(record):
    """paddle.static.InputSpec of an input record (clip_input's form), batch left free."""
    import paddle
    return paddle.static.InputSpec([None] + [int(d) for d in record["shape"][1:]],
                                   record.get("dtype", "float32"), record["name"])


def save_program(layer, path_prefix, input_spec, wrap=True):
    """paddle.jit.save of `layer` in eval mode; returns (model_file, params_file).

    input_spec: paddle.static.InputSpec list. `wrap` keeps `layer` itself dygraph (pass False for
    a throwaway layer whose forward does not take one tensor)."""
    import paddle

    class Forward(paddle.nn.Layer):           # converting it leaves `layer` itself dygraph
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, imgs):
            return self.inner(imgs)

    was_training = layer.training
    layer.eval()
    try:
        static = paddle.jit.to_static(Forward(layer) if wrap else layer,
                                      input_spec=input_spec, full_graph=True)
        paddle.jit.save(static, path_prefix)
    except DeployError:
        raise
    except Exception as e:
        raise DeployError(f"converting the model to a static program failed: "
                          f"{first_line(e)}") from e
    finally:
        if was_training:
            layer.train()
    for ext in (".json", ".pdmodel"):
        if os.path.isfile(path_prefix + ext):
            return path_prefix + ext, path_prefix + ".pdiparams"
    raise DeployError(f"paddle.jit.save wrote no program file for {path_prefix}.")


# ---- the inference config -------------------------------------------------------------------------
def read_infer_config(path):
    """Load NAME.infer.yaml; DeployError if missing or not one of ours."""
    if not os.path.isfile(path):
        raise DeployError(f"inference config not found: {path}")
    try:
        with open(path, encoding="utf-8") as f:
            info = bounded_yaml.safe_load(f.read(), path)     # no bomb, no RecursionError
    except yaml.YAMLError as e:
        raise DeployError(f"{path} is not valid YAML: {first_line(e)}") from None
    if not isinstance(info, dict) or "input" not in info:
        raise DeployError(f"{path} is not an inference config written by export_model.")
    check_labels(info.get("labels"), info.get("num_classes"), f"{path}: labels")
    return info

def check_labels(labels, num_classes, where):
    """Class names for a model: None, or one string per class. A shorter list would fail or
    name the wrong class, so it is refused; `where` names the list in the message."""
    if labels is None:
        return
    if not isinstance(labels, (list, tuple)) or not all(isinstance(n, str) for n in labels):
        raise DeployError(f"{where} must be a list of class names.")
    if num_classes is not None and len(labels) != num_classes:
        raise DeployError(f"{where} has {len(labels)} class names but the model has "
                          f"{num_classes} classes; give the label list of the data set the "
                          f"model was trained on (or re-export the model with it).")


def _inside(model_dir, name, key, cfg_path):
    """model_dir/name, refused unless it stays inside model_dir once links are resolved (an
    exported folder's config names only the folder's own files)."""
    if not isinstance(name, str) or not name:
        raise DeployError(f"{cfg_path}: '{key}' must be a file name, got {name!r:.60}.")
    path = os.path.join(model_dir, name)
    root, real = os.path.realpath(model_dir), os.path.realpath(path)
    if os.path.commonpath([root, real]) != root or real == root:
        raise DeployError(f"{cfg_path}: '{key}' ({name!r:.80}) leads outside the model folder "
                          f"{model_dir}; an exported model's files stay in its folder. "
                          f"Re-export it with tools/export_model.py.")
    return path


def write_infer_config(path, info):
    """Write NAME.infer.yaml whole or not at all (a temporary file renamed into place)."""
    clean = _plain(info)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        yaml.safe_dump(clean, f, sort_keys=False, allow_unicode=True)
    os.replace(tmp, path)


def _plain(value):
    """numpy scalars and tuples as YAML-safe Python values."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def file_digest(path):
    """First 16 hex digits of the file's SHA-256: ties an ONNX file to the check that passed it."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def onnx_path(model_file):
    """NAME.onnx beside NAME.json / NAME.pdmodel."""
    return os.path.splitext(model_file)[0] + ONNX_SUFFIX


def int8_path(model_or_onnx_file):
    """NAME.int8.onnx beside NAME.json / NAME.pdmodel / NAME.onnx."""
    return os.path.splitext(model_or_onnx_file)[0] + INT8_SUFFIX


def resolve_model(model_dir=None, model_file=None, params_file=None, save_name=None):
    """(model_file, params_file, infer_config dict or None) from a model dir or explicit files."""
    if model_dir is not None:
        if not os.path.isdir(model_dir):
            raise DeployError(f"model dir not found: {model_dir}")
        if save_name:
            cfg_path = os.path.join(model_dir, save_name + INFER_SUFFIX)
            configs = [cfg_path] if os.path.isfile(cfg_path) else []
        else:
            configs = sorted(glob.glob(os.path.join(glob.escape(model_dir), "*" + INFER_SUFFIX)))
        if len(configs) > 1:
            names = [os.path.basename(c)[:-len(INFER_SUFFIX)] for c in configs]
            raise DeployError(f"{model_dir} holds several models ({', '.join(names)}); "
                              f"choose one with --save_name.")
        if configs:
            info = read_infer_config(configs[0])
            model_file = _inside(model_dir, info.get("model_file"), "model_file", configs[0])
            params_file = _inside(model_dir, info.get("params_file"), "params_file", configs[0])
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
                    for ext in ("*.json", "*.pdmodel")
                    for p in glob.glob(os.path.join(glob.escape(model_dir), ext))})
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


# ---- the machine ------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _cpu_flags():
    """The CPU's feature flags from /proc/cpuinfo (empty where there is none)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def cpu_has_bf16():
    """Whether the CPU computes bf16 natively (AVX512-BF16 or AMX), so oneDNN bf16 is fast."""
    try:
        from paddle.base import core
        return bool(core.supports_bfloat16_fast_performance())
    except Exception:                                  # older Paddle: read the flags
        return bool(_cpu_flags() & {"avx512_bf16", "amx_bf16"})


def cpu_has_vnni():
    """Whether the CPU has int8 dot-product instructions (AVX512-VNNI, AVX-VNNI or AMX-INT8),
    without which ONNX Runtime's int8 convolutions are seldom faster than fp32."""
    return bool(_cpu_flags() & {"avx512_vnni", "avx_vnni", "amx_int8"})


def default_cpu_precision():
    """Paddle Inference's fastest precision that keeps the answers on this CPU: bf16 where native,
    else fp32 (see docs/deploy.md for the agreement measured)."""
    return "bf16" if cpu_has_bf16() else "fp32"


def onnxruntime_installed():
    """Whether onnxruntime can be imported here (without importing it)."""
    import importlib.util
    return importlib.util.find_spec("onnxruntime") is not None


# ---- sessions ----------------------------------------------------------------------------------------
def paddle_predictor(model_file, params_file, device="cpu", precision="fp32", threads=None,
                     use_tensorrt=False, gpu_id=0, trt_shapes=None, max_batch_size=1):
    """A Paddle Inference predictor: the one configuration every Paddle engine here uses.

    CPU: oneDNN on, `threads` math threads (all cores by default), bf16 through oneDNN's bf16
    passes, int8 only for an already quantized program. GPU: fp32 or fp16, optionally TensorRT
    with `trt_shapes` {input: (min, max, opt)} for a dynamic batch. Paddle's memory optimisation
    is left off: it breaks `.json` (PIR) programs in Paddle 3.3."""
    from paddle import inference as pi
    config = pi.Config(model_file, params_file)
    config.disable_glog_info()
    if device == "gpu":
        mode = pi.PrecisionType.Half if precision == "fp16" else pi.PrecisionType.Float32
        if use_tensorrt:
            config.enable_use_gpu(256, gpu_id)
            config.enable_tensorrt_engine(workspace_size=1 << 30, max_batch_size=max_batch_size,
                                          min_subgraph_size=3, precision_mode=mode,
                                          use_static=False, use_calib_mode=False)
            if trt_shapes:
                config.set_trt_dynamic_shape_info({k: v[0] for k, v in trt_shapes.items()},
                                                  {k: v[1] for k, v in trt_shapes.items()},
                                                  {k: v[2] for k, v in trt_shapes.items()})
        else:
            config.enable_use_gpu(256, gpu_id, mode)
    else:
        config.disable_gpu()
        config.set_cpu_math_library_num_threads(threads or available_cores())
        config.enable_onednn()
        if precision == "bf16":
            if not cpu_has_bf16():
                logger.warning("this CPU has no native bf16 (AVX512-BF16/AMX): bf16 will be "
                               "slower than fp32 here.")
            config.enable_onednn_bfloat16()
        elif precision == "int8":
            config.enable_onednn_int8()
        elif precision != "fp32":
            raise DeployError(f"Paddle Inference on CPU runs fp32, bf16 or int8, not {precision}.")
    try:
        return pi.create_predictor(config)
    except Exception as e:
        raise DeployError(f"Paddle Inference could not load {model_file}: {first_line(e)}") from None


def ort_session(onnx_file, threads=None, save_optimized=None):
    """An ONNX Runtime CPU session with `threads` intra-op threads (all cores by default) and no
    inter-op parallelism: the one recipe for every ONNX Runtime use here. `save_optimized`: also
    write the model after ONNX Runtime's basic, hardware-independent graph optimisations
    (constant folding, Conv+Add and MatMul+Add fusions; standard ONNX operators) to that file."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise DeployError("ONNX Runtime is not installed (pip install onnxruntime, as in "
                          "requirements.txt).") from None
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or available_cores()
    options.inter_op_num_threads = 1
    options.log_severity_level = 3        # errors only: its warnings are about graph housekeeping
    if save_optimized:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        options.optimized_model_filepath = save_optimized
    try:
        return ort.InferenceSession(onnx_file, options, providers=["CPUExecutionProvider"])
    except Exception as e:
        raise DeployError(f"ONNX Runtime could not load {onnx_file}: {first_line(e)}") from None


# ---- which engine -------------------------------------------------------------------------------------
def int8_auto_ok(info):
    """Whether `auto` precision may pick int8 for a model with inference config `info`: its int8
    check passed on at least AUTO_MIN_CLIPS clips with agreement >= TARGET_AGREEMENT, was
    measured AUTO_MIN_SPEEDUP x faster than fp32 ONNX Runtime, and this CPU has VNNI."""
    check = (info or {}).get("int8_check") or {}
    return bool(check.get("passed")
                and check.get("clips", 0) >= AUTO_MIN_CLIPS
                and check.get("agreement", 0.0) >= TARGET_AGREEMENT
                and check.get("speedup", 0.0) >= AUTO_MIN_SPEEDUP
                and cpu_has_vnni())


def _checked_file(path, check, what, remedy):
    """`path` when it exists and NAME.infer.yaml's `check` passed for exactly this file, else a
    DeployError naming what is wrong (a file from another export must not be run)."""
    if not os.path.isfile(path):
        raise DeployError(f"{path} not found; {remedy}")
    if not check or not check.get("passed", True) or "sha256" not in check:
        raise DeployError(f"{path} has no passing {what} check in its inference config (left by "
                          f"another export?); {remedy}")
    if check["sha256"] != file_digest(path):
        raise DeployError(f"{path} is not the file its inference config's {what} check passed "
                          f"(replaced since the export?); {remedy}")
    return path


def checked_onnx(model_file, info, precision):
    """The ONNX file for `precision` (NAME.onnx for fp32, NAME.int8.onnx for int8), only when the
    export's check of that very file is recorded as passed."""
    if precision == "int8":
        return _checked_file(int8_path(model_file), (info or {}).get("int8_check"), "int8",
                             "make it with tools/export_model.py --int8 CALIB_VIDEOS.")
    return _checked_file(onnx_path(model_file), (info or {}).get("onnx_check"), "ONNX",
                         "export again with tools/export_model.py (ONNX is written by default).")


def choose_engine(model_file, info, device="cpu", backend="auto", precision="auto"):
    """(backend, precision, note) for a model: the fastest engine whose answers were checked.

    CPU, backend auto: ONNX Runtime when onnxruntime is installed and the export has a checked
    NAME.onnx (fp32; int8 under int8_auto_ok's rule or when asked), else Paddle Inference (bf16 on
    a CPU with AVX512-BF16/AMX, else fp32). GPU: Paddle Inference fp32 (or what was asked).
    `note` says why the faster engine was not taken, or ''."""
    precision = None if precision in (None, "auto") else precision
    if backend not in ("auto",) + BACKENDS:
        raise DeployError(f"backend must be auto, paddle or onnxruntime, got '{backend}'.")
    if precision is not None and precision not in PRECISIONS:
        raise DeployError(f"precision must be auto or one of {', '.join(PRECISIONS)}, "
                          f"got '{precision}'.")
    if device == "gpu":
        if backend == "onnxruntime":
            raise DeployError("the onnxruntime backend runs on CPU here; drop --use_gpu or use "
                              "--backend paddle.")
        return "paddle", precision or "fp32", ""
    if backend == "paddle":
        return "paddle", precision or default_cpu_precision(), ""
    if backend == "onnxruntime":
        if precision is None:
            try:
                checked_onnx(model_file, info, "int8")
                return "onnxruntime", ("int8" if int8_auto_ok(info) else "fp32"), ""
            except DeployError:
                return "onnxruntime", "fp32", ""
        return "onnxruntime", precision, ""
    # auto
    if precision not in (None, "fp32", "int8"):
        return "paddle", precision, ""
    if not onnxruntime_installed():
        return "paddle", precision or default_cpu_precision(), "onnxruntime is not installed"
    if precision == "int8":
        checked_onnx(model_file, info, "int8")         # int8 runs only through ONNX Runtime
        return "onnxruntime", "int8", ""
    try:
        checked_onnx(model_file, info, "fp32")
    except DeployError as e:
        return "paddle", precision or default_cpu_precision(), str(e)
    if precision is None and int8_auto_ok(info):
        try:
            checked_onnx(model_file, info, "int8")
            return "onnxruntime", "int8", ""
        except DeployError:
            pass
    return "onnxruntime", "fp32", ""


# ---- comparing answers ---------------------------------------------------------------------------------
def softmax(logits):
    """Probabilities along the last axis, in float64 (no overflow for large logits)."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def logit_difference(got, want):
    """(max abs difference, logit scale = max |want|, never below 1e-6)."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    return float(np.abs(got - want).max()), float(max(np.abs(want).max(), 1e-6))


def check_same_logits(got, want, what, tolerance=EXPORT_TOLERANCE):
    """(diff, scale) when `got` equals `want` within tolerance x scale; else a DeployError saying
    that `what` gives other answers."""
    diff, scale = logit_difference(got, want)
    if not diff <= tolerance * scale:
        raise DeployError(f"{what} gives other logits than the dygraph model: max abs difference "
                          f"{diff:.3g} for logits of scale {scale:.3g} (allowed {tolerance:g} x "
                          f"scale). Do not deploy it.")
    return diff, scale


def check_against_model(model, run, input_shape, what, batch=2, seed=0):
    """Run the dygraph `model` and `run` (numpy in, logits out) on one seeded random batch of
    `input_shape` [-1, T, 3, S, S]; (diff, scale) or DeployError when they differ."""
    import paddle
    shape = [batch] + [int(d) for d in input_shape[1:]]
    imgs = np.random.RandomState(seed).standard_normal(shape).astype("float32")
    was_training = model.training
    model.eval()
    try:
        with paddle.no_grad():
            expected = model(paddle.to_tensor(imgs)).numpy()
    finally:
        if was_training:
            model.train()
    return check_same_logits(run(imgs), expected, what)


# ---- the engine -------------------------------------------------------------------------------------------
class InferenceEngine:
    """Runs an exported TSM: `engine(imgs [N, T, 3, S, S] float32) -> logits [N, K]`.

    Args:
        model_dir: an export_model output folder (or give model_file + params_file).
        device: 'cpu' or 'gpu'.
        backend: 'auto' (see choose_engine), 'paddle' (Paddle Inference) or 'onnxruntime' (runs
            NAME.onnx, or NAME.int8.onnx for int8, only when the export's check of that file
            passed).
        precision: 'auto'/None, 'fp32', 'bf16' (CPU, oneDNN), 'int8' (CPU, ONNX Runtime),
            'fp16' (GPU).
        cpu_threads: math threads on CPU; None uses all cores.
        use_tensorrt: GPU only; TensorRT subgraphs in `precision` (fp32 or fp16).
        input_shape: the expected [-1, T, 3, S, S] when there is no inference config.
    """

    def __init__(self, model_dir=None, model_file=None, params_file=None, save_name=None,
                 device="cpu", precision=None, cpu_threads=None, use_tensorrt=False, gpu_id=0,
                 backend="auto", input_shape=None, max_batch_size=8):
        self.model_file, self.params_file, self.info = resolve_model(
            model_dir, model_file, params_file, save_name)
        if device not in ("cpu", "gpu"):
            raise DeployError(f"device must be 'cpu' or 'gpu', got '{device}'.")
        self._auto_precision = precision in (None, "auto")
        backend, precision, self.note = choose_engine(self.model_file, self.info, device,
                                                      backend, precision)
        if device == "cpu" and precision == "fp16":
            raise DeployError("fp16 needs a GPU; on CPU use bf16 (or fp32).")
        if device == "gpu" and precision == "bf16":
            raise DeployError("bf16 is the CPU's low precision here; on GPU use fp16.")
        if use_tensorrt and device != "gpu":
            raise DeployError("--use_tensorrt needs the GPU (--use_gpu=True).")
        self.device, self.precision, self.backend = device, precision, backend
        self.cpu_threads = cpu_threads or available_cores()
        self.use_tensorrt = use_tensorrt
        shape = (self.info or {}).get("input", {}).get("shape") or input_shape
        self.input_shape = list(shape) if shape else None
        self.onnx_file = None
        self._tmpdir = None
        self._gpu_id, self._max_batch_size = gpu_id, max_batch_size
        self._run = (self._build_paddle() if backend == "paddle" else self._build_onnxruntime())

    @classmethod
    def from_model(cls, model, num_seg, target_size, **kwargs):
        """Save an in-memory recognizer (BatchNorm folded) to a temporary dir, check the saved
        program against the model (Paddle Inference, CPU fp32), and serve it from there with
        `kwargs` (device, backend, precision, ...), e.g. for `main.py --test`."""
        from .optimize import inference_copy
        spec = clip_input(num_seg, target_size)
        tmp = tempfile.mkdtemp(prefix="pv_engine_")
        try:
            files = save_program(inference_copy(model), os.path.join(tmp, "model"),
                                 [paddle_input_spec(spec)])
            checker = cls(model_file=files[0], params_file=files[1], backend="paddle",
                          precision="fp32", input_shape=spec["shape"],
                          cpu_threads=kwargs.get("cpu_threads"))
            check_against_model(model, checker, spec["shape"],
                                f"the inference program of {type(model).__name__}")
            same = (kwargs.get("device", "cpu") == "cpu" and kwargs.get("backend") == "paddle"
                    and kwargs.get("precision") == "fp32" and not kwargs.get("use_tensorrt"))
            if same:
                engine = checker
            else:
                checker.close()
                engine = cls(model_file=files[0], params_file=files[1],
                             input_shape=spec["shape"], **kwargs)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        engine._tmpdir = tmp
        return engine

    def _build_paddle(self):
        if self.precision == "int8" and not _is_quantized(self.model_file):
            raise DeployError(f"{self.model_file} is not a quantized model: Paddle Inference runs "
                              f"int8 only from a pre-quantized program. For CPU int8 export "
                              f"NAME.int8.onnx with tools/export_model.py --int8 CALIB_VIDEOS "
                              f"(ONNX Runtime); or use fp32/bf16.")
        trt_shapes = None
        if self.use_tensorrt and self.input_shape:
            name = (self.info or {}).get("input", {}).get("name", "imgs")
            tail = [int(d) for d in self.input_shape[1:]]
            trt_shapes = {name: ([1] + tail, [self._max_batch_size] + tail, [1] + tail)}
        predictor = paddle_predictor(self.model_file, self.params_file, self.device,
                                     self.precision, self.cpu_threads, self.use_tensorrt,
                                     self._gpu_id, trt_shapes, self._max_batch_size)
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
            with quiet.native_stdout_off():     # oneDNN's kernel choice writes to stdout
                predictor.run()
            return out.copy_to_cpu()
        return run

    def _build_onnxruntime(self):
        if self.precision not in ("fp32", "int8") or self.device != "cpu":
            raise DeployError("the onnxruntime backend runs fp32 or int8 on CPU here.")
        if self.info is None:
            raise DeployError(f"{self.model_file} has no inference config (NAME.infer.yaml), so "
                              f"no ONNX check can be confirmed; use --backend paddle.")
        self.onnx_file = checked_onnx(self.model_file, self.info, self.precision)
        session = ort_session(self.onnx_file, self.cpu_threads)
        name = session.get_inputs()[0].name

        def run(imgs):
            return session.run(None, {name: imgs})[0]
        return run

    # ---- use ----------------------------------------------------------------------------
    @property
    def labels(self):
        return (self.info or {}).get("labels")

    @property
    def num_seg(self):
        return int(self.input_shape[1]) if self.input_shape else None

    def describe(self):
        """One line: engine, precision, device and threads, and the file it runs."""
        where = (f"CPU, {self.cpu_threads} threads" if self.device == "cpu"
                 else f"GPU {self._gpu_id}" + (", TensorRT" if self.use_tensorrt else ""))
        return (f"{BACKEND_NAMES[self.backend]} {self.precision} ({where}): "
                f"{self.onnx_file or self.model_file}")

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
            raise DeployError(f"inference failed on input {list(imgs.shape)}: "
                              f"{first_line(e)}") from None

    def _bf16_failed(self, imgs, error):
        """Paddle Inference's bf16 passes fail on some graphs (the unidirectional shift's
        slice/concat is one). A precision chosen automatically falls back to fp32 with a warning;
        one asked for explicitly is an error that says what to use instead."""
        if not self._auto_precision:
            raise DeployError(f"bf16 inference failed for {self.model_file} ({first_line(error)}): "
                              f"Paddle Inference's bf16 passes do not handle this model; use "
                              f"--precision fp32.") from None
        logger.warning("bf16 inference failed for %s (%s); using fp32 for this model.",
                       self.model_file, first_line(error))
        self.precision = "fp32"
        self._run = self._build_paddle()
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
        return f"InferenceEngine({self.describe()})"


def _is_quantized(model_file):
    """A quantized program carries quantize/dequantize ops."""
    try:
        with open(model_file, "rb") as f:
            data = f.read()
    except OSError:
        return False
    return b"quantize_linear" in data or b"fake_quantize" in data
