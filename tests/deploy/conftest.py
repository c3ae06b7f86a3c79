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


def pipeline(num_seg=NUM_SEG, size=SIZE, decode=None):
    """The test pipeline; `decode` replaces the video decoder (e.g. {'name': 'FrameDecoder'})."""
    return {"decode": decode or {"name": "VideoDecoder", "backend": "decord"},
            "sample": {"name": "Sampler", "num_seg": num_seg, "seg_len": 1, "valid_mode": True,
                       "select_left": True},
            "transform": [{"Scale": {"short_size": int(size * 8 / 7), "fixed_ratio": False}},
                          {"CenterCrop": {"target_size": size}},
                          {"Image2Array": None},
                          {"Normalization": {"mean": [0.485, 0.456, 0.406],
                                             "std": [0.229, 0.224, 0.225]}}]}


def write_config(path, mode="bidirectional", classes=CLASSES, frames=False, label_list=None,
                 **kw):
    """A config file for the tiny model; `frames`: a frames config (FrameDataset, FrameDecoder)
    as the *_frames.yaml configs are; `label_list`: its DATASET.label_list."""
    cfg = {"model_name": "TSM", "MODEL": model_cfg(mode, classes=classes, **kw),
           "PIPELINE": {"test": pipeline(decode={"name": "FrameDecoder"} if frames else None)}}
    if frames or label_list:
        cfg["DATASET"] = {}
    if frames:
        cfg["DATASET"]["test"] = {"format": "FrameDataset", "file_path": "unused_frames.list",
                                  "suffix": "img_{:05}.jpg"}
    if label_list:
        cfg["DATASET"]["label_list"] = str(label_list)
    with open(path, "w") as f:
        yaml.safe_dump(cfg, f)
    return str(path)


def write_labels(path, n=CLASSES):
    """A label list `INDEX name_INDEX` of n classes."""
    with open(path, "w") as f:
        f.writelines(f"{i} name_{i}\n" for i in range(n))
    return str(path)


def write_frames(video, folder, count=None, suffix="img_{:05}.jpg", start=1):
    """The frames of `video` as numbered JPEGs (data/extract_frames.py's layout); returns how many."""
    import cv2
    os.makedirs(folder, exist_ok=True)
    cap = cv2.VideoCapture(str(video))
    n = 0
    while count is None or n < count:
        ok, frame = cap.read()
        if not ok:
            break
        cv2.imwrite(os.path.join(folder, suffix.format(start + n)), frame)
        n += 1
    cap.release()
    return n


def write_video(path, frames, size=(96, 80), seed=0):
    """A small MJPG video of `frames` frames: a smooth random colour field with a moving square."""
    import cv2
    w, h = size
    rng = np.random.RandomState(seed)
    base = cv2.resize(rng.randint(0, 256, (4, 5, 3)).astype(np.uint8), (w, h),
                      interpolation=cv2.INTER_CUBIC)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (w, h))
    for t in range(frames):
        img = base.copy()
        x = (5 * t) % (w - 20)
        cv2.rectangle(img, (x, 10), (x + 20, 30), (255, 255, 255), -1)
        writer.write(img)
    writer.release()
    return str(path)


def save_checkpoint(model, path):
    paddle.save(model.state_dict(), str(path))
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
