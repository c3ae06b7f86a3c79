"""Classification losses."""
import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from ..utils.typecheck import Fraction
from .registry import LOSSES

__all__ = ["CrossEntropyLoss"]


@LOSSES.register()
class CrossEntropyLoss(nn.Layer):
    """Softmax cross-entropy on logits [N, K] and int labels [N] (or [N, 1]).

    `label_smoothing` (PaddleVideo's `ls_eps`) spreads that share of the target uniformly over
    the K classes.
    """

    def __init__(self, label_smoothing: Fraction = 0.0):
        super().__init__()
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}.")
        self.label_smoothing = label_smoothing

    def forward(self, logits, labels):
        labels = paddle.reshape(labels, [-1]).astype("int64")
        if self.label_smoothing == 0.0:
            return F.cross_entropy(logits, labels)
        num_classes = logits.shape[-1]
        target = F.one_hot(labels, num_classes)
        target = target * (1.0 - self.label_smoothing) + self.label_smoothing / num_classes
        return F.cross_entropy(logits, target, soft_label=True)
