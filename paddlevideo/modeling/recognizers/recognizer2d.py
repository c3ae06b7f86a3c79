"""Recognizer2D: a 2D backbone over the frames of each clip, then a head that fuses them."""
import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from ...utils.config import ConfigError
from ..registry import RECOGNIZERS

__all__ = ["Recognizer2D"]


@RECOGNIZERS.register()
class Recognizer2D(nn.Layer):
    """Input `imgs` [N, V*T, 3, H, W]: N samples, each V views (clips x crops) of T = num_seg
    frames. Train and valid steps return {'loss', 'top1', 'top5'}; test and infer steps return
    class probabilities [N, K], the softmax averaged over the V views. `forward(imgs)` returns
    logits [N, K] (averaged over views); it is what export traces. A unidirectional model also
    runs one frame at a time (`forward_step`; `OnlineTSM` wraps it for export).

    Steps take a batch list `[imgs, labels, ...]` and never modify the caller's tensors.
    """

    def __init__(self, backbone: nn.Layer, head: nn.Layer):
        super().__init__()
        self.backbone, self.head = backbone, head
        self.num_seg = backbone.num_seg

    def _frames(self, imgs):
        """[N, V*T, 3, H, W] -> ([N*V*T, 3, H, W], V), refusing a frame count that would be
        reshaped into the wrong clips."""
        if imgs.ndim != 5:
            raise ValueError(f"expected imgs [N, V*T, 3, H, W], got shape {list(imgs.shape)}.")
        frames = imgs.shape[1]
        if frames % self.num_seg != 0:
            raise ValueError(f"each sample has {frames} frames, which is not a multiple of the "
                             f"model's num_seg={self.num_seg}; set the Sampler's num_seg to match.")
        return paddle.reshape(imgs, [-1] + list(imgs.shape[2:])), frames // self.num_seg

    def forward_views(self, imgs):
        """Logits per view, [N, V, K]."""
        x, views = self._frames(imgs)
        scores = self.head(self.backbone(x), self.num_seg)
        return paddle.reshape(scores, [-1, views, scores.shape[-1]])

    def frame_logits(self, imgs):
        """Logits of every frame, [N, V*T, K], for imgs [N, V*T, 3, H, W]: the head's fc on each
        frame's pooled features, before the average over segments (what online TSM outputs)."""
        x, _ = self._frames(imgs)
        logits = self.head.frame_logits(self.backbone(x))
        return paddle.reshape(logits, [-1, imgs.shape[1], logits.shape[-1]])

    # online TSM (unidirectional models): one frame of each stream at a time

    def check_online(self):
        """Refuse a model that cannot run frame by frame (ConfigError saying why)."""
        check = getattr(self.backbone, "check_online", None)
        if check is None:
            raise ConfigError(f"online TSM needs a ResNetTSM or MobileNetV2TSM backbone; this "
                              f"model has "
                              f"{type(self.backbone).__name__}.")
        check()

    def buffer_shapes(self, height, width=None):
        """Per-stream shapes of the shift buffers for frames of height x width (square by
        default), in the order forward_step takes and returns them."""
        self.check_online()
        return self.backbone.buffer_shapes(height, width)

    def forward_step(self, frame, buffers=None):
        """frame [B, 3, H, W] and the previous step's buffers (None: new streams, zero buffers)
        -> (logits [B, K] of this frame, new buffers). For T frames from a new stream the logits
        equal `frame_logits` of the offline model on those T frames."""
        self.check_online()
        features, new_buffers = self.backbone.forward_step(frame, buffers)
        return self.head.frame_logits(features), new_buffers

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
