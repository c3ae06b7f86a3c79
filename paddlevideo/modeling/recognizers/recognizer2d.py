"""Recognizer2D: a 2D backbone over the frames of each clip, then a head that fuses them."""
import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from ..registry import RECOGNIZERS

__all__ = ["Recognizer2D"]


@RECOGNIZERS.register()
class Recognizer2D(nn.Layer):
    """Input `imgs` [N, V*T, 3, H, W]: N samples, each V views (clips x crops) of T = num_seg
    frames. Train and valid steps return {'loss', 'top1', 'top5'}; test and infer steps return
    class probabilities [N, K], the softmax averaged over the V views. `forward(imgs)` returns
    logits [N, K] (averaged over views); it is what export traces.

    Steps take a batch list `[imgs, labels, ...]` and never modify the caller's tensors.
    """

    def __init__(self, backbone: nn.Layer, head: nn.Layer):
        super().__init__()
        self.backbone, self.head = backbone, head
        self.num_seg = backbone.num_seg

    def forward_views(self, imgs):
        """Logits per view, [N, V, K]."""
        if imgs.ndim != 5:
            raise ValueError(f"expected imgs [N, V*T, 3, H, W], got shape {list(imgs.shape)}.")
        frames = imgs.shape[1]
        if frames % self.num_seg != 0:
            raise ValueError(f"each sample has {frames} frames, which is not a multiple of the "
                             f"model's num_seg={self.num_seg}; set the Sampler's num_seg to match.")
        views = frames // self.num_seg
        x = paddle.reshape(imgs, [-1] + list(imgs.shape[2:]))
        scores = self.head(self.backbone(x), self.num_seg)
        return paddle.reshape(scores, [-1, views, scores.shape[-1]])

    def forward(self, imgs):
        return paddle.mean(self.forward_views(imgs), axis=1)

    def train_step(self, batch):
        return self.head.loss(self(batch[0]), batch[1])

    def val_step(self, batch):
        return self.head.loss(self(batch[0]), batch[1])

    def test_step(self, batch):
        return paddle.mean(F.softmax(self.forward_views(batch[0]), axis=-1), axis=1)

    def infer_step(self, batch):
        return self.test_step(batch)
