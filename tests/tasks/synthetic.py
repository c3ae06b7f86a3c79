"""A tiny in-memory video data set for the task tests: a bright square moving over T frames.

Class c in {0, 1, 2, 3} moves right, left, down or up: the classes differ only in the direction
of time, so a model must use temporal information (what TSM adds) to tell 0 from 1 and 2 from 3.
Registered as DATASET format `SyntheticMotion`; it follows the loader's dataset contract
(`load(i, rng)`, `path`, `failure_reason`, `num_views`).
"""
import os

import numpy as np

from paddlevideo.loader.datasets.base import SampleError
from paddlevideo.loader.registry import DATASETS


@DATASETS.register("SyntheticMotion")
class SyntheticMotion:
    def __init__(self, pipeline=None, mode="train", num_samples=32, num_seg=4, size=32,
                 num_classes=4, num_views=1, bad=(), nan_from=0, seed=0):
        self.mode, self.n, self.num_seg, self.size = mode, int(num_samples), int(num_seg), int(size)
        self.num_classes, self.num_views = int(num_classes), int(num_views)
        self.bad, self.nan_from = set(bad or ()), int(nan_from)
        self.seed = {"train": 0, "valid": 1, "test": 2}[mode] * 1000 + int(seed)
        self.loads = 0
        self.crop_size = (self.size, self.size)     # what a pipeline's crop op would say

    def __len__(self):
        return self.n

    def path(self, i):
        return f"synthetic://{self.mode}/{i:04d}"

    def label(self, i):
        return i % self.num_classes

    def failure_reason(self, i):
        return "synthetic corrupt file" if i in self.bad else ""

    def clip(self, i, rng):
        label = self.label(i)
        base = np.random.default_rng([self.seed, i])
        s, t = self.size, self.num_seg
        side = s // 4
        frames = np.zeros((t, 3, s, s), dtype=np.float32)
        frames += base.normal(0, 0.1, size=frames.shape).astype(np.float32)
        fixed = int(base.integers(0, s - side))
        jitter = int(rng.integers(0, 3)) if self.mode == "train" else 0
        for k in range(t):
            pos = int((s - side) * k / max(t - 1, 1))
            pos = pos if label in (0, 2) else (s - side) - pos
            pos = min(max(pos + jitter, 0), s - side)
            if label in (0, 1):
                frames[k, :, fixed:fixed + side, pos:pos + side] += 1.0
            else:
                frames[k, :, pos:pos + side, fixed:fixed + side] += 1.0
        return frames

    def load(self, i, rng=None):
        self.loads += 1
        if i in self.bad:
            raise SampleError(i, self.path(i), "synthetic corrupt file")
        rng = rng if rng is not None else np.random.default_rng([self.seed, i])
        imgs = np.concatenate([self.clip(i, rng) for _ in range(self.num_views)])
        if self.nan_from and self.loads >= self.nan_from:
            imgs[:] = np.nan
        return imgs, np.int64(self.label(i))

    def __getitem__(self, i):
        return self.load(i)


def write_config(tmp_path, name="cfg.yaml", epochs=3, batch_size=8, train=32, valid=16, test=16,
                 depth=18, num_seg=4, size=32, classes=4, extra_train="", extra_test="",
                 lr="{name: PiecewiseDecay, boundaries: [100], values: [0.05, 0.005]}", more=""):
    """Write a tiny but complete config (schema as the shipped ones) and return its path."""
    text = f"""\
model_name: Tiny
epochs: {epochs}
log_interval: 1
save_interval: 1
output_dir: {tmp_path}/out
MODEL:
  framework: Recognizer2D
  backbone: {{name: ResNetTSM, depth: {depth}, num_seg: {num_seg}}}
  head: {{name: TSMHead, num_classes: {classes}, in_channels: 512, drop_ratio: 0.2, std: 0.01}}
DATASET:
  batch_size: {batch_size}
  num_workers: 0
  train: {{format: SyntheticMotion, num_samples: {train}, num_seg: {num_seg}, size: {size}{extra_train}}}
  valid: {{format: SyntheticMotion, num_samples: {valid}, num_seg: {num_seg}, size: {size}}}
  test: {{format: SyntheticMotion, num_samples: {test}, num_seg: {num_seg}, size: {size}{extra_test}}}
PIPELINE:
  train: {{}}
  valid: {{}}
  test: {{}}
OPTIMIZER:
  name: Momentum
  momentum: 0.9
  learning_rate: {lr}
  weight_decay: {{name: L2, value: 0.0001}}
  grad_clip: {{name: ClipGradByGlobalNorm, value: 20.0}}
METRIC: {{name: CenterCropMetric}}
{more}"""
    path = os.path.join(str(tmp_path), name)
    with open(path, "w") as f:
        f.write(text)
    return path
