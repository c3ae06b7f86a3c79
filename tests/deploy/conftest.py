"""Tiny TSM models and configs for the deploy tests (ResNet-18, 4 segments, small frames)."""
import os

import numpy as np
import paddle
import pytest
import yaml

from paddlevideo.modeling.builder import build_model

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VIDEOS = os.path.join(os.path.dirname(REPO), "shared", "videos")
LABELS = os.path.join(os.path.dirname(REPO), "shared", "spec", "kinetics400_label_list.txt")

NUM_SEG, SIZE, CLASSES = 4, 64, 10


def model_cfg(mode="bidirectional", depth=18, num_seg=NUM_SEG, classes=CLASSES):
    return {"framework": "Recognizer2D",
            "backbone": {"name": "ResNetTSM", "depth": depth, "num_seg": num_seg,
                         "shift_mode": mode},
            "head": {"name": "TSMHead", "num_classes": classes,
                     "in_channels": 512 if depth < 50 else 2048}}


def make_model(mode="bidirectional", seed=0, **kw):
    """A seeded random model whose BatchNorm has non-trivial statistics (so BN folding is tested):
    gamma/beta random, running mean/variance taken from one training-mode pass on random clips,
    as a trained model's would be, so activations keep a sane scale."""
    paddle.seed(seed)
    model = build_model(model_cfg(mode, **kw), load_pretrained=False)
    rng = np.random.RandomState(seed)
    norms = [l for l in model.sublayers() if isinstance(l, paddle.nn.BatchNorm2D)]
    for bn in norms:
        c = bn.weight.shape[0]
        bn.weight.set_value(rng.uniform(0.5, 1.5, c).astype("float32"))
        bn.bias.set_value(rng.uniform(-0.2, 0.2, c).astype("float32"))
        bn._momentum = 0.0                  # running stats := this batch's stats
    model.train()
    with paddle.no_grad():
        model(paddle.to_tensor(clips(2, num_seg=model.num_seg, seed=seed + 100)))
    for bn in norms:
        bn._momentum = 0.9
    model.head.fc.weight.set_value(rng.normal(0, 0.05, model.head.fc.weight.shape).astype("float32"))
    model.eval()
    return model


def pipeline(num_seg=NUM_SEG, size=SIZE):
    return {"decode": {"name": "VideoDecoder", "backend": "decord"},
            "sample": {"name": "Sampler", "num_seg": num_seg, "seg_len": 1, "valid_mode": True,
                       "select_left": True},
            "transform": [{"Scale": {"short_size": int(size * 8 / 7), "fixed_ratio": False}},
                          {"CenterCrop": {"target_size": size}},
                          {"Image2Array": None},
                          {"Normalization": {"mean": [0.485, 0.456, 0.406],
                                             "std": [0.229, 0.224, 0.225]}}]}


def write_config(path, mode="bidirectional", classes=CLASSES, **kw):
    cfg = {"model_name": "TSM", "MODEL": model_cfg(mode, classes=classes, **kw),
           "PIPELINE": {"test": pipeline()}}
    with open(path, "w") as f:
        yaml.safe_dump(cfg, f)
    return str(path)


def clips(n, num_seg=NUM_SEG, size=SIZE, seed=1):
    return np.random.RandomState(seed).standard_normal((n, num_seg, 3, size, size)).astype("float32")


def assert_close_logits(got, want, tol=1e-4):
    scale = float(np.abs(want).max())
    diff = float(np.abs(got - want).max())
    assert diff <= tol * scale, f"max abs diff {diff:.3g} > {tol} x scale {scale:.3g}"


@pytest.fixture
def videos():
    if not os.path.isdir(VIDEOS):
        pytest.skip(f"{VIDEOS} is absent (real test videos)")
    return VIDEOS


@pytest.fixture
def loader():
    try:
        import paddlevideo.loader as loader_mod
        loader_mod.Compose  # noqa: B018
    except Exception as e:                           # the data side is optional for model checks
        pytest.skip(f"paddlevideo.loader unavailable: {e}")
    return loader_mod
