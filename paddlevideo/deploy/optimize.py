"""Graph-level rewrites applied to a copy of the model before export, each exact up to float
rounding (the export check verifies it).

Paddle 3.3's exported program keeps `batch_norm_` (the in-place op) after each convolution, which
its oneDNN conv+BN fusion pass does not match, so BatchNorm runs as separate element-wise kernels
(about a third of TSM-R50's CPU time). Folding BN into the convolution's weight and bias at export
removes them.
"""
import copy

import paddle
import paddle.nn as nn

__all__ = ["fold_batchnorm", "inference_copy"]


def _fold(conv, bn):
    """A Conv2D with bias equal to bn(conv(x)) in eval mode."""
    w = conv.weight
    gamma = bn.weight if bn.weight is not None else paddle.ones([w.shape[0]])
    beta = bn.bias if bn.bias is not None else paddle.zeros([w.shape[0]])
    inv_std = paddle.rsqrt(bn._variance.astype("float64") + bn._epsilon)
    scale = gamma.astype("float64") * inv_std                             # [out]
    bias = beta.astype("float64") - bn._mean.astype("float64") * scale
    if conv.bias is not None:
        bias = bias + conv.bias.astype("float64") * scale
    fused = nn.Conv2D(conv._in_channels, conv._out_channels, conv._kernel_size,
                      stride=conv._stride, padding=conv._padding, dilation=conv._dilation,
                      groups=conv._groups, data_format=conv._data_format)
    new_w = w.astype("float64") * paddle.reshape(scale, [-1, 1, 1, 1])
    fused.weight.set_value(new_w.astype(w.dtype))
    fused.bias.set_value(bias.astype(w.dtype))
    return fused


def fold_batchnorm(model):
    """Fold every `_conv` + `_batch_norm` pair (our ConvBNLayer) in place; returns the count."""
    count = 0
    for layer in model.sublayers(include_self=True):
        conv, bn = getattr(layer, "_conv", None), getattr(layer, "_batch_norm", None)
        if isinstance(conv, nn.Conv2D) and isinstance(bn, (nn.BatchNorm2D, nn.BatchNorm)):
            layer._conv = _fold(conv, bn)
            layer._batch_norm = nn.Identity()
            count += 1
    return count


def inference_copy(model, fold_bn=True):
    """An eval-mode deep copy of `model` rewritten for inference; the original is untouched."""
    clone = copy.deepcopy(model)
    clone.eval()
    if fold_bn:
        with paddle.no_grad():
            fold_batchnorm(clone)
    return clone
