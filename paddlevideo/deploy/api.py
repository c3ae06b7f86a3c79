"""`paddlevideo.Predictor`: the one way to run an inference model.

    from paddlevideo import Predictor
    top5 = Predictor(weights="TSM_k400").predict("video.mp4")[0]["topk"]

It opens an exported folder (`model_dir`), or a config plus weights (a file, a URL or a registered
name; a registered name knows its config and label list). Config plus weights are exported once
into `$PADDLEVIDEO_HOME/exports/<digest>/` (default `~/.cache/paddlevideo/exports/`): the digest
covers the resolved config, the weights file's sha256 and the class names, so other weights or
another config never reuse a stale export. The export is the checked one of export_model.py
(Paddle program vs dygraph, ONNX vs Paddle), written in a temporary folder and renamed into
place, so a killed export leaves nothing that a later run would take for complete.

`predict(inputs)` takes paths (videos, frame folders) or decoded clips (uint8 [T, H, W, 3] RGB
arrays) and returns predict.py --output's records. The server splits the same work in two:
`prepare` (decode + preprocess, in a pool) and `run` (one batched inference).
"""
import hashlib
import json
import logging
import os
import shutil
import tempfile

import numpy as np

from ..utils.download import cache_dir, file_sha256
from .errors import DeployError
from .inputs import Input

__all__ = ["Predictor", "export_cache_dir", "cached_export", "zoo_config"]

logger = logging.getLogger("paddlevideo")

CHECKOUT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def export_cache_dir():
    """Where exports of config + weights are kept: $PADDLEVIDEO_HOME/exports."""
    return cache_dir("exports")


def zoo_config(name):
    """(config path, label list) a registered weights name runs with, or DeployError."""
    from ..modeling.zoo import PRETRAINED
    spec = PRETRAINED.get(str(name))
    if spec is None:
        raise DeployError(f"-w {name} without -c: only a registered name knows its config; give "
                          f"the training config with -c (registered names: python tools/main.py "
                          f"--list_weights).")
    if not spec.config:
        with_cfg = ", ".join(n for n, s in PRETRAINED.items() if s.config)
        raise DeployError(f"the registered weights {name} have no known config (their network "
                          f"or preprocessing differs from the shipped configs); give one with -c. "
                          f"Names that run without -c: {with_cfg}.")
    path = os.path.join(CHECKOUT, spec.config)
    if not os.path.isfile(path):
        raise DeployError(f"{name} runs with {spec.config}, which is in the project's checkout, "
                          f"not in the installed package; run from a checkout or give -c CONFIG.")
    return path, spec.labels


def _digest(cfg, weights_file, labels):
    """sha256 over the resolved config, the weights file's content and the class names."""
    from ..utils.config import to_plain
    h = hashlib.sha256()
    h.update(json.dumps(to_plain(cfg), sort_keys=True, default=str).encode())
    h.update(file_sha256(weights_file).encode())
    h.update(json.dumps(labels).encode())
    return h.hexdigest()


def _export_into(cfg, weights_file, label_list, outdir):
    """export_model.py's checked export (Paddle program, then ONNX when available) into outdir."""
    from .export import export_from_config, record_check
    from .onnx_export import export_onnx, onnx_available
    from .runtime import read_infer_config
    result = export_from_config(cfg, weights_file, outdir, label_list=label_list)
    if not onnx_available():
        info = read_infer_config(result.infer_config)
        check = export_onnx(result.model_file, result.params_file, info["input"]["shape"])
        record_check(result.infer_config, "onnx_check", check)
    return result


def cached_export(cfg, weights, label_list=None, log=None):
    """The export folder of config `cfg` (get_config's result) with `weights`: reused when this
    digest was exported before, else exported (checked) and renamed into place atomically."""
    from ..modeling.weights import resolve_weights
    from .labels import load_label_list
    log = log or logger.info
    depth = ((cfg.get("MODEL") or {}).get("backbone") or {}).get("depth")
    weights_file = resolve_weights(str(weights), depth)
    num_classes = ((cfg.get("MODEL") or {}).get("head") or {}).get("num_classes")
    labels = load_label_list(label_list, num_classes) if label_list else None
    root = export_cache_dir()
    final = os.path.join(root, _digest(cfg, weights_file, labels)[:24])
    if os.path.isdir(final):
        log(f"reusing the export of {weights} in {final}")
        return final
    os.makedirs(root, exist_ok=True)
    log(f"exporting {weights} (first run with these weights and config) to {final}")
    tmp = tempfile.mkdtemp(prefix=".partial-", dir=root)
    try:
        _export_into(cfg, weights_file, label_list, tmp)
        try:
            os.rename(tmp, final)
        except OSError:
            if not os.path.isdir(final):        # not a concurrent run finishing first
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


class Predictor:
    """Videos, frame folders or decoded clips -> predict.py's records.

    Args:
        model_dir: an exported folder (export_model.py's -o), or None with `weights`.
        config: a training config (path) whose PIPELINE.test and label list replace the
            exported ones, or, with `weights`, the config to export.
        weights: a checkpoint, URL or registered name; without `config` a registered name's own.
        overrides: KEY=VALUE config overrides.
        label_list: class names replacing the model's.
        model_file, params_file, save_name: PaddleVideo's ways of naming the program.
        device, precision, backend, cpu_threads, use_tensorrt: the InferenceEngine's.
        log: where the export messages go (default: the 'paddlevideo' logger).
    """

    def __init__(self, model_dir=None, config=None, weights=None, overrides=None,
                 label_list=None, model_file=None, params_file=None, save_name=None,
                 device="cpu", precision="auto", backend="auto", cpu_threads=None,
                 use_tensorrt=False, top_k=5, batch_size=1, log=None):
        from .export import frame_naming
        from .labels import config_label_list
        from .predictor import VideoPredictor
        from .runtime import InferenceEngine
        if weights and (model_dir or model_file):
            raise DeployError("give an exported model (--model_dir) or weights (-w), not both.")
        if overrides and not config and not weights:
            raise DeployError("-o/--override changes the config given with -c; there is none.")
        pipeline = frames = labels = None
        self.model_dir = model_dir
        if weights:
            zoo_labels = None
            if not config:
                config, zoo_labels = zoo_config(weights)
            cfg = _load_config(config, overrides)
            self.model_dir = cached_export(cfg, weights, label_list or zoo_labels
                                           or config_label_list(cfg), log)
        elif config:
            if not (model_dir or model_file):
                raise DeployError("-c CONFIG needs -w WEIGHTS (a checkpoint or a registered "
                                  "name) to export, or --model_dir of an exported model whose "
                                  "preprocessing the config replaces.")
            from ..utils.config import to_plain
            cfg = _load_config(config, overrides)
            pipeline = to_plain((cfg.get("PIPELINE") or {}).get("test") or {}) or None
            frames = frame_naming(cfg)
            labels = config_label_list(cfg)
        elif not (model_dir or model_file):
            raise DeployError("no model: give an exported folder (--model_dir), or weights (-w: "
                              "a registered name, or a checkpoint with -c CONFIG).")
        self.engine = InferenceEngine(self.model_dir, model_file, params_file, save_name,
                                      device=device, precision=precision, cpu_threads=cpu_threads,
                                      use_tensorrt=use_tensorrt, backend=backend,
                                      max_batch_size=max(int(batch_size), 1))
        if label_list and not weights:
            labels = label_list
        elif self.engine.labels:
            labels = self.engine.labels
        self._predictor = VideoPredictor(self.engine, pipeline=pipeline, frames=frames,
                                         labels=labels, top_k=top_k, batch_size=batch_size)
        self.model_id = self._predictor.model_id
        self.labels = self._predictor.labels
        self.pipeline = self._predictor.pipeline      # PIPELINE.test: the timeline samples by it
        self.frames = self._predictor.make_clip.frames

    # ---- the two halves the server runs apart -------------------------------------------------
    def prepare(self, item, name=None):
        """(clip float32 [T, 3, S, S], note) for a path, an Input or a decoded uint8 clip;
        DeployError naming it when it cannot be read. Keeps no per-call state (a server calls
        it forever)."""
        make_clip = self._predictor.make_clip
        if isinstance(item, np.ndarray):
            clip, count = make_clip.from_array(item, name or "<array>")
        else:
            clip, count = make_clip(_as_input(item))
        num_seg = self._predictor.num_seg
        note = None
        if num_seg and count and count < num_seg:
            note = (f"{count} frames, fewer than num_seg={num_seg}: frames repeat, as in "
                    f"main.py --test")
        return clip, note

    def run(self, clips):
        """(probabilities [N, K], top-k indices [N, k]) of one batched inference."""
        from .predictor import topk
        from .runtime import softmax
        probs = softmax(self.engine(np.stack(list(clips))))
        return probs, topk(probs, self._predictor.top_k)

    def record(self, name, kind, probs, best, note=None):
        """predict.py's record for one input from `run`'s row."""
        return self._predictor._record(Input(name, kind), probs, best, note)  # noqa: SLF001

    # ---- the one-call form ----------------------------------------------------------------------
    def predict(self, inputs):
        """Records (one dict per input, in order) for a path, a decoded clip or a list of them:
        {'file', 'kind', 'top1', 'top1_index', 'top1_score', 'topk', 'model'[, 'note']}, or
        {'file', 'kind', 'error', 'model'} for an input that could not be read."""
        if isinstance(inputs, (str, os.PathLike, np.ndarray, Input)):
            inputs = [inputs]
        if not any(isinstance(i, np.ndarray) for i in inputs):
            return list(self._predictor([_as_input(i) for i in inputs]))
        out = []
        for first in range(0, len(inputs), self._predictor.batch_size):
            chunk = inputs[first:first + self._predictor.batch_size]
            out.extend(self._predict_chunk(chunk, first))
        return out

    def _predict_chunk(self, chunk, offset):
        out, clips, where, notes, names = [None] * len(chunk), [], [], [], []
        for i, item in enumerate(chunk):
            is_array = isinstance(item, np.ndarray)
            name = f"<array {offset + i}>" if is_array else str(_as_input(item).path)
            kind = "clip" if is_array else _as_input(item).kind
            names.append((name, kind))
            try:
                clip, note = self.prepare(item, name)
            except DeployError as e:
                out[i] = {"file": name, "kind": kind, "error": str(e), "model": self.model_id}
                continue
            clips.append(clip)
            notes.append(note)
            where.append(i)
        if clips:
            probs, best = self.run(clips)
            for j, i in enumerate(where):
                out[i] = self.record(*names[i], probs[j], best[j], notes[j])
        return out

    def __call__(self, items):
        """Records one by one for Inputs (predict.py's loop, batch_size at a time)."""
        return self._predictor(items)

    def describe(self):
        return self.engine.describe()

    def timing_summary(self):
        return self._predictor.timing_summary()

    def close(self):
        self.engine.close()


def _as_input(item):
    if isinstance(item, Input):
        return item
    path = os.fspath(item)
    return Input(path, "frames" if os.path.isdir(path) else "video")


def _load_config(path, overrides):
    from ..config_check import load_and_check_config
    return load_and_check_config(path, list(overrides or []))
