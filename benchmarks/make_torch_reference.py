"""Write the PyTorch reference that benchmarks/converted_weights.py --reference checks against.

Needs PyTorch (not a dependency of this project: use a separate environment, e.g.
`python3 -m venv /tmp/torchenv && /tmp/torchenv/bin/pip install torch numpy`). Builds the
original TSM network (the original code's `TSN(..., is_shift=True, shift_place='blockres')` over a
torchvision-layout ResNet: the shift on each shifted block's residual branch before its first
conv, fold 0 from frame t+1 and fold 1 from t-1; in ResNet-101 every other block of each stage)
with random weights and calibrated BatchNorm statistics, and writes for each depth D:
rD_mhl_legacy.pth (the original code's checkpoint, legacy torch.save format), rD_mm_zip.pth (the
same weights under mmaction2's names, zip format), rD_input.npy (2 random clips of 8 frames) and
rD_logits.npy (PyTorch's logits for them).

    /tmp/torchenv/bin/python benchmarks/make_torch_reference.py --out /tmp/torch_reference [--size 224]
"""
import argparse
import os
import re

import numpy as np

LAYERS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3)}


def build(depth, classes, num_seg):
    import torch
    import torch.nn as nn

    def shift(x):
        nt, c, h, w = x.shape
        x = x.view(nt // num_seg, num_seg, c, h, w)
        fold = c // 8
        out = torch.zeros_like(x)
        out[:, :-1, :fold] = x[:, 1:, :fold]                      # fold 0 from frame t+1
        out[:, 1:, fold:2 * fold] = x[:, :-1, fold:2 * fold]      # fold 1 from frame t-1
        out[:, :, 2 * fold:] = x[:, :, 2 * fold:]
        return out.view(nt, c, h, w)

    class Shifted(nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, x):
            return self.net(shift(x))

    class Bottleneck(nn.Module):
        def __init__(self, cin, width, stride, downsample):
            super().__init__()
            self.conv1, self.bn1 = nn.Conv2d(cin, width, 1, bias=False), nn.BatchNorm2d(width)
            self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(width)
            self.conv3 = nn.Conv2d(width, width * 4, 1, bias=False)
            self.bn3 = nn.BatchNorm2d(width * 4)
            self.relu, self.downsample = nn.ReLU(), downsample

        def forward(self, x):
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.relu(self.bn2(self.conv2(out)))
            out = self.bn3(self.conv3(out))
            identity = self.downsample(x) if self.downsample is not None else x
            return self.relu(out + identity)

    class Base(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
            self.bn1, self.relu, self.maxpool = nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1)
            layers, cin = LAYERS[depth], 64
            every = 2 if layers[2] >= 23 else 1
            for s, n in enumerate(layers):
                width, blocks = 64 * 2 ** s, []
                for i in range(n):
                    stride = 2 if s > 0 and i == 0 else 1
                    down = None if i else nn.Sequential(
                        nn.Conv2d(cin, width * 4, 1, stride, bias=False), nn.BatchNorm2d(width * 4))
                    block = Bottleneck(cin, width, stride, down)
                    if i % every == 0:
                        block.conv1 = Shifted(block.conv1)
                    blocks.append(block)
                    cin = width * 4
                setattr(self, f"layer{s + 1}", nn.Sequential(*blocks))
            self.avgpool = nn.AdaptiveAvgPool2d(1)

        def forward(self, x):
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            for s in range(1, 5):
                x = getattr(self, f"layer{s}")(x)
            return torch.flatten(self.avgpool(x), 1)

    class TSN(nn.Module):
        def __init__(self):
            super().__init__()
            self.base_model, self.new_fc = Base(), nn.Linear(2048, classes)

        def forward(self, clips):                                 # [N, T, 3, H, W]
            n = clips.shape[0]
            return self.new_fc(self.base_model(clips.flatten(0, 1))).view(n, num_seg, -1).mean(1)

    return TSN()


def mmaction2_names(state):
    """The original code's key names -> mmaction2's."""
    out = {}
    for key, value in state.items():
        k = key.replace("module.base_model.", "backbone.").replace("module.new_fc.",
                                                                    "cls_head.fc_cls.")
        k = re.sub(r"^backbone\.conv1\.", "backbone.conv1.conv.", k)
        k = re.sub(r"^backbone\.bn1\.", "backbone.conv1.bn.", k)
        k = re.sub(r"\.conv(\d)\.(net\.)?weight$", r".conv\1.conv.\2weight", k)
        k = re.sub(r"\.bn(\d)\.", r".conv\1.bn.", k)
        k = k.replace(".downsample.0.", ".downsample.conv.").replace(".downsample.1.",
                                                                     ".downsample.bn.")
        out[k] = value
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, metavar="DIR")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--classes", type=int, default=400)
    args = parser.parse_args()
    import torch
    torch.manual_seed(0)
    os.makedirs(args.out, exist_ok=True)
    for depth in LAYERS:
        model = build(depth, args.classes, 8)
        model.train()
        for m in model.modules():                   # random affine, statistics of real batches
            if isinstance(m, torch.nn.BatchNorm2d):
                m.momentum = None
                torch.nn.init.uniform_(m.weight, 0.5, 1.5)
                torch.nn.init.uniform_(m.bias, -0.2, 0.2)
        with torch.no_grad():
            model(torch.randn(2, 8, 3, args.size, args.size))
        model.eval()
        clips = torch.randn(2, 8, 3, args.size, args.size)
        with torch.no_grad():
            logits = model(clips)
        state = {"module." + k: v for k, v in model.state_dict().items()}
        prefix = os.path.join(args.out, f"r{depth}")
        np.save(prefix + "_input.npy", clips.numpy())
        np.save(prefix + "_logits.npy", logits.numpy())
        torch.save({"epoch": 50, "arch": f"resnet{depth}", "state_dict": state, "best_prec1": 0.0},
                   prefix + "_mhl_legacy.pth", _use_new_zipfile_serialization=False)
        torch.save({"meta": {"mmaction2_version": "1.2.0"}, "state_dict": mmaction2_names(state)},
                   prefix + "_mm_zip.pth")
        print(f"ResNet-{depth}: wrote {prefix}_*.pth/.npy (torch {torch.__version__}, logit std "
              f"{float(logits.std()):.3f})")


if __name__ == "__main__":
    main()
