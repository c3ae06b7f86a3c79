"""Model size and cost: parameters and multiply-adds per clip, counted by forward hooks.

Multiply-adds (MACs) count convolutions and fully connected layers, the convention of the TSM
paper (33 G for TSM-R50 8x224); BatchNorm, ReLU, pooling and the shift add nothing material.
"""
from dataclasses import dataclass

import numpy as np
import paddle
import paddle.nn as nn

__all__ = ["ModelCost", "model_cost", "input_size_from_config"]


@dataclass
class ModelCost:
    trainable: int        # parameters that learn
    total: int            # every tensor of the state dict (BatchNorm running statistics too)
    macs: int             # multiply-adds for one clip
    num_seg: int
    size: int

    def rows(self):
        return [("input", f"1 clip x {self.num_seg} frames x 3 x {self.size} x {self.size}"),
                ("parameters", f"{self.trainable / 1e6:.2f} M ({self.trainable:,})"),
                ("with BN statistics", f"{self.total / 1e6:.2f} M ({self.total:,})"),
                ("multiply-adds / clip", f"{self.macs / 1e9:.2f} G"),
                ("multiply-adds / frame", f"{self.macs / self.num_seg / 1e9:.2f} G")]


def _conv_macs(layer, inputs, output):
    kh, kw = layer.weight.shape[2:]
    per_output = layer.weight.shape[1] * kh * kw          # in_channels / groups x kernel
    layer._macs += int(np.prod(output.shape)) * per_output


def _linear_macs(layer, inputs, output):
    layer._macs += int(np.prod(output.shape)) * layer.weight.shape[0]


def model_cost(model, num_seg, size):
    """Count parameters and run one clip [1, num_seg, 3, size, size] through `model`."""
    hooks, counted = [], []
    for layer in model.sublayers():
        fn = _conv_macs if isinstance(layer, nn.Conv2D) else \
            _linear_macs if isinstance(layer, nn.Linear) else None
        if fn is not None:
            layer._macs = 0
            hooks.append(layer.register_forward_post_hook(fn))
            counted.append(layer)
    was_training = model.training
    model.eval()
    try:
        with paddle.no_grad():
            model(paddle.zeros([1, num_seg, 3, size, size]))
    finally:
        for h in hooks:
            h.remove()
        if was_training:
            model.train()
    macs = sum(layer._macs for layer in counted)
    trainable = sum(int(np.prod(p.shape)) for p in model.parameters() if not p.stop_gradient)
    total = sum(int(np.prod(t.shape)) for t in model.state_dict().values())
    return ModelCost(trainable, total, macs, num_seg, size)


def input_size_from_config(cfg):
    """The crop size the model is tested at: INFERENCE.target_size, else the test CenterCrop."""
    inference = cfg.get("INFERENCE") or {}
    if "target_size" in inference:
        return int(inference["target_size"])
    for mode in ("test", "valid"):
        for op in ((cfg.get("PIPELINE") or {}).get(mode) or {}).get("transform") or []:
            name, params = next(iter(op.items()))
            if name in ("CenterCrop", "ThreeCrop", "TenCrop") and params and "target_size" in params:
                return int(params["target_size"])
    return 224
