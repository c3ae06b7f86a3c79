"""Predict class names for videos with an exported model.

Preprocessing is the model's test pipeline (PIPELINE.test, saved in NAME.infer.yaml), run by the
loader's Compose, so predictions equal `main.py --test`'s for the same videos. A video that fails
(corrupt, too short, unreadable) is reported by name with the reason; the others go on.
"""
import json
import logging
import os
import time

import numpy as np

from .engine import InferenceEngine
from .errors import DeployError
from .labels import default_labels, load_label_list

__all__ = ["VIDEO_EXTENSIONS", "collect_inputs", "VideoPredictor", "softmax", "topk"]

logger = logging.getLogger("paddlevideo")

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".flv", ".m4v", ".mpg", ".mpeg",
                    ".wmv", ".3gp")


def collect_inputs(source):
    """Videos named by `source`: a video file, a folder (its videos, sorted), or a list file
    (.txt/.list/.csv: one path per line, optionally followed by a label as in PaddleVideo lists;
    relative paths are taken from the list's folder when not found as given)."""
    if os.path.isdir(source):
        files = sorted(os.path.join(source, f) for f in os.listdir(source)
                       if f.lower().endswith(VIDEO_EXTENSIONS))
        if not files:
            raise DeployError(f"no videos ({', '.join(VIDEO_EXTENSIONS)}) in folder {source}")
        return files
    if source.lower().endswith((".txt", ".list", ".csv")):
        if not os.path.isfile(source):
            raise DeployError(f"list file not found: {source}")
        base = os.path.dirname(os.path.abspath(source))
        files = []
        with open(source, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                path = line.split(",")[0].split()[0] if "," in line else line.split()[0]
                if not os.path.exists(path) and os.path.exists(os.path.join(base, path)):
                    path = os.path.join(base, path)
                files.append(path)
        if not files:
            raise DeployError(f"list file {source} names no videos")
        return files
    return [source]          # a single video; a missing one is reported as a failed input


def softmax(logits):
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def topk(probs, k):
    """Indices of the k highest scores per row, best first."""
    k = min(k, probs.shape[-1])
    idx = np.argpartition(-probs, k - 1, axis=-1)[..., :k]
    order = np.take_along_axis(probs, idx, axis=-1).argsort(axis=-1)[..., ::-1]
    return np.take_along_axis(idx, order, axis=-1)


class VideoPredictor:
    """Video files -> top-k class names and scores.

    Args:
        engine: an InferenceEngine (its inference config supplies pipeline and labels), or the
            kwargs to build one.
        pipeline: PIPELINE.test dict overriding the engine's (PaddleVideo's `-c CONFIG` form).
        labels: a label list path or list of names overriding the engine's.
        allow_short: predict videos shorter than num_seg (frames repeat) instead of failing them.
    """

    def __init__(self, engine, pipeline=None, labels=None, top_k=5, batch_size=1,
                 allow_short=False):
        from ..loader import Compose
        self.engine = engine if isinstance(engine, InferenceEngine) else InferenceEngine(**engine)
        info = self.engine.info or {}
        pipeline = pipeline or info.get("PIPELINE")
        if not pipeline:
            raise DeployError(f"no preprocessing known for {self.engine.model_file}: it has no "
                              f"NAME.infer.yaml beside it; pass the training config with -c.")
        try:
            self.pipeline = Compose(pipeline)
        except Exception as e:
            raise DeployError(f"the test pipeline cannot be built: {e}") from None
        num_classes = info.get("num_classes")
        if isinstance(labels, str):
            labels = load_label_list(labels, num_classes)
        self.labels = labels or self.engine.labels
        self.top_k, self.batch_size = int(top_k), max(1, int(batch_size))
        self.allow_short = allow_short
        self.num_seg = self.engine.num_seg
        self.times = {"preprocess": [], "inference": [], "postprocess": []}

    def preprocess(self, path):
        """One clip float32 [T, 3, S, S] for `path`, or DeployError naming the file and why."""
        if not os.path.isfile(path):
            raise DeployError(f"{path}: file not found")
        start = time.perf_counter()
        try:
            results = self.pipeline({"filename": path, "rng": np.random.default_rng(0)})
        except DeployError:
            raise
        except Exception as e:             # DecodeError and friends carry a readable message
            msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            if path not in msg:
                msg = f"{path}: {msg}"
            raise DeployError(f"cannot read video: {msg}") from None
        frames = results.get("frames_len")
        if (self.num_seg and frames is not None and frames < self.num_seg
                and not self.allow_short):
            raise DeployError(f"{path}: the video has {frames} frames, fewer than the model's "
                              f"num_seg={self.num_seg}; its frames would repeat (pass "
                              f"--allow_short to predict it anyway).")
        imgs = np.asarray(results["imgs"], dtype=np.float32)
        self.times["preprocess"].append(time.perf_counter() - start)
        return imgs

    def predict_batch(self, clips):
        """Logits -> (probabilities [N, K], top-k indices [N, k]) for a list of clips."""
        start = time.perf_counter()
        logits = self.engine(np.stack(clips))
        mid = time.perf_counter()
        probs = softmax(logits.astype(np.float64))
        best = topk(probs, self.top_k)
        self.times["inference"].append(mid - start)
        self.times["postprocess"].append(time.perf_counter() - mid)
        return probs, best

    def _record(self, path, probs, best):
        labels = self.labels or default_labels(probs.shape[-1])
        top = [{"index": int(i), "label": labels[int(i)], "score": float(probs[int(i)])}
               for i in best]
        return {"file": path, "top1": top[0]["label"], "top1_index": top[0]["index"],
                "top1_score": top[0]["score"], "topk": top}

    def __call__(self, paths):
        """Yield one dict per video, in input order: {'file', 'top1', 'top1_index', 'top1_score',
        'topk'} or {'file', 'error'}. Videos go through the model `batch_size` at a time."""
        paths = list(paths)
        for first in range(0, len(paths), self.batch_size):
            chunk = paths[first:first + self.batch_size]
            out, clips, where = [None] * len(chunk), [], []
            for i, path in enumerate(chunk):
                try:
                    clips.append(self.preprocess(path))
                    where.append(i)
                except DeployError as e:
                    out[i] = {"file": path, "error": str(e)}
            if clips:
                try:
                    probs, best = self.predict_batch(clips)
                    for j, i in enumerate(where):
                        out[i] = self._record(chunk[i], probs[j], best[j])
                except DeployError as e:
                    for i in where:
                        out[i] = {"file": chunk[i], "error": str(e)}
            yield from out

    def timing_summary(self):
        """Median ms per video for preprocess, per batch for inference and postprocess."""
        return {k: (1000.0 * float(np.median(v)) if v else None) for k, v in self.times.items()}


def format_result(result):
    """One human line per video."""
    if "error" in result:
        return f"{result['file']}: FAILED: {result['error']}"
    tops = ", ".join(f"{t['label']} ({t['index']}) {t['score']:.4f}" for t in result["topk"])
    return f"{result['file']}: top-1 {result['top1']} {result['top1_score']:.4f} | top-k: {tops}"


def write_jsonl(results, path):
    with open(path, "w", encoding="utf-8") as f:
        for r in results:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
