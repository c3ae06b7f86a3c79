"""The clip feature: what the head sees before its dropout and fc, as one vector per clip.

    net = ClipFeatures(model)                  # a layer: imgs [N, V*T, 3, H, W] -> [N, C]
    vectors = clip_features(model, imgs)       # numpy, dygraph

The feature is the backbone's last map averaged over positions (the head's pool), then over the
clip's frames (the head's consensus; with several views, over all of them, as the logits are).
Since the fc is linear, `fc(feature)` is the model's logits. A model whose weights came from a
PyTorch TSM checkpoint carries its residual stream with shift folds 0 and 1 swapped (see
torch_tsm.py; load_weights records it as `backbone.stream_fold_swap`): the swap is undone here,
so the vector is the original network's feature, channel for channel.
"""
import numpy as np
import paddle
import paddle.nn as nn

from .torch_tsm import fold_swap

__all__ = ["ClipFeatures", "clip_features", "feature_permutation"]


def feature_permutation(model):
    """Index array that turns our feature channels into the original network's, or None when
    they are already the same (native Paddle weights, ImageNet or TSN checkpoints)."""
    backbone = getattr(model, "backbone", model)
    if not getattr(backbone, "stream_fold_swap", False):
        return None
    return fold_swap(int(model.head.in_channels))


class ClipFeatures(nn.Layer):
    """forward(imgs [N, V*T, 3, H, W]) -> pooled backbone features [N, C], float32. Shares the
    recognizer's layers and weights; traceable, so it exports as its own program."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        perm = feature_permutation(model)
        self.permute = perm is not None
        if self.permute:
            self.register_buffer("channel_order", paddle.to_tensor(perm.astype("int64")))

    def forward(self, imgs):
        frames = imgs.shape[1]
        x, _ = self.model._frames(imgs)        # the recognizer's own reshape and frame check
        x = paddle.mean(self.model.backbone(x), axis=[2, 3])            # [N*V*T, C]
        x = paddle.mean(paddle.reshape(x, [-1, frames, x.shape[-1]]), axis=1)
        if self.permute:
            x = paddle.index_select(x, self.channel_order, axis=1)
        return x


def clip_features(model, imgs):
    """Features [N, C] (numpy float32) of clips `imgs` [N, V*T, 3, H, W] (numpy or tensor), in
    dygraph, eval mode, no gradients."""
    net = ClipFeatures(model)
    net.eval()
    with paddle.no_grad():
        out = net(imgs if isinstance(imgs, paddle.Tensor) else paddle.to_tensor(
            np.ascontiguousarray(imgs, dtype=np.float32)))
    return out.numpy()
