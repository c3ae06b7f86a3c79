"""Sampler: TSM's segment rules, edge cases and multi-clip sampling."""
import numpy as np
import pytest

from paddlevideo.loader.decoders import DecodeError
from paddlevideo.loader.pipelines.sample import Sampler, segment_indices


def idx(n, seg=8, **kw):
    return segment_indices(n, seg, rng=np.random.default_rng(0), **kw).tolist()


def test_tsm_test_indices_match_paddlevideo_for_example_avi():
    assert idx(131) == [8, 24, 40, 57, 73, 90, 106, 122]


def test_test_indices_are_slice_centres_for_exact_multiples():
    assert idx(16) == [1, 3, 5, 7, 9, 11, 13, 15]
    assert idx(80) == [int(5 + 10 * i) for i in range(8)]


@pytest.mark.parametrize("n", [9, 16, 17, 131, 1000])
def test_train_indices_one_per_slice(n):
    dur = n // 8
    for seed in range(20):
        got = segment_indices(n, 8, train=True, rng=np.random.default_rng(seed))
        for i, v in enumerate(got):
            assert i * dur <= v < (i + 1) * dur
    draws = {tuple(segment_indices(n, 8, train=True, rng=np.random.default_rng(s)))
             for s in range(20)}
    assert len(draws) > 1 or dur == 1


def test_fewer_frames_than_segments():
    assert idx(5) == [0] * 8                              # TSM's rule: zeros when L <= T
    assert idx(5, train=True) == [0] * 8
    assert idx(8) == [0] * 8                              # test: zeros unless L > T
    assert idx(8, train=True) == list(range(8))           # train: one whole frame per slice


def test_between_one_and_two_frames_per_segment():
    assert idx(12, train=True) == list(range(8))         # int(12/8) = 1 frame per slice
    assert idx(12) == [int(0.75 + 1.5 * i) for i in range(8)]


def test_one_frame_video():
    assert idx(1) == [0] * 8 and idx(1, train=True) == [0] * 8


def test_no_frames_is_an_error():
    with pytest.raises(DecodeError):
        idx(0)


def test_train_sorted_random_when_no_whole_slice():
    # select_left with L < T never reaches this branch; L = 7 < 8 gives zeros, so use 4 segments
    got = segment_indices(6, 4, train=True, rng=np.random.default_rng(1)).tolist()
    assert got == sorted(got) and all(0 <= v < 6 for v in got)


def test_seg_len_consecutive_frames_tsn_rule():
    got = idx(64, seg=4, seg_len=3, select_left=False)
    assert got == [7, 8, 9, 23, 24, 25, 39, 40, 41, 55, 56, 57]
    tr = segment_indices(64, 4, seg_len=3, train=True, select_left=False,
                         rng=np.random.default_rng(3)).reshape(4, 3)
    assert (np.diff(tr, axis=1) == 1).all()
    assert all(16 * i <= tr[i, 0] <= 16 * i + 13 for i in range(4))


def test_indices_wrap_modulo_length():
    got = idx(3, seg=2, seg_len=4, select_left=False)
    assert max(got) < 3 and len(got) == 8


def test_multi_clip_test_sampling():
    one = idx(160, seg=8)
    two = idx(160, seg=8, num_clips=2)
    assert len(two) == 16
    assert two[:8] == [int(20 * 0.25 + 20 * i) for i in range(8)]
    assert two[8:] == [int(20 * 0.75 + 20 * i) for i in range(8)]
    assert one == [int(10 + 20 * i) for i in range(8)]


def test_dense_sampling():
    tr = segment_indices(300, 8, train=True, dense=True, rng=np.random.default_rng(0))
    assert (np.diff(tr) == 8).all() and tr[0] + 56 < 300
    te = segment_indices(300, 8, dense=True, num_clips=10).reshape(10, 8)
    assert te[0, 0] == 0 and te[-1, 0] == 300 - 64
    assert (np.diff(te, axis=1) == 8).all()
    short = segment_indices(20, 8, dense=True)            # shorter than the window: wraps
    assert short.tolist() == [(8 * i) % 20 for i in range(8)]


def test_sampler_op_reads_only_its_frames():
    class Reader:
        path, num_frames = "fake.mp4", 131

        def __init__(self):
            self.asked = None

        def read(self, indices):
            self.asked = list(indices)
            return np.zeros((len(indices), 4, 4, 3), np.uint8)

        def close(self):
            pass
    r = Reader()
    out = Sampler(8, valid_mode=True, select_left=True)({"reader": r, "frames_len": 131,
                                                          "rng": np.random.default_rng(0)})
    assert r.asked == [8, 24, 40, 57, 73, 90, 106, 122]
    assert out["imgs"].shape == (8, 4, 4, 3) and out["clip_len"] == 8 and "reader" not in out


def test_sampler_rejects_bad_parameters():
    with pytest.raises(ValueError):
        Sampler(0)
    with pytest.raises(ValueError):
        Sampler(8, frame_interval=2)
