"""Online TSM: a unidirectional TSM run one frame at a time on a stream.

A unidirectional model shifts channels [0, c) of each shifting block's input from frame t-1 (zeros
at t = 0) and nothing from the future. So a stream can be processed frame by frame: per frame the
2D network runs once, and each shifting block keeps one buffer, the first c channels of its input
at the previous frame, which the next frame takes in place of its own.

Per-frame output, precisely: the logits of frame t are `head.fc(mean_HW(backbone features of frame
t))`, the backbone+fc before the head's averaging over segments. For a clip of T frames starting
from zero buffers they equal the offline unidirectional model's per-frame logits on the same T
frames (`offline_frame_logits`), and their mean equals the offline model's clip logits (the fc is
linear). The runner's smoothed prediction is the mean of the per-frame probabilities over the last
`window` frames (num_seg by default).

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

from .errors import DeployError, first_line
from .runtime import (INFER_SUFFIX, check_same_logits, default_cpu_precision, paddle_predictor,
                      resolve_model, save_program, softmax, write_infer_config)

__all__ = ["OnlineTSM", "offline_frame_logits", "export_online", "OnlineStepEngine",
           "OnlineRecognizer", "open_stream", "frame_preprocessor"]

logger = logging.getLogger("paddlevideo")


class OnlineTSM(nn.Layer):
    """The per-frame step of a unidirectional TSM recognizer (shares its weights).

    forward(frame [B, 3, S, S], buffers list) -> [logits [B, K], *new_buffers]
    """

    def __init__(self, model):
        super().__init__()
        backbone, head = getattr(model, "backbone", None), getattr(model, "head", None)
        if backbone is None or head is None or not hasattr(head, "fc"):
            raise DeployError("online TSM needs a Recognizer2D with a ResNetTSM backbone and a "
                              "TSM/TSN head.")
        mode = getattr(backbone, "shift_mode", None)
        if mode != "unidirectional":
            raise DeployError(f"online TSM needs a unidirectional model (MODEL.backbone.shift_mode: "
                              f"unidirectional); this one is '{mode}', whose shift reads the next "
                              f"frame, which a stream does not have yet.")
        self.backbone, self.fc = backbone, head.fc
        self.channel_axis = 3 if backbone.data_format == "NHWC" else 1
        self.shifting = [b for b in backbone.blocks if b.shift is not None]

    def buffer_shapes(self, target_size):
        """[C_fold, h, w] (or [h, w, C_fold] in NHWC) of each buffer, found by one dry frame."""
        shapes = []
        hooks = [b.register_forward_pre_hook(
            lambda layer, inputs: shapes.append(self._buffer_shape(layer, inputs[0])))
            for b in self.shifting]
        try:
            with paddle.no_grad():
                self.backbone(paddle.zeros([self.backbone.num_seg, 3, target_size, target_size]))
        finally:
            for h in hooks:
                h.remove()
        return shapes

    def _buffer_shape(self, block, x):
        shape = list(x.shape[1:])
        axis = self.channel_axis - 1
        shape[axis] = int(shape[axis] * block.shift.shift_ratio)
        return shape

    def init_buffers(self, target_size, batch=1):
        return [paddle.zeros([batch] + s) for s in self.buffer_shapes(target_size)]

    def forward(self, frame, buffers):
        bb = self.backbone
        axis = self.channel_axis
        x = frame
        if bb.data_format == "NHWC":
            x = paddle.transpose(x, [0, 2, 3, 1])
        x = bb.pool(bb.conv(x))
        new_buffers = []
        k = 0
        for block in bb.blocks:
            if block.shift is None:
                x = block(x)
                continue
            buf = buffers[k]
            k += 1
            fold = buf.shape[axis]
            past, keep = paddle.split(x, [fold, x.shape[axis] - fold], axis=axis)
            new_buffers.append(past)
            shifted = paddle.concat([buf, keep], axis=axis)
            if block.shift_place == "inplace":
                x = shifted
                branch = x
            else:
                branch = shifted
            for unit in block.branch_units():
                branch = unit(branch)
            identity = block.short(x) if block.short is not None else x
            x = block.relu(branch + identity)
        if bb.data_format == "NHWC":
            x = paddle.transpose(x, [0, 3, 1, 2])
        logits = self.fc(paddle.mean(x, axis=[2, 3]))
        return [logits] + new_buffers


def offline_frame_logits(model, clips):
    """Per-frame logits [N, T, K] of the offline model on clips [N, T, 3, S, S]: the head's fc on
    each frame's pooled features, before averaging over segments."""
    model.eval()
    x = paddle.to_tensor(np.asarray(clips, dtype=np.float32))
    n, t = x.shape[0], x.shape[1]
    with paddle.no_grad():
        feats = model.backbone(paddle.reshape(x, [-1] + list(x.shape[2:])))
        logits = model.head.fc(paddle.mean(feats, axis=[2, 3]))
    return paddle.reshape(logits, [n, t, -1]).numpy()


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

    def __init__(self, step, preprocess, labels=None, window=8, target_size=224):
        if isinstance(step, nn.Layer):
            step = _DygraphStep(step, target_size)
        self.step, self.preprocess = step, preprocess
        self.labels, self.window = labels, max(1, int(window))
        self.reset()

    def reset(self):
        """Start a new stream: zero buffers, empty smoothing window."""
        self.buffers = self.step.init_buffers()
        self.recent = collections.deque(maxlen=self.window)

    def __call__(self, frame_rgb):
        """One frame -> dict(logits, probs (smoothed), top1, label, score, latency_ms); the
        latency covers preprocessing and the network step."""
        start = time.perf_counter()
        x = self.preprocess(frame_rgb)
        logits, self.buffers = self.step(x[None], self.buffers)
        logits = np.asarray(logits)[0]
        self.recent.append(softmax(logits))
        probs = np.mean(self.recent, axis=0)
        top1 = int(probs.argmax())
        label = self.labels[top1] if self.labels else f"class_{top1}"
        return {"logits": logits, "probs": probs, "top1": top1, "label": label,
                "score": float(probs[top1]), "latency_ms": 1000.0 * (time.perf_counter() - start)}

    def run(self, source, frame_step=1, max_frames=None, output=None, echo=print):
        """Read `source` with OpenCV and predict every `frame_step`-th frame; returns the
        per-frame records (index, label, score, latency_ms)."""
        import cv2
        cap = open_stream(source)
        records, index, handle = [], -1, None
        try:
            if output:
                os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
                handle = open(output, "w", encoding="utf-8")
            while max_frames is None or len(records) < max_frames:
                ok, frame = cap.read()
                if not ok:
                    break
                index += 1
                if index % frame_step:
                    continue
                out = self(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
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
        if index < 0:
            raise DeployError(f"no frame could be read from '{source}' (corrupt or empty video?).")
        return records
