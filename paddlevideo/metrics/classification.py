"""Video classification metrics: top-1, top-5, mean class accuracy, confusion matrix.

A metric collects one probability vector per video, keyed by the video's index in the data set,
so a video seen twice (DistributedBatchSampler pads the last batch by repeating videos) counts
once, and results gathered from several ranks are merged without duplicates. Videos that failed
to decode are recorded separately: left out of the scores and listed.

`CenterCropMetric` and `MultiCropMetric` keep PaddleVideo's names. The views of a video (clips x
crops) arrive stacked in one sample and the model averages their softmax; `MultiCropMetric`
checks that the data really provides the `num_ensemble_views x num_spatial_crops` views the
config promises, so a changed clip count cannot silently give another protocol.
"""
import json

import numpy as np

from ..utils.config import ConfigError
from ..utils.typecheck import Classes, Segments
from .confusion import confusion_matrix
from .registry import METRICS

__all__ = ["ClassificationMetric", "CenterCropMetric", "MultiCropMetric"]


class ClassificationMetric:
    """Accumulates per-video class probabilities and reports the scores (see the module doc)."""

    clips, crops = 1, 1

    def __init__(self, num_classes, class_names=None):
        self.num_classes = int(num_classes)
        self.class_names = list(class_names) if class_names else None
        self.probs = {}        # dataset index -> np.ndarray [K]
        self.labels = {}       # dataset index -> int
        self.failed = set()    # dataset indices that could not be decoded

    def check_views(self, num_clips, num_crops):
        """Take the data's clips and crops per video; raise ConfigError if they break the protocol."""
        self.clips, self.crops = int(num_clips), int(num_crops)

    def protocol(self, num_seg, height, width):
        """'8 segments x 1 clip x 1 crop, 224x224 input' for the report."""
        clips, crops = self.clips, self.crops
        plural = lambda n, word: f"{n} {word}" + ("s" if n != 1 else "")
        return (f"{plural(num_seg, 'segment')} x {plural(clips, 'clip')} x {plural(crops, 'crop')}"
                f", {height}x{width} input")

    def update(self, ids, probs, labels):
        """Record a batch: ids [B] dataset indices, probs [B, K], labels [B]."""
        probs = np.asarray(probs, dtype=np.float32)
        for i, p, y in zip(np.asarray(ids).reshape(-1), probs, np.asarray(labels).reshape(-1)):
            self.probs[int(i)] = p
            self.labels[int(i)] = int(y)

    def add_failed(self, ids):
        self.failed.update(int(i) for i in np.asarray(ids).reshape(-1))

    def merge(self, others):
        """Fold in the states of other ranks (lists of (probs, labels, failed) dicts)."""
        for probs, labels, failed in others:
            self.probs.update(probs)
            self.labels.update(labels)
            self.failed.update(failed)

    def state(self):
        return self.probs, self.labels, self.failed

    def gather(self):
        """In a multi-process run, merge every rank's results (each video exactly once)."""
        import paddle.distributed as dist
        if dist.get_world_size() <= 1:
            return
        everything = []
        dist.all_gather_object(everything, self.state())
        self.merge(everything)

    @property
    def evaluated(self):
        return len(self.probs)

    def accumulate(self):
        """{'top1', 'top5', 'mean_class_acc', 'evaluated', 'failed', 'confusion'} over all videos.

        A video that failed in one batch but was scored elsewhere (a padding duplicate) counts
        as evaluated.
        """
        failed = sorted(self.failed - set(self.probs))
        if not self.probs:
            return {"top1": 0.0, "top5": 0.0, "mean_class_acc": 0.0, "evaluated": 0,
                    "failed": len(failed), "failed_ids": failed,
                    "confusion": np.zeros((self.num_classes,) * 2, dtype=np.int64)}
        ids = sorted(self.probs)
        probs = np.stack([self.probs[i] for i in ids])
        labels = np.array([self.labels[i] for i in ids], dtype=np.int64)
        if labels.max() >= self.num_classes or labels.min() < 0:
            raise ConfigError(f"a label ({labels.max()}) is outside the model's "
                              f"{self.num_classes} classes; check the list file and "
                              f"MODEL.head.num_classes.")
        k = min(5, self.num_classes)
        order = np.argsort(-probs, axis=1, kind="stable")
        top1 = float(np.mean(order[:, 0] == labels))
        top5 = float(np.mean(np.any(order[:, :k] == labels[:, None], axis=1)))
        matrix = confusion_matrix(labels, order[:, 0], self.num_classes)
        present = matrix.sum(axis=1) > 0
        per_class = np.diag(matrix)[present] / matrix.sum(axis=1)[present]
        return {"top1": top1, "top5": top5, "mean_class_acc": float(per_class.mean()),
                "evaluated": len(ids), "failed": len(failed), "failed_ids": failed,
                "confusion": matrix}

    def class_name(self, index):
        if self.class_names and 0 <= index < len(self.class_names):
            return self.class_names[index]
        return str(index)

    def write_predictions(self, path, paths=None):
        """One JSON line per video: id, path, label, pred, score, top5 (with names if known)."""
        with open(path, "w", encoding="utf-8") as f:
            for i in sorted(self.probs):
                p = self.probs[i]
                top = np.argsort(-p, kind="stable")[:min(5, self.num_classes)]
                row = {"id": i, "path": paths(i) if paths else None, "label": self.labels[i],
                       "pred": int(top[0]), "score": round(float(p[top[0]]), 6),
                       "top5": [int(t) for t in top],
                       "top5_scores": [round(float(p[t]), 6) for t in top]}
                if self.class_names:
                    row["label_name"] = self.class_name(self.labels[i])
                    row["pred_name"] = self.class_name(int(top[0]))
                f.write(json.dumps(row) + "\n")
            for i in sorted(self.failed - set(self.probs)):
                f.write(json.dumps({"id": i, "path": paths(i) if paths else None,
                                    "failed": True}) + "\n")


@METRICS.register()
class CenterCropMetric(ClassificationMetric):
    """One clip, one centre crop per video (PaddleVideo's TSM test protocol); more views, if the
    pipeline makes them, are averaged and reported as such."""

    def __init__(self, num_classes: Classes, class_names: list[str] | None = None):
        super().__init__(num_classes, class_names)


@METRICS.register()
class MultiCropMetric(ClassificationMetric):
    """`num_ensemble_views` clips x `num_spatial_crops` crops per video, softmax-averaged."""

    def __init__(self, num_classes: Classes, num_ensemble_views: Segments = 1,
                 num_spatial_crops: Segments = 1,
                 class_names: list[str] | None = None):
        super().__init__(num_classes, class_names)
        self.clips, self.crops = int(num_ensemble_views), int(num_spatial_crops)

    def check_views(self, num_clips, num_crops):
        if (num_clips, num_crops) != (self.clips, self.crops):
            raise ConfigError(
                f"METRIC MultiCropMetric promises {self.clips} clips x {self.crops} crops per "
                f"video, but the pipeline gives {num_clips} clips x {num_crops} crops. Make the "
                f"sampler's clip count and the crop op (ThreeCrop, TenCrop) agree with "
                f"num_ensemble_views and num_spatial_crops.")
