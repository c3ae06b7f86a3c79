"""Predict class names for videos and frame folders with an exported model.

Preprocessing is the model's test pipeline (PIPELINE.test, saved in NAME.infer.yaml), run by the
loader's Compose after each input's own decoder, so predictions equal `main.py --test`'s for the
same videos. An input that fails (corrupt, unreadable, missing) is reported by name with the
reason; the others go on. An input with fewer frames than num_seg is predicted as --test does
(the sampler repeats frames), and its record says so.
"""
import logging
import os
import time

import numpy as np

from .errors import DeployError
from .inputs import ClipMaker, Input
from .labels import default_labels, load_label_list
from .runtime import InferenceEngine, check_labels, file_digest, softmax

__all__ = ["VideoPredictor", "topk", "format_result"]

logger = logging.getLogger("paddlevideo")


def topk(probs, k):
    """Indices of the k highest scores per row, best first."""
    k = min(k, probs.shape[-1])
    idx = np.argpartition(-probs, k - 1, axis=-1)[..., :k]
    order = np.take_along_axis(probs, idx, axis=-1).argsort(axis=-1)[..., ::-1]
    return np.take_along_axis(idx, order, axis=-1)


class VideoPredictor:
    """Inputs (Input or path) -> top-k class names and scores.

    Args:
        engine: an InferenceEngine (its inference config supplies pipeline, frame naming and
            labels), or the kwargs to build one.
        pipeline: PIPELINE.test dict overriding the engine's (PaddleVideo's `-c CONFIG` form).
        frames: {suffix, start_index} of frame folders, overriding the engine's.
        labels: a label list path or list of names overriding the engine's.
    """

    def __init__(self, engine, pipeline=None, frames=None, labels=None, top_k=5, batch_size=1):
        self.engine = engine if isinstance(engine, InferenceEngine) else InferenceEngine(**engine)
        info = self.engine.info or {}
        pipeline = pipeline or info.get("PIPELINE")
        if not pipeline:
            raise DeployError(f"no preprocessing known for {self.engine.model_file}: it has no "
                              f"NAME.infer.yaml beside it; pass the training config with -c.")
        self.pipeline = pipeline
        self.make_clip = ClipMaker(pipeline, frames or info.get("frames"))
        num_classes = info.get("num_classes")
        if isinstance(labels, str):
            labels = load_label_list(labels, num_classes)
        self.labels = labels or self.engine.labels
        self.top_k, self.batch_size = int(top_k), max(1, int(batch_size))
        self.num_seg = self.engine.num_seg
        self.model_id = (f"{file_digest(self.engine.params_file)[:12]}/{self.engine.backend}-"
                         f"{self.engine.precision}")
        self.times = {"preprocess": [], "inference": [], "postprocess": []}

    def preprocess(self, item):
        """(clip float32 [T, 3, S, S], note or None) for an Input, or DeployError naming it."""
        start = time.perf_counter()
        imgs, frames = self.make_clip(item)
        note = None
        if self.num_seg and frames and frames < self.num_seg:
            note = (f"{frames} frames, fewer than num_seg={self.num_seg}: frames repeat, as in "
                    f"main.py --test")
        self.times["preprocess"].append(time.perf_counter() - start)
        return imgs, note

    def predict_batch(self, clips):
        """Logits -> (probabilities [N, K], top-k indices [N, k]) for a list of clips."""
        start = time.perf_counter()
        logits = self.engine(np.stack(clips))
        mid = time.perf_counter()
        probs = softmax(logits)
        best = topk(probs, self.top_k)
        self.times["inference"].append(mid - start)
        self.times["postprocess"].append(time.perf_counter() - mid)
        return probs, best

    def _record(self, item, probs, best, note):
        labels = self.labels or default_labels(probs.shape[-1])
        top = [{"index": int(i), "label": labels[int(i)], "score": float(probs[int(i)])}
               for i in best]
        record = {"file": item.path, "kind": item.kind, "top1": top[0]["label"],
                  "top1_index": top[0]["index"], "top1_score": top[0]["score"], "topk": top,
                  "model": self.model_id}
        if note:
            record["note"] = note
        return record

    def __call__(self, items):
        """Yield one dict per input, in order: {'file', 'kind', 'top1', 'top1_index',
        'top1_score', 'topk', 'model'[, 'note']} or {'file', 'kind', 'error', 'model'}. Inputs go
        through the model `batch_size` at a time."""
        items = [i if isinstance(i, Input) else Input(i, "frames" if os.path.isdir(i) else "video")
                 for i in items]
        for first in range(0, len(items), self.batch_size):
            chunk = items[first:first + self.batch_size]
            out, clips, where, notes = [None] * len(chunk), [], [], []
            for i, item in enumerate(chunk):
                try:
                    clip, note = self.preprocess(item)
                    clips.append(clip)
                    notes.append(note)
                    where.append(i)
                except DeployError as e:
                    out[i] = {"file": item.path, "kind": item.kind, "error": str(e),
                              "model": self.model_id}
            if clips:
                try:
                    probs, best = self.predict_batch(clips)
                except DeployError as e:
                    probs = None
                    for i in where:
                        out[i] = {"file": chunk[i].path, "kind": chunk[i].kind, "error": str(e),
                                  "model": self.model_id}
                if probs is not None:
                    # a wrong label list is the whole run's error, not one input's
                    check_labels(self.labels, probs.shape[-1], "the label list")
                    for j, i in enumerate(where):
                        out[i] = self._record(chunk[i], probs[j], best[j], notes[j])
            yield from out

    def timing_summary(self):
        """Median ms per input for preprocess, per batch for inference and postprocess."""
        return {k: (1000.0 * float(np.median(v)) if v else None) for k, v in self.times.items()}


def format_result(result):
    """One human line per input."""
    if "error" in result:
        return f"{result['file']}: FAILED: {result['error']}"
    tops = ", ".join(f"{t['label']} ({t['index']}) {t['score']:.4f}" for t in result["topk"])
    note = f" [{result['note']}]" if result.get("note") else ""
    return f"{result['file']}: top-1 {result['top1']} {result['top1_score']:.4f} | top-k: {tops}{note}"
