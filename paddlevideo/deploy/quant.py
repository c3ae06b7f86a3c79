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

from ..utils.env import available_cores
from .errors import DeployError, first_line
from .inputs import ClipMaker, collect_inputs
from .runtime import (TARGET_AGREEMENT, cpu_has_vnni, file_digest, int8_path, logit_difference,
                      ort_session)

__all__ = ["DEFAULT_CALIB_CLIPS", "MIN_CALIB_CLIPS", "required_agreement", "calibration_clips",
           "quantize_onnx", "Int8Refused"]

logger = logging.getLogger("paddlevideo")

DEFAULT_CALIB_CLIPS = 32
MIN_CALIB_CLIPS = 8            # fewer clips say too little about agreement to check anything


def required_agreement(n):
    """The top-1 agreement an int8 model must reach on n clips: 0.99, but never fewer than one
    disagreement allowed. With n < 100 clips a 0.99 bar would allow none, and a model that truly
    agrees 99% of the time would then be refused by chance (27% of the time on 32 clips); allowing
    one keeps that chance at 4% on 32 clips while two disagreements in 32 (94%) still fail."""
    if n <= 0:
        return 1.0
    return min(TARGET_AGREEMENT, (n - 1) / n)


def calibration_clips(source, pipeline, max_clips=DEFAULT_CALIB_CLIPS, num_seg=None, frames=None):
    """Preprocessed clips [n, T, 3, S, S] float32 from `source` (videos or frame folders: a file,
    a folder, a glob or a list file) through the model's test pipeline, exactly as predict reads
    them. At most `max_clips` inputs are read, spread evenly over the sorted list; unreadable or
    too-short ones are skipped (logged)."""
    if max_clips < 1:
        raise DeployError(f"--calib_clips must be at least 1, got {max_clips}.")
    if not os.path.exists(source):
        raise DeployError(f"calibration videos not found: {source}")
    make_clip = ClipMaker(pipeline, frames)
    items = collect_inputs(source, frames=make_clip.frames)
    if len(items) > max_clips:
        items = [items[int(i)] for i in np.linspace(0, len(items) - 1, max_clips).round()]
    clips, skipped = [], 0
    for item in items:
        try:
            imgs, count = make_clip(item)
        except DeployError as e:
            skipped += 1
            logger.warning("calibration: skip %s", e)
            continue
        if num_seg and count and count < num_seg:
            skipped += 1
            logger.warning("calibration: skip %s (%d frames < num_seg %d)", item.path, count,
                           num_seg)
            continue
        clips.append(imgs)
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
    except ImportError as e:
        raise DeployError(f"int8 quantization needs onnxruntime's quantization tools, which could "
                          f"not be imported ({e}); install requirements.txt.") from None
    from ..utils.timing import time_calls
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
    threads = threads or available_cores()
    fp32 = ort_session(onnx_file, threads)
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
            except ImportError as e:      # a broken environment must not change the result quietly
                raise DeployError(f"int8 pre-processing needs {e.name or 'a package'} ({e}); "
                                  f"install requirements.txt.") from None
            except Exception as e:
                logger.info("int8: pre-processing skipped (%s)", first_line(e))
        try:
            quantize_static(source, tmp_out, _ClipReader(name, clips),
                            quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            calibrate_method=CalibrationMethod.MinMax,
                            extra_options={"ActivationSymmetric": False,
                                           "WeightSymmetric": True})
            int8 = ort_session(tmp_out, threads)
        except DeployError:
            raise
        except Exception as e:
            raise DeployError(f"onnxruntime could not quantize {onnx_file}: {first_line(e)}") from None

        ref = _run_all(fp32, clips)
        got = _run_all(int8, clips)
        agree = int((ref.argmax(1) == got.argmax(1)).sum())
        diff, scale = logit_difference(got, ref)
        record = {"file": os.path.basename(out_file), "clips": n, "agree": agree,
                  "agreement": round(agree / n, 4), "required": round(required, 4),
                  "max_abs_diff": diff, "logit_scale": scale, "rel_diff": round(diff / scale, 4),
                  "passed": agree / n >= required, "calibration": "MinMax, per-channel weights, QDQ",
                  "threads": threads}
        if speed_runs:
            def median_ms(session):
                clip = clips[:1]
                runs = time_calls(lambda: session.run(None, {name: clip}), speed_runs)
                return round(1000.0 * float(np.median(runs)), 2)
            record["fp32_ms"] = median_ms(fp32)
            record["int8_ms"] = median_ms(int8)
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
        record["sha256"] = file_digest(out_file)
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
