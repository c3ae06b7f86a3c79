"""Datasets: list checks with line numbers, every bad-file case, build_dataset from a config."""
import os
import shutil

import numpy as np
import pytest

from paddlevideo.loader import (FrameDataset, ListError, SampleError, VideoDataset, build_dataset)
from paddlevideo.utils.config import ConfigError, get_config

PIPE = {
    "decode": {"name": "VideoDecoder", "backend": "decord"},
    "sample": {"name": "Sampler", "num_seg": 4, "valid_mode": True, "select_left": True},
    "transform": [{"Scale": {"short_size": 40, "fixed_ratio": False}},
                  {"CenterCrop": {"target_size": 32}}, {"Image2Array": None},
                  {"Normalization": {"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}}],
}
FRAME_PIPE = dict(PIPE, decode={"name": "FrameDecoder"})


def write_list(path, lines):
    path.write_text("".join(line + "\n" for line in lines))
    return str(path)


@pytest.fixture
def tree(tmp_path, fab):
    """good.avi (20 frames), short.avi (3 frames), gray.avi, odd.mp4 (81x61), empty.mp4, notvideo.mp4, truncated.avi, and frame folders."""
    d = tmp_path / "data"
    d.mkdir()
    fab.write_video(str(d / "good.avi"), fab.level_frames(20))
    fab.write_video(str(d / "short.avi"), fab.level_frames(3))
    fab.write_video(str(d / "odd.mp4"), fab.level_frames(10, w=82, h=62)[:, :61, :81])
    gray = fab.level_frames(10)[..., 0]
    fab.write_video(str(d / "gray.avi"), gray)
    (d / "empty.mp4").write_bytes(b"")
    (d / "notvideo.mp4").write_text("this is not a video\n" * 50)
    full = (d / "good.avi").read_bytes()
    (d / "truncated.avi").write_bytes(full[:len(full) // 2])
    fab.write_frames(str(d / "frames" / "a"), fab.level_frames(10))
    fab.write_frames(str(d / "frames" / "gray"), fab.level_frames(10)[..., 0])
    sizes = fab.level_frames(6)
    fab.write_frames(str(d / "frames" / "mixed"), sizes)
    import cv2
    cv2.imwrite(str(d / "frames" / "mixed" / "img_00006.jpg"), np.zeros((30, 30, 3), np.uint8))
    return d


def video_ds(tmp_path, tree, lines, **kw):
    return VideoDataset(write_list(tmp_path / "l.txt", lines), PIPE, "valid",
                        data_prefix=str(tree), **kw)


def test_good_video_sample(tmp_path, tree):
    ds = video_ds(tmp_path, tree, ["good.avi 3"])
    imgs, label = ds[0]
    assert imgs.shape == (4, 3, 32, 32) and imgs.dtype == np.float32
    assert label == 3 and label.dtype == np.int64
    assert ds.num_seg == 4 and ds.num_views == 1 and ds.path(0) == str(tree / "good.avi")


def test_list_errors_name_every_bad_line(tmp_path, tree):
    with pytest.raises(ListError) as e:
        video_ds(tmp_path, tree, ["good.avi 1", "good.avi", "good.avi x", "good.avi -1",
                                  "good.avi 12"], num_classes=10)
    msg = str(e.value)
    for line in (2, 3, 4, 5):
        assert f"l.txt:{line}:" in msg
    assert "l.txt:1:" not in msg and "out of range 0..9" in msg


def test_missing_and_empty_files_reported_at_load(tmp_path, tree):
    with pytest.raises(ListError) as e:
        video_ds(tmp_path, tree, ["good.avi 1", "nothere.avi 1", "empty.mp4 2"])
    assert "l.txt:2: file not found" in str(e.value) and "l.txt:3: empty file" in str(e.value)
    ds = video_ds(tmp_path, tree, ["good.avi 1", "nothere.avi 1", "empty.mp4 2"], missing="skip")
    assert len(ds) == 1 and [s[0] for s in ds.skipped] == [2, 3]


@pytest.mark.parametrize("name,why", [
    ("empty.mp4", "empty"), ("notvideo.mp4", "cannot open"), ("truncated.avi", "truncated"),
    ("crop_too_big", "smaller than the centre crop"),
])
@pytest.mark.parametrize("backend", ["decord", "cv2", "pyav"])
def test_bad_videos_fail_with_a_reason_never_replaced(tmp_path, tree, name, why, backend):
    pipe = dict(PIPE, decode={"name": "VideoDecoder", "backend": backend})
    crop_case = name == "crop_too_big"
    if crop_case:
        name = "good.avi"
        pipe = dict(pipe, transform=[{"CenterCrop": {"target_size": 100}}] + PIPE["transform"][2:])
    ds = VideoDataset(write_list(tmp_path / "l.txt", [f"{name} 0", "good.avi 1"]), pipe, "test",
                      data_prefix=str(tree), check_files=False)
    with pytest.raises(SampleError) as e:
        ds[0]
    assert e.value.index == 0 and e.value.path.endswith(name)
    reason = ds.failure_reason(0)
    assert reason and (why in reason or (why == "cannot open" and "open" in reason)
                       or (why == "truncated" and ("truncated" in reason or "decode" in reason))), \
        reason
    assert crop_case or ds.failure_reason(1) == ""


@pytest.mark.parametrize("backend", ["decord", "cv2", "pyav"])
def test_too_few_frames_odd_sizes_and_grayscale_load(tmp_path, tree, backend):
    pipe = dict(PIPE, decode={"name": "VideoDecoder", "backend": backend})
    ds = VideoDataset(write_list(tmp_path / "l.txt", ["short.avi 0", "odd.mp4 1", "gray.avi 2"]),
                      pipe, "test", data_prefix=str(tree))
    for i in range(3):
        imgs, _ = ds[i]
        assert imgs.shape == (4, 3, 32, 32) and np.isfinite(imgs).all()
    gray, _ = ds[2]
    assert np.allclose(gray[:, 0], gray[:, 1]) and np.allclose(gray[:, 1], gray[:, 2])


def test_frame_dataset_and_count_checks(tmp_path, tree):
    def frames_ds(lines, **kw):
        return FrameDataset(write_list(tmp_path / "f.txt", lines), FRAME_PIPE, "valid",
                            data_prefix=str(tree / "frames"), **kw)
    ds = frames_ds(["a 10 4", "gray 10 5"])
    imgs, label = ds[0]
    assert imgs.shape == (4, 3, 32, 32) and label == 4
    g, _ = ds[1]
    assert np.allclose(g[:, 0], g[:, 2])
    with pytest.raises(ListError) as e:
        frames_ds(["a 11 0", "a 9 0", "a 10 0", "b 3 0"])
    msg = str(e.value)
    assert "f.txt:1:" in msg and "last" in msg
    assert "f.txt:2:" in msg and "exists too" in msg
    assert "f.txt:3:" not in msg and "f.txt:4: frame folder not found" in msg
    with pytest.raises(ListError, match="start_index"):
        frames_ds(["a 10 0"], start_index=0)
    shutil.copytree(tree / "frames" / "a", tree / "frames" / "zero")
    for i in range(1, 11):
        os.rename(tree / "frames" / "zero" / f"img_{i:05}.jpg",
                  tree / "frames" / "zero" / f"img_{i - 1:05}.jpg")
    assert frames_ds(["zero 10 0"], start_index=0)[0][0].shape == (4, 3, 32, 32)


def test_frames_of_different_sizes_fail(tmp_path, tree):
    ds = FrameDataset(write_list(tmp_path / "f.txt", ["mixed 6 0"]),
                      dict(FRAME_PIPE, sample={"name": "Sampler", "num_seg": 3, "valid_mode": True,
                                               "select_left": True}),
                      "valid", data_prefix=str(tree / "frames"))
    with pytest.raises(SampleError, match="one size"):
        ds[0]


def test_corrupt_frame_file_fails(tmp_path, tree):
    (tree / "frames" / "a" / "img_00002.jpg").write_bytes(b"\xff\xd8broken")
    ds = FrameDataset(write_list(tmp_path / "f.txt", ["a 10 0"]),
                      dict(FRAME_PIPE, sample={"name": "Sampler", "num_seg": 5, "valid_mode": True,
                                               "select_left": True}),
                      "valid", data_prefix=str(tree / "frames"))
    assert "img_00002.jpg" in ds.failure_reason(0)


def test_build_dataset_from_config(tmp_path, tree):
    lst = write_list(tmp_path / "l.txt", ["good.avi 1", "short.avi 7"])
    cfg_text = f"""
MODEL:
  head: {{name: TSMHead, num_classes: 5}}
DATASET:
  batch_size: 2
  valid: {{format: VideoDataset, data_prefix: {tree}, file_path: {lst}}}
PIPELINE:
  valid:
    decode: {{name: VideoDecoder}}
    sample: {{name: Sampler, num_seg: 4, valid_mode: True, select_left: True}}
    transform:
      - Scale: {{short_size: 40, fixed_ratio: False}}
      - CenterCrop: {{target_size: 32}}
      - Image2Array:
      - Normalization: {{mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25]}}
"""
    p = tmp_path / "c.yaml"
    p.write_text(cfg_text)
    with pytest.raises(ListError, match="l.txt:2: label 7 is out of range 0..4"):
        build_dataset(get_config(str(p)), "valid")
    p.write_text(cfg_text.replace("num_classes: 5", "num_classes: 8"))
    ds = build_dataset(get_config(str(p)), "valid")
    assert len(ds) == 2 and ds[1][0].shape == (4, 3, 32, 32)
    p.write_text(cfg_text.replace("data_prefix:", "data_prefx:"))
    with pytest.raises(ConfigError, match=r"c.yaml:6.*data_prefix"):
        build_dataset(get_config(str(p)), "valid")
    with pytest.raises(ConfigError, match="PIPELINE.train|DATASET.train"):
        build_dataset(get_config(str(p)), "train")


def test_decoder_must_match_the_dataset(tmp_path, tree):
    with pytest.raises(ValueError, match="FrameDecoder"):
        FrameDataset(write_list(tmp_path / "f.txt", ["a 10 0"]), PIPE, "valid",
                     data_prefix=str(tree / "frames"))


def test_video_list_of_frame_folders_says_use_a_frames_config(tmp_path, tree):
    """Not 'file not found': the list is of the other kind, and `missing: skip` does not hide it."""
    frames = tree / "frames"
    for lines in (["a 3", "gray 4"], ["a 10 3", "gray 10 4"]):       # folders; a frame list
        for missing in ("error", "skip"):
            with pytest.raises(ListError) as e:
                VideoDataset(write_list(tmp_path / "l.txt", lines), PIPE, "valid",
                             data_prefix=str(frames), missing=missing)
            msg = str(e.value)
            assert msg.startswith(f"{tmp_path / 'l.txt'}:1: {frames / 'a'} is a folder")
            assert "use a frames config" in msg.lower() and "FrameDataset" in msg
            assert "(2 of 2 lines are like this)" in msg and "not found" not in msg


def test_frame_list_of_videos_says_use_a_videos_config(tmp_path, tree):
    with pytest.raises(ListError) as e:
        FrameDataset(write_list(tmp_path / "f.txt", ["good.avi 20 1"]), FRAME_PIPE, "valid",
                     data_prefix=str(tree), missing="skip")
    assert f"f.txt:1: {tree / 'good.avi'} is a file, not a frame folder" in str(e.value)
    assert "VideoDataset" in str(e.value)
    for line in ("good.avi 1", "my clip.avi 1"):                 # a video list's lines
        with pytest.raises(ListError) as e:
            FrameDataset(write_list(tmp_path / "f.txt", [line]), FRAME_PIPE, "valid",
                         data_prefix=str(tree))
        assert "f.txt:1:" in str(e.value) and "use a videos config" in str(e.value)
