"""Online TSM: a unidirectional TSM run one frame at a time on a stream.

A unidirectional model shifts channels [0, c) of each shifting block's input from frame t-1 (zeros
at t = 0) and nothing from the future. So a stream can be processed frame by frame: per frame the
2D network runs once, and each shifting block keeps one buffer, the first c channels of its input
at the previous frame, which the next frame takes in place of its own.

Per-frame output, precisely: the logits of frame t are `head.fc(mean_HW(backbone features of frame
t))`, the backbone+fc before the head's averaging over segments. For a clip of T frames starting
from zero buffers they equal the offline unidirectional model's per-frame logits on the same T
frames (`Recognizer2D.frame_logits`), and their mean equals the offline model's clip logits (the
fc is linear). The runner's smoothed prediction is the mean of the per-frame probabilities over
the last `window` frames (num_seg by default).

The network is the model's own (`Recognizer2D.forward_step`, wrapped for export by
`paddlevideo.modeling.OnlineTSM`); this module is input, output and the loop.

The step exports as an inference model: inputs `frame` [B, 3, S, S] and `buffer_i`; outputs the
logits and the new buffers, in that order.
"""
import collections
import json
import logging
import os
import time

import numpy as np
import paddle
import paddle.nn as nn

from ..modeling.recognizers.online import OnlineTSM
from ..utils import quiet
from .errors import DeployError, first_line
from .runtime import (INFER_SUFFIX, check_labels, check_same_logits, default_cpu_precision,
                      paddle_predictor, resolve_model, save_program, softmax,
                      write_infer_config)

__all__ = ["OnlineTSM", "export_online", "OnlineStepEngine", "OnlineRecognizer", "open_stream",
           "frame_preprocessor", "LabelledVideo", "display_available"]

logger = logging.getLogger("paddlevideo")


def export_online(model, outdir, save_name="TSM_online", target_size=224, infer_config=None,
                  verify=True):
    """Export the per-frame step: NAME.json/.pdiparams + NAME.infer.yaml (kind: online_step).
    Checks the exported step against the dygraph step on three random frames."""
    from .optimize import inference_copy
    step = OnlineTSM(model)
    step.eval()
    shapes = step.buffer_shapes(target_size)
    spec = [paddle.static.InputSpec([None, 3, target_size, target_size], "float32", "frame")]
    spec.append([paddle.static.InputSpec([None] + s, "float32", f"buffer_{i}")
                 for i, s in enumerate(shapes)])
    os.makedirs(outdir, exist_ok=True)
    prefix = os.path.join(outdir, save_name)
    model_file, params_file = save_program(OnlineTSM(inference_copy(model)), prefix, spec,
                                           wrap=False)
    info = {"kind": "online_step", "save_name": save_name,
            "model_file": os.path.basename(model_file),
            "params_file": os.path.basename(params_file),
            "input": {"name": "frame", "shape": [-1, 3, target_size, target_size],
                      "dtype": "float32"},
            "buffers": [[-1] + s for s in shapes], "target_size": target_size,
            "num_seg": model.backbone.num_seg, "num_classes": model.head.num_classes,
            "shift_mode": "unidirectional", "shift_ratio": model.backbone.shift_ratio}
    info.update(infer_config or {})
    if verify:
        engine = OnlineStepEngine(model_file=model_file, params_file=params_file, precision="fp32",
                                  buffer_shapes=info["buffers"])
        rng = np.random.RandomState(0)
        bufs_d = step.init_buffers(target_size)
        bufs_e = engine.init_buffers()
        want, got = [], []
        for _ in range(3):
            frame = rng.standard_normal((1, 3, target_size, target_size)).astype("float32")
            with paddle.no_grad():
                out = step(paddle.to_tensor(frame), list(bufs_d))
            want.append(out[0].numpy())
            bufs_d = out[1:]
            logits, bufs_e = engine(frame, bufs_e)
            got.append(logits)
        diff, scale = check_same_logits(np.concatenate(got), np.concatenate(want),
                                        f"the exported online step {model_file}")
        info["export_check"] = {"max_abs_diff": diff, "logit_scale": scale, "frames": 3}
    write_infer_config(prefix + INFER_SUFFIX, info)
    return {"model_file": model_file, "params_file": params_file,
            "infer_config": prefix + INFER_SUFFIX}


class OnlineStepEngine:
    """The exported per-frame step under Paddle Inference: `(logits, buffers) = engine(frame,
    buffers)` with numpy arrays; `init_buffers()` gives the zero buffers of a new stream."""

    def __init__(self, model_dir=None, model_file=None, params_file=None, save_name=None,
                 precision=None, cpu_threads=None, buffer_shapes=None):
        self.model_file, self.params_file, self.info = resolve_model(
            model_dir, model_file, params_file, save_name)
        if self.info is not None and self.info.get("kind") != "online_step":
            raise DeployError(f"{self.model_file} is a clip model; export the online step with "
                              f"tools/export_model.py --online (needs a unidirectional model).")
        shapes = (self.info or {}).get("buffers") or buffer_shapes
        if shapes is None:
            raise DeployError(f"{self.model_file}: buffer shapes unknown (no NAME.infer.yaml).")
        self.buffer_shapes = [list(s) for s in shapes]
        self.precision = precision or default_cpu_precision()
        if self.precision not in ("fp32", "bf16"):
            raise DeployError(f"the online step runs in fp32 or bf16, not {self.precision}.")
        self.predictor = paddle_predictor(self.model_file, self.params_file, "cpu",
                                          self.precision, cpu_threads)
        names = self.predictor.get_input_names()
        if len(names) != 1 + len(self.buffer_shapes):
            raise DeployError(f"{self.model_file} has {len(names)} inputs; an online step with "
                              f"{len(self.buffer_shapes)} buffers has {1 + len(self.buffer_shapes)}.")
        by_name = {n: self.predictor.get_input_handle(n) for n in names}
        order = ["frame"] + [f"buffer_{i}" for i in range(len(self.buffer_shapes))]
        self.inputs = [by_name[n] if n in by_name else self.predictor.get_input_handle(names[i])
                       for i, n in enumerate(order)]
        self.outputs = [self.predictor.get_output_handle(n)
                        for n in self.predictor.get_output_names()]

    def init_buffers(self, batch=1):
        return [np.zeros([batch] + s[1:], np.float32) for s in self.buffer_shapes]

    def __call__(self, frame, buffers):
        frame = np.ascontiguousarray(frame, dtype=np.float32)
        if frame.ndim == 3:
            frame = frame[None]
        for handle, array in zip(self.inputs, [frame] + list(buffers)):
            handle.reshape(list(array.shape))
            handle.copy_from_cpu(np.ascontiguousarray(array))
        try:
            with quiet.native_stdout_off():     # oneDNN's kernel choice writes to stdout
                self.predictor.run()
        except Exception as e:
            raise DeployError(f"online step failed on frame {list(frame.shape)}: "
                              f"{first_line(e)}") from None
        outs = [h.copy_to_cpu() for h in self.outputs]
        return outs[0], outs[1:]


class _DygraphStep:
    """OnlineTSM in dygraph behind the engine's numpy interface."""

    def __init__(self, model, target_size):
        self.step = OnlineTSM(model)
        self.step.eval()
        self.target_size = target_size

    def init_buffers(self, batch=1):
        return self.step.init_buffers(self.target_size, batch)

    def __call__(self, frame, buffers):
        frame = paddle.to_tensor(np.ascontiguousarray(frame, dtype=np.float32).reshape(
            [-1, 3, self.target_size, self.target_size]))
        with paddle.no_grad():
            out = self.step(frame, list(buffers))
        return out[0].numpy(), out[1:]


def frame_preprocessor(pipeline):
    """RGB uint8 frame [H, W, 3] -> float32 [3, S, S] by the test pipeline's transform ops (the
    same ops, so online frames look like the offline model's)."""
    from ..loader import Compose
    transform = (pipeline or {}).get("transform")
    if not transform:
        raise DeployError("no PIPELINE.test transform to preprocess frames with.")
    compose = Compose(list(transform))

    def run(frame_rgb):
        results = compose({"imgs": np.ascontiguousarray(frame_rgb)[None], "clip_len": 1,
                           "rng": np.random.default_rng(0)})
        return np.asarray(results["imgs"], dtype=np.float32)[0]
    return run


def open_stream(source):
    """cv2.VideoCapture for a file path, a camera index ('0') or a stream URL; DeployError if it
    cannot be opened."""
    import cv2
    target = int(source) if isinstance(source, int) or str(source).isdigit() else str(source)
    if isinstance(target, str) and "://" not in target and not os.path.exists(target):
        raise DeployError(f"video not found: {target}")
    cap = cv2.VideoCapture(target)
    if not cap.isOpened():
        kind = "camera" if isinstance(target, int) else "video or stream"
        raise DeployError(f"cannot open {kind} '{source}' with OpenCV (is it connected / a valid "
                          f"URL / a readable video?).")
    return cap


class OnlineRecognizer:
    """Frames in, smoothed predictions out.

    step: an OnlineStepEngine, or a unidirectional recognizer (run in dygraph).
    preprocess: RGB frame -> [3, S, S] (see frame_preprocessor).
    window: frames averaged for the smoothed prediction (num_seg by default).
    """

    def __init__(self, step, preprocess, labels=None, window=8, target_size=224, rules=None):
        if isinstance(step, nn.Layer):
            step = _DygraphStep(step, target_size)
        self.step, self.preprocess = step, preprocess
        self.labels, self.window = labels, max(1, int(window))
        self.rules = rules            # an output_rules.OutputRules choosing the label, or None
        self.reset()

    def reset(self):
        """Start a new stream (or a scene cut): zero buffers, empty smoothing window."""
        self.buffers = self.step.init_buffers()
        self.recent = collections.deque(maxlen=self.window)
        if self.rules is not None:
            self.rules.reset()

    def __call__(self, frame_rgb):
        """One frame -> dict(logits, probs (smoothed), top1, label, score, latency_ms); the
        latency covers preprocessing and the network step."""
        start = time.perf_counter()
        x = self.preprocess(frame_rgb)
        logits, self.buffers = self.step(x[None], self.buffers)
        logits = np.asarray(logits)[0]
        self.recent.append(softmax(logits))
        probs = np.mean(self.recent, axis=0)
        check_labels(self.labels, probs.shape[-1], "the label list")
        top1 = int(probs.argmax()) if self.rules is None else self.rules(logits)
        label = self.labels[top1] if self.labels else f"class_{top1}"
        return {"logits": logits, "probs": probs, "top1": top1, "label": label,
                "score": float(probs[top1]), "latency_ms": 1000.0 * (time.perf_counter() - start)}

    def run(self, source, frame_step=1, max_frames=None, output=None, echo=print,
            display=False, annotated=None):
        """Read `source` with OpenCV and predict every `frame_step`-th frame; returns the
        per-frame records (index, label, score, latency_ms). display: show each frame with its
        label in a window (q or Esc stops); annotated: write the labelled video to this file."""
        import cv2
        cap = open_stream(source)
        records, index, handle, view, out = [], -1, None, None, None
        try:
            if output:
                os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
                handle = open(output, "w", encoding="utf-8")
            if display or annotated:
                view = LabelledVideo(annotated, cap.get(cv2.CAP_PROP_FPS), display)
            while max_frames is None or len(records) < max_frames:
                ok, frame = cap.read()
                if not ok:
                    break
                index += 1
                if index % frame_step:
                    if view is not None and out is not None and not view.add(frame, out["label"]):
                        break
                    continue
                out = self(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
                if view is not None and not view.add(frame, out["label"]):
                    break
                rec = {"frame": index, "label": out["label"], "index": out["top1"],
                       "score": round(out["score"], 5), "latency_ms": round(out["latency_ms"], 2)}
                records.append(rec)
                if handle:
                    handle.write(json.dumps(rec, ensure_ascii=False) + "\n")
                    handle.flush()
                if echo:
                    echo(f"frame {index:6d}: {rec['label']} {rec['score']:.4f}  "
                         f"({rec['latency_ms']:.1f} ms)")
        finally:
            cap.release()
            if handle:
                handle.close()
            if view is not None:
                view.close()
        if index < 0:
            raise DeployError(f"no frame could be read from '{source}' (corrupt or empty video?).")
        return records


def display_available():
    """Whether a window can be shown: a desktop session (Windows, macOS) or an X/Wayland
    display on Linux."""
    import sys
    if sys.platform in ("win32", "darwin"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


class LabelledVideo:
    """Frames with their label drawn in a white strip below (as the original demo shows them),
    to a window and/or a video file (.mp4: mp4v, else XVID)."""

    WINDOW = "online TSM"

    def __init__(self, path=None, fps=None, display=False):
        """display: False, True (a window, or an error) or 'auto' (a window if one can open)."""
        self.path, self.display, self.writer = path, display, None
        self.fps = fps if fps and 1 <= fps <= 240 else 30.0
        if path:
            folder = os.path.dirname(os.path.abspath(path))
            os.makedirs(folder, exist_ok=True)

    def add(self, frame_bgr, label):
        """Draw and emit one frame; False when the viewer asked to stop."""
        import cv2
        height, width = frame_bgr.shape[:2]
        strip = np.full((max(24, height // 10), width, 3), 255, np.uint8)
        cv2.putText(strip, str(label), (4, strip.shape[0] * 3 // 4), cv2.FONT_HERSHEY_SIMPLEX,
                    max(0.4, width / 900), (0, 0, 0), 1 + width // 640, cv2.LINE_AA)
        image = np.concatenate([frame_bgr, strip], axis=0)
        if self.path:
            if self.writer is None:
                codec = "mp4v" if self.path.lower().endswith(".mp4") else "XVID"
                self.writer = cv2.VideoWriter(self.path, cv2.VideoWriter_fourcc(*codec), self.fps,
                                              (image.shape[1], image.shape[0]))
                if not self.writer.isOpened():
                    raise DeployError(f"cannot write the annotated video {self.path} with OpenCV "
                                      f"(use a .mp4 or .avi name in a writable folder).")
            self.writer.write(image)
        if self.display:
            try:
                cv2.imshow(self.WINDOW, image)
                key = cv2.waitKey(1) & 0xFF
            except cv2.error as e:
                if self.display == "auto":             # no usable GUI: keep going without it
                    logger.warning("no window shown (%s); --display off hides this", first_line(e))
                    self.display = False
                    return True
                raise DeployError(f"cannot show a window: {first_line(e)} (an OpenCV without "
                                  f"GUI support, or no display); use --display off.") from None
            if key in (ord("q"), 27):
                return False
        return True

    def close(self):
        import cv2
        if self.writer is not None:
            self.writer.release()
        if self.display:
            try:
                cv2.destroyWindow(self.WINDOW)
            except cv2.error:
                pass                                     # the window never opened
