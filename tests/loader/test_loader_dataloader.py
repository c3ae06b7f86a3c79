"""DataLoader: batch format, dropped failures, seeding per epoch and sample, samplers, tracker."""
import numpy as np
import pytest

from paddlevideo.loader import (DistributedEvalBatchSampler, FailureTracker, TooManyBadFiles,
                                VideoDataset, build_dataloader)

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
    train = build_dataloader(ds, 2, shuffle=True, distributed=True, num_replicas=2, rank=1)
    import paddle
    assert isinstance(train.batch_sampler, paddle.io.DistributedBatchSampler)
    train.set_epoch(1)
    assert train.batch_sampler.epoch == 1


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
