"""Fixtures for the loader tests: tiny fabricated videos, frame folders and lists in tmp dirs."""
import os
import subprocess
import sys

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VIDEOS = os.path.join(os.path.dirname(REPO), "shared", "videos")


def level_frames(n, w=64, h=48, step=7):
    """n RGB frames; frame i is flat grey at level 10 + step*i with a white square at x = 2*i.

    The level identifies the frame after lossy coding, so a decoder that returns the wrong frame
    is caught; the square's position shows the geometry."""
    frames = np.empty((n, h, w, 3), np.uint8)
    for i in range(n):
        frames[i] = min(10 + step * i, 250)
        x = (2 * i) % max(w - 8, 1)
        frames[i, 4:12, x:x + 8] = 255
    return frames


def write_video(path, frames, fps=10):
    """Write RGB frames; the container is chosen by the extension (.mp4 .avi .mkv .webm)."""
    ext = os.path.splitext(path)[1]
    if ext in (".mp4", ".avi"):
        import cv2
        fourcc = {".mp4": "mp4v", ".avi": "MJPG"}[ext]
        h, w = frames.shape[1:3]
        color = frames.ndim == 4
        vw = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*fourcc), fps, (w, h), color)
        assert vw.isOpened(), f"cannot write {path}"
        for f in frames:
            vw.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR) if color else f)
        vw.release()
    else:
        # PyAV's encoders can fail to open once decord (with its own FFmpeg) is loaded in the
        # process, so mkv/webm are written by a fresh interpreter.
        npy = path + ".npy"
        np.save(npy, frames)
        subprocess.run([sys.executable, "-c", _PYAV_WRITER, path, npy, str(fps)], check=True)
        os.remove(npy)
    return path


_PYAV_WRITER = """
import sys, av, numpy as np
path, npy, fps = sys.argv[1], sys.argv[2], int(sys.argv[3])
frames = np.load(npy)
codec = {"mkv": "mpeg4", "webm": "libvpx"}[path.rsplit(".", 1)[1]]
with av.open(path, "w") as c:
    s = c.add_stream(codec, rate=fps)
    s.width, s.height, s.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
    s.options = {"qscale": "2"} if codec == "mpeg4" else {"crf": "4", "b": "2M"}
    for f in frames:
        for p in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
            c.mux(p)
    for p in s.encode():
        c.mux(p)
"""


def write_frames(folder, frames, suffix="img_{:05}.jpg", start=1):
    import cv2
    os.makedirs(folder, exist_ok=True)
    for i, f in enumerate(frames):
        cv2.imwrite(os.path.join(folder, suffix.format(start + i)),
                    cv2.cvtColor(f, cv2.COLOR_RGB2BGR) if f.ndim == 3 else f)
    return folder


@pytest.fixture
def fab():
    """The fabrication helpers, as one object."""
    class Fab:
        pass
    f = Fab()
    f.level_frames, f.write_video, f.write_frames = level_frames, write_video, write_frames
    return f


@pytest.fixture
def videos_dir():
    """../shared/videos beside the checkout, or skip."""
    if not os.path.isdir(VIDEOS):
        pytest.skip(f"{VIDEOS} is absent: it holds the real test videos (example.avi, demo.mp4)")
    return VIDEOS


TSM_TEST = {
    "decode": {"name": "VideoDecoder", "backend": "decord"},
    "sample": {"name": "Sampler", "num_seg": 8, "seg_len": 1, "valid_mode": True, "select_left": True},
    "transform": [{"Scale": {"short_size": 256, "fixed_ratio": False}},
                  {"CenterCrop": {"target_size": 224}}, {"Image2Array": None},
                  {"Normalization": {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}}],
}


@pytest.fixture
def tsm_test_cfg():
    import copy
    return copy.deepcopy(TSM_TEST)
