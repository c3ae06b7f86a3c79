"""Resizing gives PIL's bilinear frames (as PaddleVideo's and TSM's pipelines made them), also
where PIL antialiases: high-resolution sources shrunk 3x to 8x."""

import numpy as np
import pytest
from PIL import Image

from paddlevideo.loader import Compose
from paddlevideo.loader.pipelines.resample import resample_weights, resize_frames

STD_LEVELS = 0.225 * 255        # one unit of the normalised range, in grey levels (largest std)


def pil(frames, w, h):
    return np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(f)).resize((w, h), Image.BILINEAR))
                     for f in frames])


def detailed(n, h, w, seed=0):
    """Frames with detail finer than the output grid: noise on 1-3 px stripes that move."""
    rng = np.random.default_rng(seed)
    x = np.arange(w)
    frames = np.empty((n, h, w, 3), np.uint8)
    for i in range(n):
        noise = rng.integers(0, 128, (61, 67, 3), dtype=np.uint8)     # tiled: cheap at 4K
        frames[i] = np.tile(noise, (h // 61 + 1, w // 67 + 1, 1))[:h, :w]
        frames[i] += (((x + i) // (1 + i % 3)) % 2 * 127).astype(np.uint8)[None, :, None]
    return frames


@pytest.mark.parametrize("src,dst", [
    ((1920, 1080), (455, 256)), ((1280, 720), (455, 256)), ((3840, 2160), (455, 256)),
    ((1920, 1080), (256, 256)),            # keep_ratio: False
    ((256, 192), (224, 224)),              # one axis shrinks, the other grows
    ((341, 256), (224, 224)),              # MultiScaleCrop's common case
    ((17, 13), (5, 29)), ((5, 3), (4, 2)),
])
def test_resize_matches_pil(src, dst):
    frames = detailed(2, src[1], src[0])
    ours = resize_frames(frames, *dst).astype(int)
    ref = pil(frames, *dst).astype(int)
    diff = np.abs(ours - ref)
    assert ours.shape == ref.shape == (2, dst[1], dst[0], 3)
    # float32 sums against PIL's 22-bit fixed point: ties may round the other way
    assert diff.max() <= 2 and diff.mean() < 0.05 and (diff > 0).mean() < 0.05


def test_weights_are_pils():
    """The weights reproduce PIL exactly in integer arithmetic (its fixed point)."""
    rng = np.random.default_rng(1)
    for n_in, n_out in [(1920, 455), (256, 224), (240, 256), (1080, 256), (7, 3)]:
        x = rng.integers(0, 256, (9, n_in), dtype=np.uint8)
        fixed = np.round(resample_weights(n_in, n_out) * (1 << 22)).astype(np.int64)
        ours = (x.astype(np.int64) @ fixed.T + (1 << 21)) >> 22
        ref = np.asarray(Image.fromarray(x).resize((n_out, 9), Image.BILINEAR))
        assert np.array_equal(np.clip(ours, 0, 255), ref), (n_in, n_out)


def test_shrinking_is_antialiased_unlike_two_tap_bilinear():
    """What the old cv2.resize(INTER_LINEAR) did is far from PIL on fine detail."""
    import cv2
    frames = detailed(1, 1080, 1920)
    ref = pil(frames, 455, 256).astype(int)
    aliased = cv2.resize(frames[0], (455, 256), interpolation=cv2.INTER_LINEAR).astype(int)
    ours = resize_frames(frames, 455, 256)[0].astype(int)
    assert np.abs(aliased - ref[0]).mean() > 10 * STD_LEVELS * 0.01
    assert np.abs(ours - ref[0]).mean() < 0.1 * STD_LEVELS * 0.01


def test_grey_frames_and_crop_views():
    rng = np.random.default_rng(2)
    grey = rng.integers(0, 256, (2, 100, 120), dtype=np.uint8)
    assert np.abs(resize_frames(grey, 50, 40).astype(int) - pil(grey, 50, 40)).max() <= 1
    big = detailed(2, 300, 400)
    view = big[:, 10:266, 30:286]                              # a crop, not contiguous
    assert np.abs(resize_frames(view, 224, 224).astype(int) - pil(view, 224, 224)).max() <= 2


def _write_clip(path, frames):
    import cv2
    h, w = frames.shape[1:3]
    vw = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), 25, (w, h))
    assert vw.isOpened()
    for f in frames:
        vw.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    vw.release()


MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


@pytest.mark.parametrize("size", [(1280, 720), (1920, 1080), (3840, 2160)])
def test_tsm_test_pipeline_equals_paddlevideo_on_high_resolution_clips(tmp_path, size):
    """PaddleVideo's TSM test pipeline (PIL: short side to 256, centre crop 224, normalise) on
    720p, 1080p and 4K clips: the same values within 0.01 of the normalised range."""
    path = str(tmp_path / f"clip_{size[1]}p.avi")
    _write_clip(path, detailed(3, size[1], size[0], seed=size[1]))
    cfg = {"decode": {"name": "VideoDecoder", "backend": "cv2"},
           "sample": {"name": "Sampler", "num_seg": 3, "seg_len": 1, "valid_mode": True,
                      "select_left": True},
           "transform": [{"Scale": {"short_size": 256, "fixed_ratio": False}},
                         {"CenterCrop": {"target_size": 224}}, {"Image2Array": None},
                         {"Normalization": {"mean": MEAN, "std": STD}}]}
    ours = Compose(cfg)({"filename": path})["imgs"]
    raw = Compose({"decode": cfg["decode"], "sample": cfg["sample"]})({"filename": path})["imgs"]
    ow = int(size[0] * 256 / size[1])
    x1 = int(round((ow - 224) / 2.0))
    ref = pil(raw, ow, 256)[:, 16:240, x1:x1 + 224].astype(np.float32).transpose(0, 3, 1, 2)
    ref = (ref / 255.0 - np.reshape(MEAN, (3, 1, 1))) / np.reshape(STD, (3, 1, 1))
    diff = np.abs(ours - ref)
    assert ours.shape == (3, 3, 224, 224)
    assert diff.mean() < 0.01 and diff.max() < 2.5 / STD_LEVELS


def test_multiscale_crop_resizes_like_pil():
    """MultiScaleCrop on a 1080p frame: PIL's crop-then-resize of the box it chose."""
    frames = detailed(2, 1080, 1920)
    results = {"imgs": frames.copy(), "clip_len": 2, "rng": np.random.default_rng(4)}
    out = Compose([{"MultiScaleCrop": {"target_size": 224, "allow_duplication": True}}])(results)
    x, y, w, h = out["crop_box"]
    assert w > 700                                             # a shrink of more than 3x
    ref = pil(frames[:, y:y + h, x:x + w], 224, 224)
    assert np.abs(out["imgs"].astype(int) - ref).mean() < 0.05
