"""DataLoader: batch format, dropped failures, seeding per epoch and sample, samplers, starting
mid-epoch without loading the skipped batches, workers ended with each pass, tracker."""
import glob
import os
import time

import numpy as np
import pytest

from paddlevideo.loader import (DistributedEvalBatchSampler, DistributedTrainBatchSampler,
                                FailureTracker, ShuffledBatchSampler, TooManyBadFiles,
                                VideoDataset, VideoLoader, build_dataloader)

TRAIN = {
    "decode": {"name": "VideoDecoder", "backend": "decord"},
    "sample": {"name": "Sampler", "num_seg": 4, "select_left": True},
    "transform": [{"MultiScaleCrop": {"target_size": 24, "allow_duplication": True}},
                  {"RandomFlip": None}, {"Image2Array": None},
                  {"Normalization": {"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}}],
}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    import importlib.util
    import os
    here = os.path.dirname(__file__)
    spec = importlib.util.spec_from_file_location("loader_conftest", os.path.join(here, "conftest.py"))
    helpers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(helpers)
    d = tmp_path_factory.mktemp("dl")
    for i in range(6):
        helpers.write_video(str(d / f"v{i}.avi"), helpers.level_frames(16 + i, w=40, h=32))
    (d / "bad.avi").write_text("not a video")
    (d / "bad2.avi").write_text("not a video either")
    lines = [f"v{i}.avi {i % 3}" for i in range(3)] + ["bad.avi 1"] + \
        [f"v{i}.avi {i % 3}" for i in range(3, 6)] + ["bad2.avi 2"]
    (d / "list.txt").write_text("\n".join(lines) + "\n")
    return d


def dataset(data, mode="train", pipe=TRAIN):
    return VideoDataset(str(data / "list.txt"), pipe, mode, data_prefix=str(data))


def collect(loader):
    out = []
    for imgs, labels, ids, failed in loader:
        out.append((imgs.numpy(), labels.numpy(), ids.numpy(), failed.numpy()))
    return out


def test_batches_format_and_failures(data):
    ds = dataset(data)
    loader = build_dataloader(ds, batch_size=4, num_workers=0, shuffle=False)
    assert len(loader) == 2
    batches = collect(loader)
    imgs, labels, ids, failed = batches[0]
    assert imgs.shape == (3, 4, 3, 24, 24) and imgs.dtype == np.float32
    assert labels.dtype == np.int64 and ids.tolist() == [0, 1, 2] and failed.tolist() == [3]
    assert labels.tolist() == [0, 1, 2]
    assert batches[1][2].tolist() == [4, 5, 6] and batches[1][3].tolist() == [7]


def test_all_failed_batch_is_empty_not_an_error(data):
    ds = dataset(data)
    sampler_batches = [[3, 7], [0]]

    class Fixed:
        def __iter__(self):
            return iter(sampler_batches)

        def __len__(self):
            return 2
    from paddlevideo.loader import VideoLoader
    for workers in (0, 2):
        b = collect(VideoLoader(ds, Fixed(), workers, 0))
        assert b[0][0].shape[0] == 0 and b[0][1].shape == (0,) and sorted(b[0][3]) == [3, 7]
        assert b[1][2].tolist() == [0] and b[1][3].shape == (0,)


def test_same_data_for_any_worker_count_and_on_resume(data):
    ds = dataset(data)
    runs = {}
    for workers in (0, 2):
        loader = build_dataloader(ds, 3, num_workers=workers, shuffle=True, seed=7)
        loader.set_epoch(2)
        runs[workers] = collect(loader)
    for a, b in zip(runs[0], runs[2]):
        for x, y in zip(a, b):
            assert np.array_equal(x, y)
    again = build_dataloader(ds, 3, num_workers=0, shuffle=True, seed=7)
    again.set_epoch(2)                      # a resumed run at epoch 2
    assert all(np.array_equal(x, y) for a, b in zip(collect(again), runs[0]) for x, y in zip(a, b))
    again.set_epoch(3)
    other = collect(again)
    assert any(not np.array_equal(a[2], b[2]) for a, b in zip(other, runs[0])) or \
        any(not np.array_equal(a[0], b[0]) for a, b in zip(other, runs[0]))


def test_distributed_eval_sampler_counts_every_sample_once():
    for n, w in [(10, 3), (2, 4), (9, 3)]:
        seen = []
        for r in range(w):
            s = DistributedEvalBatchSampler(n, 2, num_replicas=w, rank=r)
            batches = list(s)
            assert len(batches) == len(s)
            seen += [i for b in batches for i in b]
        assert sorted(seen) == list(range(n))


def test_distributed_loaders(data):
    ds = dataset(data, "test", dict(TRAIN, sample=dict(TRAIN["sample"], valid_mode=True)))
    ids = []
    for r in range(3):
        loader = build_dataloader(ds, 2, distributed=True, num_replicas=3, rank=r)
        for _, _, i, f in loader:
            ids += i.numpy().tolist() + f.numpy().tolist()
    assert sorted(ids) == list(range(len(ds)))
    train = build_dataloader(ds, 2, shuffle=True, distributed=True, num_replicas=2, rank=1, seed=5)
    assert isinstance(train.batch_sampler, DistributedTrainBatchSampler)
    train.set_epoch(1)
    assert (train.batch_sampler.epoch, train.batch_sampler.seed) == (1, 5)
    # an unshuffled training list is still split in equal shares, not as for evaluation
    plain = build_dataloader(ds, 2, distributed=True, num_replicas=2, rank=0, training=True)
    assert isinstance(plain.batch_sampler, DistributedTrainBatchSampler)


def shares(n, w, seed, epoch, drop_last=True, batch=2):
    out = []
    for r in range(w):
        s = DistributedTrainBatchSampler(n, batch, w, r, shuffle=True, drop_last=drop_last,
                                         seed=seed)
        s.set_epoch(epoch)
        batches = list(s)
        assert len(batches) == len(s)
        out.append([i for b in batches for i in b])
    return out


def test_distributed_train_sampler_order_is_the_seeds_and_shares_are_equal():
    # 11 samples over 3 ranks: 3 each with drop_last (2 wait), 4 each by wrapping round without
    a = shares(11, 3, seed=7, epoch=2, batch=1)
    assert [len(x) for x in a] == [3, 3, 3] and len(set(sum(a, []))) == 9
    order = np.random.default_rng([7, 2]).permutation(11)     # the same order on every rank
    assert [order[r:9:3].tolist() for r in range(3)] == a
    b = shares(11, 3, seed=7, epoch=2, drop_last=False, batch=1)
    assert [len(x) for x in b] == [4, 4, 4] and set(sum(b, [])) == set(range(11))
    assert shares(11, 3, seed=8, epoch=2) != shares(11, 3, seed=7, epoch=2)   # the seed decides
    assert shares(11, 3, seed=7, epoch=3) != shares(11, 3, seed=7, epoch=2)   # and the epoch


def test_starting_mid_epoch_skips_batches_in_the_sampler():
    for sampler in (ShuffledBatchSampler(10, 3, shuffle=True, seed=1),
                    DistributedTrainBatchSampler(20, 3, 2, 1, seed=1)):
        sampler.set_epoch(4)
        full = list(sampler)
        sampler.set_epoch(4, start_batch=2)
        assert list(sampler) == full[2:] and len(sampler) == len(full)
        with pytest.raises(ValueError, match="cannot start at batch"):
            sampler.set_epoch(4, start_batch=len(full) + 1)


class Counting:
    """A dataset of constant clips that records which samples were loaded (taking `delay`
    seconds for each)."""

    def __init__(self, n=12, delay=0.0):
        self.n, self.loaded, self.delay = n, [], delay

    def __len__(self):
        return self.n

    def load(self, i, rng):
        self.loaded.append(i)
        time.sleep(self.delay)
        return np.full((2, 3, 4, 4), i, np.float32), i % 3

    def path(self, i):
        return f"clip{i}"

    def failure_reason(self, i):
        return ""


def children():
    """Live child processes of this process (Linux)."""
    found = set()
    for path in glob.glob(f"/proc/{os.getpid()}/task/*/children"):
        try:
            with open(path) as f:
                found.update(f.read().split())
        except OSError:                 # a thread that ended meanwhile
            pass
    return found


def test_a_resumed_epoch_loads_only_the_batches_it_has_left():
    ds = Counting()
    loader = build_dataloader(ds, 4, shuffle=True, seed=3)
    loader.set_epoch(1)
    full = [ids.numpy().tolist() for _, _, ids, _ in loader]
    ds.loaded.clear()
    loader.set_epoch(1, start_batch=2)
    rest = [ids.numpy().tolist() for _, _, ids, _ in loader]
    assert rest == full[2:] and sorted(ds.loaded) == sorted(full[2][0:4])
    with pytest.raises(TypeError, match="cannot start in the middle"):
        VideoLoader(ds, [[0, 1]], 0, 0).set_epoch(0, start_batch=1)


def test_each_pass_ends_its_workers_however_it_stops():
    before = children()
    loader = build_dataloader(Counting(), 2, num_workers=2, shuffle=True)
    batches = iter(loader)
    next(batches)
    assert len(children() - before) == 2
    batches.close()                                   # stopped early (max_iters, a signal)
    assert children() == before
    for _ in loader:                                   # a for loop left by break
        break
    assert children() == before
    with iter(loader) as batches:                      # an error inside a with block
        with pytest.raises(RuntimeError):
            next(batches)
            raise RuntimeError
    assert children() == before
    assert len(list(loader)) == 6 and children() == before     # exhausted
    # closed after taking every batch but before asking for one more, as the training loop
    # does, when Paddle's reader waits on an empty queue (closing it in the wrong order hangs)
    for workers in (0, 2):
        loader = build_dataloader(Counting(n=4, delay=0.1), 2, num_workers=workers)
        batches = iter(loader)
        assert [int(next(batches)[0].shape[0]) for _ in range(len(loader))] == [2, 2]
        batches.close()
        assert children() == before


def test_failure_tracker(data):
    ds = dataset(data)
    t = FailureTracker(ds, max_bad_ratio=0.2)            # 8 samples: 1 allowed
    assert t.allowed == 1
    t.add([0, 1, 2], [3])
    t.check()
    t.add(np.array([4, 5, 6]), np.array([7]))
    with pytest.raises(TooManyBadFiles) as e:
        t.check()
    msg = str(e.value)
    assert "bad.avi" in msg and "bad2.avi" in msg and "max_bad_ratio" in msg
    assert "2 of 8" in t.report() and "bad2.avi" in t.report()
    assert FailureTracker(ds).report() == ""
    with pytest.raises(ValueError):
        FailureTracker(ds, 2)
