"""Post-training static int8 quantization of an exported ONNX model with ONNX Runtime, checked.

    clips = calibration_clips("calib_videos/", pipeline, max_clips=32)
    result = quantize_onnx("out/TSM.onnx", clips)        # writes out/TSM.int8.onnx if it agrees

QDQ format, int8 weights quantized per output channel, activations calibrated (MinMax) on real
preprocessed clips. The quantized model is run beside the fp32 ONNX model on the calibration
clips: top-1 agreement and the max logit difference (relative to the logit scale) are measured,
and the model is refused (no file written) when the agreement is below the threshold. Paddle
Inference's own int8 path needs a pre-quantized program, which this does not produce.
"""
import logging
import os
import tempfile

import numpy as np

from .errors import DeployError

__all__ = ["INT8_SUFFIX", "DEFAULT_CALIB_CLIPS", "MIN_CALIB_CLIPS", "TARGET_AGREEMENT",
           "AUTO_MIN_SPEEDUP", "AUTO_MIN_CLIPS", "int8_path", "required_agreement",
           "calibration_clips", "quantize_onnx", "int8_auto_ok", "cpu_has_vnni", "Int8Refused",
           "record_int8_check"]

logger = logging.getLogger("paddlevideo")

INT8_SUFFIX = ".int8.onnx"
DEFAULT_CALIB_CLIPS = 32
MIN_CALIB_CLIPS = 8            # fewer clips say too little about agreement to check anything
TARGET_AGREEMENT = 0.99        # top-1 agreement with fp32 asked of an int8 model
AUTO_MIN_SPEEDUP = 1.15        # `--precision auto` takes int8 only when measured this much faster
AUTO_MIN_CLIPS = 32            # ... and checked on at least this many clips


def int8_path(model_or_onnx_file):
    """NAME.int8.onnx beside NAME.json / NAME.pdmodel / NAME.onnx."""
    return os.path.splitext(model_or_onnx_file)[0] + INT8_SUFFIX


def required_agreement(n):
    """The top-1 agreement an int8 model must reach on n clips: 0.99, but never fewer than one
    disagreement allowed. With n < 100 clips a 0.99 bar would allow none, and a model that truly
    agrees 99% of the time would then be refused by chance (27% of the time on 32 clips); allowing
    one keeps that chance at 4% on 32 clips while two disagreements in 32 (94%) still fail."""
    if n <= 0:
        return 1.0
    return min(TARGET_AGREEMENT, (n - 1) / n)


def cpu_has_vnni():
    """Whether the CPU has int8 dot-product instructions (AVX512-VNNI, AVX-VNNI or AMX-INT8),
    without which ONNX Runtime's int8 convolutions are seldom faster than fp32."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            flags = f.read()
    except OSError:
        return False
    return any(k in flags for k in ("avx512_vnni", "avx_vnni", "amx_int8"))


def calibration_clips(source, pipeline, max_clips=DEFAULT_CALIB_CLIPS, num_seg=None):
    """Preprocessed clips [n, T, 3, S, S] float32 from `source` (a video, a folder of videos or a
    list file) through the model's test pipeline, as predict does. At most `max_clips` videos are
    read, spread evenly over the sorted list; unreadable or too-short ones are skipped (logged)."""
    from ..loader import Compose
    from .predictor import collect_inputs
    if not pipeline:
        raise DeployError("int8 calibration needs the model's test pipeline (PIPELINE.test).")
    if max_clips < 1:
        raise DeployError(f"--calib_clips must be at least 1, got {max_clips}.")
    if not os.path.exists(source):
        raise DeployError(f"calibration videos not found: {source}")
    files = collect_inputs(source)
    if len(files) > max_clips:
        files = [files[int(i)] for i in np.linspace(0, len(files) - 1, max_clips).round()]
    try:
        compose = Compose(pipeline)
    except Exception as e:
        raise DeployError(f"the test pipeline cannot be built: {e}") from None
    clips, skipped = [], 0
    for path in files:
        try:
            out = compose({"filename": path, "rng": np.random.default_rng(0)})
        except Exception as e:
            skipped += 1
            logger.warning("calibration: skip %s (%s)", path, str(e).strip().splitlines()[0]
                           if str(e).strip() else type(e).__name__)
            continue
        frames = out.get("frames_len")
        if num_seg and frames is not None and frames < num_seg:
            skipped += 1
            logger.warning("calibration: skip %s (%d frames < num_seg %d)", path, frames, num_seg)
            continue
        clips.append(np.asarray(out["imgs"], dtype=np.float32))
    if not clips:
        raise DeployError(f"no usable calibration clip in {source} ({skipped} skipped).")
    shapes = {c.shape for c in clips}
    if len(shapes) > 1:
        raise DeployError(f"calibration clips have different shapes {sorted(shapes)}: the test "
                          f"pipeline must give one clip size.")
    return np.stack(clips)


class _ClipReader:
    """onnxruntime CalibrationDataReader feeding one clip at a time."""

    def __init__(self, name, clips):
        self.name, self.clips, self.i = name, clips, 0

    def get_next(self):
        if self.i >= len(self.clips):
            return None
        self.i += 1
        return {self.name: self.clips[self.i - 1:self.i]}

    def rewind(self):
        self.i = 0


def _run_all(session, clips):
    name = session.get_inputs()[0].name
    return np.concatenate([session.run(None, {name: clips[i:i + 1]})[0]
                           for i in range(len(clips))])


def _median_ms(session, clip, runs):
    from ..utils.timing import time_calls
    name = session.get_inputs()[0].name
    return 1000.0 * float(np.median(time_calls(lambda: session.run(None, {name: clip}), runs)))


def quantize_onnx(onnx_file, clips, out_file=None, min_agreement=None, speed_runs=5,
                  threads=None, preprocess=True):
    """Quantize `onnx_file` (fp32) to int8 with `clips` [n, T, 3, S, S] as calibration data, and
    check it against the fp32 model on the same clips. Writes `out_file` (default
    NAME.int8.onnx) only when the top-1 agreement reaches `min_agreement` (default
    required_agreement(n)); otherwise raises DeployError and leaves no file. Returns the check
    record: agreement, agree, clips, max_abs_diff, logit_scale, rel_diff, required, passed,
    fp32_ms, int8_ms, speedup (batch 1, `speed_runs` runs; 0 skips timing)."""
    try:
        from onnxruntime.quantization import (CalibrationMethod, QuantFormat, QuantType,
                                              quant_pre_process, quantize_static)
    except ImportError:
        raise DeployError("int8 quantization needs onnxruntime (pip install onnxruntime).") from None
    from .engine import cpu_count, _short
    from .onnx_export import cpu_session
    if not os.path.isfile(onnx_file):
        raise DeployError(f"{onnx_file} not found; export the ONNX model first (--onnx).")
    clips = np.ascontiguousarray(clips, dtype=np.float32)
    if clips.ndim != 5:
        raise DeployError(f"calibration clips must be [n, T, 3, S, S], got {list(clips.shape)}.")
    n = len(clips)
    if n < MIN_CALIB_CLIPS:
        raise DeployError(f"{n} calibration clip(s); int8 needs at least {MIN_CALIB_CLIPS} to "
                          f"calibrate and check (give more videos or a larger --calib_clips).")
    out_file = out_file or int8_path(onnx_file)
    required = required_agreement(n) if min_agreement is None else float(min_agreement)
    threads = threads or cpu_count()
    fp32 = cpu_session(onnx_file, threads)
    name = fp32.get_inputs()[0].name
    want_shape = fp32.get_inputs()[0].shape
    if len(want_shape) == 5 and all(isinstance(d, int) for d in want_shape[1:]) \
            and list(clips.shape[1:]) != list(want_shape[1:]):
        raise DeployError(f"calibration clips are {list(clips.shape[1:])} but the model takes "
                          f"{['N'] + list(want_shape[1:])}: use the model's own test pipeline.")

    workdir = tempfile.mkdtemp(prefix="pv_int8_", dir=os.path.dirname(os.path.abspath(out_file)))
    tmp_out = os.path.join(workdir, "model.int8.onnx")
    try:
        source = onnx_file
        if preprocess:                 # shape inference + graph fusions ORT recommends first
            prepared = os.path.join(workdir, "model.prep.onnx")
            try:
                quant_pre_process(onnx_file, prepared)
                source = prepared
            except Exception as e:
                logger.info("int8: pre-processing skipped (%s)", _short(e))
        try:
            quantize_static(source, tmp_out, _ClipReader(name, clips),
                            quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            calibrate_method=CalibrationMethod.MinMax,
                            extra_options={"ActivationSymmetric": False,
                                           "WeightSymmetric": True})
            int8 = cpu_session(tmp_out, threads)
        except DeployError:
            raise
        except Exception as e:
            raise DeployError(f"onnxruntime could not quantize {onnx_file}: {_short(e)}") from None

        ref = _run_all(fp32, clips)
        got = _run_all(int8, clips)
        agree = int((ref.argmax(1) == got.argmax(1)).sum())
        diff = float(np.abs(got - ref).max())
        scale = float(max(np.abs(ref).max(), 1e-6))
        record = {"file": os.path.basename(out_file), "clips": n, "agree": agree,
                  "agreement": round(agree / n, 4), "required": round(required, 4),
                  "max_abs_diff": diff, "logit_scale": scale, "rel_diff": round(diff / scale, 4),
                  "passed": agree / n >= required, "calibration": "MinMax, per-channel weights, QDQ",
                  "threads": threads}
        if speed_runs:
            record["fp32_ms"] = round(_median_ms(fp32, clips[:1], speed_runs), 2)
            record["int8_ms"] = round(_median_ms(int8, clips[:1], speed_runs), 2)
            record["speedup"] = round(record["fp32_ms"] / record["int8_ms"], 3)
            record["cpu_vnni"] = cpu_has_vnni()
        del int8
        if not record["passed"]:
            if os.path.isfile(out_file):
                os.remove(out_file)    # a stale one must not outlive a failed check
            raise Int8Refused(
                f"int8 model refused: top-1 agreement with fp32 {agree}/{n} = {agree / n:.3f} on "
                f"the calibration clips, below the required {required:.3f} (max logit difference "
                f"{diff / scale:.1%} of the logit scale). No {os.path.basename(out_file)} was "
                f"written; use fp32/bf16, or calibrate on more representative videos.", record)
        os.replace(tmp_out, out_file)
        return record
    finally:
        for f in os.listdir(workdir):
            os.remove(os.path.join(workdir, f))
        os.rmdir(workdir)


class Int8Refused(DeployError):
    """The quantized model disagreed with fp32 too often; `record` holds the measurements."""

    def __init__(self, message, record):
        super().__init__(message)
        self.record = record


def int8_auto_ok(info):
    """Whether `--precision auto` may pick int8 for a model with inference config `info`: its
    int8 check passed on at least AUTO_MIN_CLIPS clips with agreement >= TARGET_AGREEMENT, was
    measured AUTO_MIN_SPEEDUP x faster than fp32 ONNX Runtime, and this CPU has VNNI."""
    check = (info or {}).get("int8_check") or {}
    return bool(check.get("passed")
                and check.get("clips", 0) >= AUTO_MIN_CLIPS
                and check.get("agreement", 0.0) >= TARGET_AGREEMENT
                and check.get("speedup", 0.0) >= AUTO_MIN_SPEEDUP
                and cpu_has_vnni())


def record_int8_check(infer_config, record):
    """Write `record` as `int8_check` into NAME.infer.yaml (keeping the rest)."""
    import yaml
    from .export import read_infer_config
    info = read_infer_config(infer_config)
    info["int8_check"] = {k: (v.item() if isinstance(v, np.generic) else v)
                          for k, v in record.items()}
    with open(infer_config, "w", encoding="utf-8") as f:
        yaml.safe_dump(info, f, sort_keys=False, allow_unicode=True)

