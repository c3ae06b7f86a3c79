"""Classification heads of TSN and TSM: pool, dropout, average over segments, fc."""
import paddle
import paddle.nn as nn

from ...utils.typecheck import Channels, Classes, Fraction, PositiveFloat
from ..registry import HEADS, LOSSES

__all__ = ["TSNHead", "TSMHead"]


def topk_accuracy(scores, labels, k):
    """Share of rows whose label is among the k highest scores (k capped at the class count)."""
    k = min(k, scores.shape[-1])
    labels = paddle.reshape(labels, [-1, 1]).astype("int64")
    return paddle.metric.accuracy(scores, labels, k=k)


@HEADS.register()
class TSNHead(nn.Layer):
    """Global average pool -> dropout -> mean over the num_seg frames of a clip -> fc.

    Input: features [N*num_seg, C, h, w] (NCHW). Output: logits [N, num_classes]. The fc is
    linear, so averaging features before it equals PaddleVideo's averaging of logits after it,
    and equals the mean of the per-frame logits (`frame_logits`, what online TSM outputs).
    `fc.weight` is stored [in_channels, num_classes], initialised Normal(0, std), bias zero.
    """

    def __init__(self, num_classes: Classes, in_channels: Channels = 2048,
                 drop_ratio: Fraction = 0.4, std: PositiveFloat = 0.01, ls_eps: Fraction = 0.0,
                 loss_cfg: dict | None = None):
        super().__init__()
        self.num_classes, self.in_channels = num_classes, in_channels
        self.dropout = nn.Dropout(drop_ratio) if drop_ratio > 0 else None
        self.fc = nn.Linear(in_channels, num_classes,
                            weight_attr=nn.initializer.Normal(0.0, std),
                            bias_attr=nn.initializer.Constant(0.0))
        loss_cfg = dict(loss_cfg or {"name": "CrossEntropyLoss"})
        if ls_eps:
            loss_cfg["label_smoothing"] = ls_eps
        self.loss_func = LOSSES.build(loss_cfg)

    def pool(self, x):
        """Features [B, C, h, w] -> [B, C]: spatial average, then dropout."""
        if x.shape[1] != self.in_channels:
            raise ValueError(f"{type(self).__name__} expects {self.in_channels} input channels "
                             f"(in_channels), the backbone gives {x.shape[1]}.")
        x = paddle.mean(x, axis=[2, 3])
        return self.dropout(x) if self.dropout is not None else x

    def forward(self, x, num_seg):
        x = self.pool(x)                                          # [N*T, C]
        x = paddle.mean(paddle.reshape(x, [-1, num_seg, x.shape[-1]]), axis=1)
        return self.fc(x)

    def frame_logits(self, x):
        """Logits of each frame on its own, [B, K] for features [B, C, h, w]: the fc before the
        average over segments. In eval mode the mean of a clip's frame logits is its logits."""
        return self.fc(self.pool(x))

    def loss(self, scores, labels):
        """{'loss', 'top1', 'top5'} for logits [N, K] and labels [N]."""
        return {"loss": self.loss_func(scores, labels),
                "top1": topk_accuracy(scores, labels, 1),
                "top5": topk_accuracy(scores, labels, 5)}


@HEADS.register()
class TSMHead(TSNHead):
    """TSNHead with TSM's defaults: dropout 0.5, fc initialised Normal(0, 0.001)."""

    def __init__(self, num_classes: Classes, in_channels: Channels = 2048,
                 drop_ratio: Fraction = 0.5, std: PositiveFloat = 0.001, ls_eps: Fraction = 0.0,
                 loss_cfg: dict | None = None):
        super().__init__(num_classes, in_channels, drop_ratio, std, ls_eps, loss_cfg)
