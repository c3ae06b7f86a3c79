"""Decoders: the real videos through each backend, containers, frame accuracy, missing packages."""
import os
import subprocess
import sys

import numpy as np
import pytest

from paddlevideo.loader import decoders
from paddlevideo.loader.decoders import DecodeError, FrameFolderReader, open_video

BACKENDS = ["decord", "cv2", "pyav"]
TSM_IDX = {"example.avi": [8, 24, 40, 57, 73, 90, 106, 122],
           "demo.mp4": [17, 52, 87, 122, 157, 192, 227, 262]}


@pytest.mark.parametrize("name,count,size", [("example.avi", 131, (240, 320)),
                                             ("demo.mp4", 280, (256, 340))])
def test_real_videos_decoders_agree(videos_dir, name, count, size):
    path = os.path.join(videos_dir, name)
    got = {}
    for b in BACKENDS:
        r = open_video(path, b)
        assert r.num_frames == count, b
        got[b] = r.read(TSM_IDX[name])
        r.close()
        assert got[b].shape == (8,) + size + (3,) and got[b].dtype == np.uint8
    for b in ("cv2", "pyav"):
        assert np.abs(got[b].astype(int) - got["decord"]).mean() < 1.0, b


def test_real_video_random_access_matches_sequential(videos_dir):
    """Seeks (gaps over 48 frames, and going backwards) land on the same frames as reading forward."""
    path = os.path.join(videos_dir, "demo.mp4")
    want = [3, 200, 60, 279, 120]
    ref = open_video(path, "pyav").read(list(range(280)))[want]
    for b in BACKENDS:
        got = open_video(path, b).read(want)
        assert np.abs(got.astype(int) - ref).mean() < 1.0, b


@pytest.mark.parametrize("ext", [".mp4", ".avi", ".mkv", ".webm"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_containers(tmp_path, fab, ext, backend):
    frames = fab.level_frames(25, step=9)
    path = fab.write_video(str(tmp_path / f"v{ext}"), frames)
    r = open_video(path, backend)
    assert r.num_frames == 25
    want = [0, 7, 13, 24, 13]
    got = r.read(want)
    assert got.shape == (5, 48, 64, 3)
    levels = got[:, 30:, :, :].reshape(5, -1).mean(axis=1)      # below the white square
    nearest = np.abs(levels[:, None] - (10 + 9 * np.arange(25))[None, :]).argmin(axis=1)
    assert nearest.tolist() == want, levels


def test_missing_package_is_a_clear_error(monkeypatch, videos_dir):
    monkeypatch.setitem(decoders._PACKAGES, "decord", ("decord_is_not_installed", "decord"))
    with pytest.raises(ImportError, match="pip install decord"):
        open_video(os.path.join(videos_dir, "example.avi"), "decord")


def test_unknown_backend():
    with pytest.raises(ValueError, match="decord, cv2, pyav"):
        open_video("x.mp4", "ffmpeg")


def test_backends_are_imported_only_when_used():
    code = ("import sys, paddlevideo.loader; "
            "print(any(m in sys.modules for m in ('decord', 'av', 'paddle')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    assert out.stdout.strip() == "False", out.stderr


def test_out_of_range_indices(tmp_path, fab):
    path = fab.write_video(str(tmp_path / "v.avi"), fab.level_frames(5))
    with pytest.raises(DecodeError, match="outside"):
        open_video(path, "cv2").read([5])


def test_frame_folder_reader(tmp_path, fab):
    frames = fab.level_frames(4)
    fab.write_frames(str(tmp_path / "f"), frames, "x_{:03}.png", start=0)
    r = FrameFolderReader(str(tmp_path / "f"), 4, "x_{:03}.png", 0)
    assert np.array_equal(r.read([3, 0]), frames[[3, 0]])
