"""Transform ops: geometry, one random choice per clip, multi-view crops, arrays, config errors."""
import numpy as np
import pytest

from paddlevideo.loader import Compose, PIPELINES
from paddlevideo.loader.decoders import DecodeError
from paddlevideo.utils.config import ConfigError, load_config


def clip(T=4, h=240, w=320, clips=1, seed=0, same=False):
    rng = np.random.default_rng(seed)
    if same:
        one = rng.integers(0, 256, (1, h, w, 3), dtype=np.uint8)
        imgs = np.repeat(one, T * clips, axis=0)
    else:
        imgs = rng.integers(0, 256, (T * clips, h, w, 3), dtype=np.uint8)
    return {"imgs": imgs, "clip_len": T, "num_clips": clips, "rng": np.random.default_rng(seed)}


def run(op_cfg, results):
    return Compose([op_cfg])(results)


@pytest.mark.parametrize("size,kw,out", [
    ((320, 240), {"fixed_ratio": False}, (341, 256)),
    ((240, 320), {"fixed_ratio": False}, (256, 341)),
    ((320, 240), {}, (341, 256)),                          # fixed 4:3 gives int(256 * 4/3) too
    ((340, 256), {"fixed_ratio": False}, (340, 256)),      # already 256: unchanged
    ((400, 240), {}, (341, 256)),                          # fixed_ratio ignores the aspect
    ((320, 240), {"fixed_ratio": False, "keep_ratio": False}, (256, 256)),
    ((321, 240), {"fixed_ratio": False, "do_round": True}, (342, 256)),
])
def test_scale_sizes(size, kw, out):
    r = run({"Scale": dict(short_size=256, **kw)}, clip(2, size[1], size[0]))
    img = r["imgs"]
    assert img.shape[1:3] == (out[1], out[0])


def test_scale_then_center_crop_equals_eager_resize_and_crop():
    import cv2
    r = clip(3)
    raw = r["imgs"].copy()
    out = Compose([{"Scale": {"short_size": 256, "fixed_ratio": False}},
                   {"CenterCrop": {"target_size": 224}}])(r)["imgs"]
    eager = np.stack([cv2.resize(f, (341, 256), interpolation=cv2.INTER_LINEAR)[16:240, 58:282]
                      for f in raw])
    assert out.shape == (3, 224, 224, 3) and np.array_equal(out, eager)
    # one pixel off in x would give a far larger difference on random pixels
    shifted = np.stack([cv2.resize(f, (341, 256))[16:240, 59:283] for f in raw])
    assert np.abs(out.astype(int) - shifted).mean() > 10


def test_pillow_backend_matches_pil_exactly():
    from PIL import Image
    r = clip(2)
    raw = r["imgs"].copy()
    out = Compose([{"Scale": {"short_size": 256, "fixed_ratio": False, "backend": "pillow"}},
                   {"CenterCrop": {"target_size": 224}}])(r)["imgs"]
    ref = np.stack([np.asarray(Image.fromarray(f).resize((341, 256), Image.BILINEAR))[16:240, 58:282]
                    for f in raw])
    assert np.array_equal(out, ref)


def test_center_crop_offsets_round_half_to_even_like_paddlevideo():
    r = clip(1, 256, 341)
    r["imgs"][:] = np.arange(341, dtype=np.uint8)[None, None, :, None] % 251
    out = run({"CenterCrop": {"target_size": 224}}, r)["imgs"]
    assert out[0, 0, 0, 0] == 58 and out.shape[1:3] == (224, 224)     # round(58.5) == 58


def test_crop_larger_than_frame_is_a_clear_error():
    with pytest.raises(DecodeError, match="smaller than the centre crop"):
        run({"CenterCrop": {"target_size": 224}}, clip(1, 100, 120))


def test_multiscale_crop_candidates_and_grid():
    op = PIPELINES.build({"name": "MultiScaleCrop", "target_size": 224})
    pairs = op.candidates(340, 256)
    assert set(pairs) == {(w, h) for i, h in enumerate([256, 224, 192, 168])
                          for j, w in enumerate([256, 224, 192, 168]) if abs(i - j) <= 1}
    assert (0, 0) in op.offsets(340, 256, 224, 224) and len(op.offsets(340, 256, 224, 224)) == 13
    dup = PIPELINES.build({"name": "MultiScaleCrop", "target_size": 224, "allow_duplication": True})
    assert len(dup.offsets(224, 224, 224, 224)) == 13 and len(op.offsets(224, 224, 224, 224)) == 1
    for s in range(30):
        x, y, w, h = op.sample_box(340, 256, np.random.default_rng(s))
        assert (w, h) in pairs and x + w <= 340 and y + h <= 256
        assert x % ((340 - w) // 4 or 1) == 0


@pytest.mark.parametrize("op", [
    {"MultiScaleCrop": {"target_size": 112}}, {"RandomCrop": {"target_size": 112}},
    {"RandomFlip": {"p": 0.5}},
])
def test_one_random_choice_per_clip(op):
    """Identical frames stay identical within a clip; two clips draw independently."""
    differs = False
    for seed in range(12):
        r = run(op, clip(4, 128, 160, clips=2, seed=seed, same=True))
        imgs = r["imgs"]
        assert all(np.array_equal(imgs[0], imgs[k]) for k in range(4))
        assert all(np.array_equal(imgs[4], imgs[k]) for k in range(4, 8))
        differs |= not np.array_equal(imgs[0], imgs[4])
    assert differs


def test_random_ops_are_reproducible_from_the_rng():
    cfg = [{"MultiScaleCrop": {"target_size": 96}}, {"RandomFlip": None}]
    a = Compose(cfg)(clip(4, 120, 160, seed=5))["imgs"]
    b = Compose(cfg)(clip(4, 120, 160, seed=5))["imgs"]
    assert np.array_equal(a, b)


def test_flip_probabilities():
    r = clip(2, 8, 10)
    raw = r["imgs"].copy()
    assert np.array_equal(run({"RandomFlip": {"p": 1.0}}, r)["imgs"], raw[:, :, ::-1])
    r = clip(2, 8, 10)
    assert np.array_equal(run({"RandomFlip": {"p": 0.0}}, r)["imgs"], raw)


def test_three_crop_and_ten_crop_views():
    r = Compose([{"ThreeCrop": {"target_size": 100}}])(clip(2, 100, 160, clips=2))
    assert r["imgs"].shape == (2 * 3 * 2, 100, 100, 3) and r["num_crops"] == 3
    src = clip(2, 100, 160, clips=2)["imgs"]
    assert np.array_equal(r["imgs"][0], src[0, :, :100])                 # clip 0, left crop
    assert np.array_equal(r["imgs"][4], src[0, :, 60:])                  # clip 0, right crop
    assert np.array_equal(r["imgs"][6], src[2, :, :100])                 # clip 1, left crop
    t = Compose([{"TenCrop": {"target_size": 40}}])(clip(3, 60, 80))
    imgs = t["imgs"].reshape(10, 3, 40, 40, 3)
    assert t["num_crops"] == 10
    assert np.array_equal(imgs[5:], imgs[:5, :, :, ::-1])
    assert np.array_equal(imgs[4, 0], clip(3, 60, 80)["imgs"][0, 10:50, 20:60])


def test_image2array_and_normalization():
    r = clip(2, 6, 5)
    raw = r["imgs"].astype(np.float32)
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    out = Compose([{"Image2Array": None}, {"Normalization": {"mean": mean, "std": std}}])(r)["imgs"]
    assert out.shape == (2, 3, 6, 5) and out.dtype == np.float32
    ref = (raw.transpose(0, 3, 1, 2) / 255.0 - np.array(mean).reshape(3, 1, 1)) / \
        np.array(std).reshape(3, 1, 1)
    assert np.allclose(out, ref, atol=1e-5)
    cthw = Compose([{"Image2Array": {"data_format": "cthw"}}])(clip(2, 6, 5))["imgs"]
    assert cthw.shape == (3, 2, 6, 5)


def test_compose_from_yaml_reports_misspelled_parameter_with_line(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("PIPELINE:\n  train:\n    transform:\n      - RandomFlip:\n"
                 "      - MultiScaleCrop: {target_size: 224, alow_duplication: True}\n")
    cfg = load_config(str(p))
    with pytest.raises(ConfigError) as e:
        Compose(cfg.PIPELINE.train)
    assert "c.yaml:5" in str(e.value) and "allow_duplication" in str(e.value)


def test_compose_unknown_op_suggests_the_name(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("PIPELINE:\n  train:\n    transform:\n      - CentreCrop: {target_size: 224}\n")
    with pytest.raises(ConfigError, match="CenterCrop"):
        Compose(load_config(str(p)).PIPELINE.train)


def test_compose_counts_views_and_segments(tsm_test_cfg):
    c = Compose(tsm_test_cfg)
    assert (c.num_seg, c.num_views) == (8, 1)
    tsm_test_cfg["sample"]["num_clips"] = 2
    tsm_test_cfg["transform"][1] = {"ThreeCrop": {"target_size": 224}}
    assert Compose(tsm_test_cfg).num_views == 6
