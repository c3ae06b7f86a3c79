"""Metrics: centre-crop and multi-view accuracy, mean class accuracy, confusion matrix."""
from .classification import CenterCropMetric, ClassificationMetric, MultiCropMetric
from .confusion import confusion_matrix, most_confused_classes, worst_pairs, write_confusion_png
from .registry import METRICS


def build_metric(cfg, num_classes, class_names=None):
    """METRIC section -> metric; `num_classes` comes from the model unless the config sets it."""
    extra = {"num_classes": num_classes, "class_names": class_names}
    extra = {k: v for k, v in extra.items() if k not in cfg}
    return METRICS.build(cfg, **extra)
