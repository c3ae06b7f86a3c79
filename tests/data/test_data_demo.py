"""The demo generator: determinism, reversed twins, files that every decoder reads."""
import hashlib
import os

import numpy as np


def digest(folder):
    h = hashlib.sha256()
    for root, _, files in sorted(os.walk(folder)):
        for name in sorted(files):
            with open(os.path.join(root, name), "rb") as f:
                h.update(name.encode() + f.read())
    return h.hexdigest()


def small(tool, out, seed=0):
    return tool("make_demo").make_demo(str(out), seed=seed, per_class=2, val_per_class=1,
                                       test_per_class=0, size=32, frames=8, pairs=[0, 2], quiet=True)


def test_same_seed_same_bytes(tmp_path, tool):
    small(tool, tmp_path / "a")
    small(tool, tmp_path / "b")
    small(tool, tmp_path / "c", seed=1)
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    assert digest(tmp_path / "a") != digest(tmp_path / "c")


def test_outputs_lists_and_labels(tmp_path, tool):
    meta = small(tool, tmp_path / "d")
    d = tmp_path / "d"
    assert meta["classes"] == ["moving_left_to_right", "moving_right_to_left",
                               "rotating_clockwise", "rotating_counter_clockwise"]
    assert open(d / "label_list.txt").read().splitlines()[2] == "2 rotating_clockwise"
    train = open(d / "train.list").read().split("\n")[:-1]
    assert len(train) == 8 and sorted({int(x.split()[1]) for x in train}) == [0, 1, 2, 3]
    assert os.path.getsize(d / "test.list") == 0
    from paddlevideo.loader.decoders import open_video
    path = str(d / train[-1].split()[0])
    frames = {b: open_video(path, b).read(list(range(8))) for b in ("decord", "cv2", "pyav")}
    assert frames["decord"].shape == (8, 32, 32, 3)
    assert np.array_equal(frames["decord"], frames["cv2"])
    assert np.array_equal(frames["decord"], frames["pyav"])


def test_twins_are_the_same_frames_reversed(tool):
    demo = tool("make_demo")
    for label in range(0, 10, 2):
        fwd = demo.render_clip(label, np.random.default_rng([3, label]), 32, 8)
        rev = demo.render_clip(label + 1, np.random.default_rng([3, label]), 32, 8)
        assert np.array_equal(fwd[::-1], rev)
        assert not np.array_equal(fwd[0], fwd[-1])           # something changes over time


def test_default_size(tool):
    """Default frames are small (80 px, 32 frames), so the set is made in seconds (speed is
    measured in benchmarks/, not asserted here)."""
    demo = tool("make_demo")
    clip = demo.render_clip(6, np.random.default_rng(0), 80, 32)
    assert clip.shape == (32, 80, 80, 3) and clip.dtype == np.uint8
