"""build_dataset and build_dataloader: from a config to batches that report bad files."""
import functools
import math
import os
import random

import numpy as np

from ..utils.config import AttrDict, ConfigError
from .datasets.base import SampleError
from .guard import (GuardedSampler, LoadBug, describe_exception, die_with_parent,
                    guarded_collate, raise_if_failed)
from .registry import DATASETS

__all__ = ["build_dataset", "build_dataloader", "VideoLoader", "LoaderPass",
           "ShuffledBatchSampler", "DistributedTrainBatchSampler", "DistributedEvalBatchSampler",
           "collate_samples"]

MODES = ("train", "valid", "test")


def build_dataset(cfg, mode):
    """The dataset of `mode` ('train', 'valid' or 'test') from a whole config.

    Reads DATASET[mode] (format, file_path, data_prefix, ...) and PIPELINE[mode]. When the
    dataset section gives no num_classes, MODEL.head.num_classes (if any) bounds the labels.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}.")
    for section in ("DATASET", "PIPELINE"):
        if not isinstance(cfg.get(section), dict) or not isinstance(cfg[section].get(mode), dict):
            where = cfg.where(section) if isinstance(cfg, AttrDict) and section in cfg else "config"
            raise ConfigError(f"{where}: the config has no {section}.{mode} section; add one "
                              f"(see docs/data.md).")
    ds_cfg, pipe_cfg = cfg["DATASET"][mode], cfg["PIPELINE"][mode]
    extra = {}
    head = (cfg.get("MODEL") or {}).get("head") or {}
    if "num_classes" not in ds_cfg and isinstance(head, dict) and head.get("num_classes"):
        extra["num_classes"] = int(head["num_classes"])
    return DATASETS.build(ds_cfg, name_key="format", pipeline=pipe_cfg, mode=mode, **extra)


def _split_batches(order, batch_size, drop_last, start=0):
    """Consecutive batches of `order` (a list of indices), from batch number `start` on."""
    for begin in range(start * batch_size, len(order), batch_size):
        batch = order[begin:begin + batch_size]
        if len(batch) < batch_size and drop_last:
            return
        yield batch


def _check_start(start, batches):
    start = int(start)
    if not 0 <= start <= batches:
        raise ValueError(f"cannot start at batch {start}: an epoch has {batches} batches.")
    return start


class ShuffledBatchSampler:
    """Batches of indices, shuffled by a generator seeded from (seed, epoch): the same every run.

    `set_epoch(epoch, start_batch)` chooses the epoch and the first batch to yield, so a run
    resumed in the middle of an epoch skips the finished batches without loading them.
    """

    def __init__(self, num_samples, batch_size, shuffle=True, drop_last=False, seed=0):
        self.n, self.batch_size = int(num_samples), int(batch_size)
        self.shuffle, self.drop_last, self.seed, self.epoch = shuffle, drop_last, int(seed), 0
        self.start_batch = 0

    def set_epoch(self, epoch, start_batch=0):
        self.epoch = int(epoch)
        self.start_batch = _check_start(start_batch, len(self))

    def __iter__(self):
        order = _epoch_order(self.n, self.shuffle, self.seed, self.epoch)
        yield from _split_batches(order.tolist(), self.batch_size, self.drop_last, self.start_batch)

    def __len__(self):
        return self.n // self.batch_size if self.drop_last else math.ceil(self.n / self.batch_size)


def _epoch_order(n, shuffle, seed, epoch):
    """The sample order of an epoch: a permutation drawn from (seed, epoch), or 0..n-1."""
    return np.random.default_rng([seed, epoch]).permutation(n) if shuffle else np.arange(n)


def _world(num_replicas, rank):
    if num_replicas is None or rank is None:
        import paddle.distributed as dist
        num_replicas = dist.get_world_size() if num_replicas is None else num_replicas
        rank = dist.get_rank() if rank is None else rank
    if not 0 <= rank < num_replicas:
        raise ValueError(f"rank {rank} is outside 0..{num_replicas - 1}.")
    return int(num_replicas), int(rank)


class DistributedTrainBatchSampler:
    """Training batches of rank r of w: one order per epoch, drawn from (seed, epoch) and so the
    same on every rank, of which rank r takes the positions r, r + w, r + 2w, ...

    Every rank gets the same number of samples (a DataParallel step needs all ranks): with
    drop_last the last n mod w samples of the order wait for another epoch; without it the order
    wraps round to fill the last places (as paddle.io.DistributedBatchSampler pads). Unlike that
    sampler, whose order depends on the epoch alone, the configured seed decides the order.
    `set_epoch(epoch, start_batch)` as in ShuffledBatchSampler.
    """

    def __init__(self, num_samples, batch_size, num_replicas=None, rank=None, shuffle=True,
                 drop_last=True, seed=0):
        self.num_replicas, self.rank = _world(num_replicas, rank)
        self.n, self.batch_size = int(num_samples), int(batch_size)
        self.shuffle, self.drop_last, self.seed = bool(shuffle), bool(drop_last), int(seed)
        self.epoch, self.start_batch = 0, 0
        w = self.num_replicas
        self.per_rank = self.n // w if self.drop_last else math.ceil(self.n / w)

    def set_epoch(self, epoch, start_batch=0):
        self.epoch = int(epoch)
        self.start_batch = _check_start(start_batch, len(self))

    def __iter__(self):
        order = _epoch_order(self.n, self.shuffle, self.seed, self.epoch)
        used = self.per_rank * self.num_replicas
        if self.n:
            order = np.resize(order, used)          # drop the tail, or wrap round to fill
        mine = order[self.rank:used:self.num_replicas].tolist()
        yield from _split_batches(mine, self.batch_size, self.drop_last, self.start_batch)

    def __len__(self):
        if self.drop_last:
            return self.per_rank // self.batch_size
        return math.ceil(self.per_rank / self.batch_size)


class DistributedEvalBatchSampler:
    """Rank r of w takes samples r, r + w, r + 2w, ...: every sample counted exactly once overall.

    Unlike paddle.io.DistributedBatchSampler it never pads with repeated samples, so summed
    metrics over ranks equal the single-process ones. Ranks may get one batch more or less.
    """

    def __init__(self, num_samples, batch_size, num_replicas=None, rank=None):
        self.num_replicas, self.rank = _world(num_replicas, rank)
        self.n, self.batch_size, self.epoch = int(num_samples), int(batch_size), 0
        self.indices = list(range(self.rank, self.n, self.num_replicas))

    def set_epoch(self, epoch):
        self.epoch = int(epoch)

    def __iter__(self):
        for start in range(0, len(self.indices), self.batch_size):
            yield self.indices[start:start + self.batch_size]

    def __len__(self):
        return math.ceil(len(self.indices) / self.batch_size)


class _Samples:
    """The dataset as the workers see it: sample i -> (imgs, label, i), a failure marker (a
    SampleError: a bad file), or a LoadBug (any other exception, raised in the main thread)."""

    def __init__(self, dataset, seed):
        self.dataset, self.seed, self.epoch = dataset, int(seed), 0

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, i):
        rng = np.random.default_rng([self.seed, self.epoch, int(i)])
        try:
            imgs, label = self.dataset.load(int(i), rng)
        except SampleError:
            return None, -1, int(i)
        except Exception as e:          # noqa: BLE001  (see loader/guard.py)
            return LoadBug(i, describe_exception(e, f"loading sample {int(i)} ({_path_of(self.dataset, i)})"))
        return imgs, int(label), int(i)


def _path_of(dataset, i):
    try:
        return str(dataset.path(int(i)))
    except Exception:                   # noqa: BLE001  (only for the message)
        return "path unknown"


def _collate(batch):
    """collate_samples with an `error` array after it (loader/guard.py)."""
    return guarded_collate(collate_samples, batch)


def collate_samples(batch):
    """Samples -> [imgs, labels, ids, failed] numpy arrays that Paddle's worker queue can carry.

    The queue cannot carry zero-size arrays, and reading a count back from a tensor would make
    the host wait for the device every step. So sizes travel in shapes: `ids` and `failed` start
    with a -1 that VideoLoader strips (len(ids) - 1 samples loaded), and a batch in which every
    sample failed carries one dummy clip and label, which VideoLoader replaces by empty tensors.
    """
    ok = [s for s in batch if s[0] is not None]
    failed = [s[2] for s in batch if s[0] is None]
    if ok:
        imgs = np.stack([s[0] for s in ok])
        labels = np.array([s[1] for s in ok], dtype=np.int64)
    else:
        imgs = np.zeros((1, 1, 3, 1, 1), dtype=np.float32)
        labels = np.full((1,), -1, dtype=np.int64)
    ids = np.array([-1] + [s[2] for s in ok], dtype=np.int64)
    failed = np.array([-1] + failed, dtype=np.int64)
    return [imgs, labels, ids, failed]


def _worker_init(worker_id, parent):
    """Per-worker set-up: die with the training process `parent` (pid), however it ends; seed
    the global generators from (seed, epoch, worker).

    OpenCV's thread count is deliberately left alone: calling cv2.setNumThreads in a forked child
    after the parent used OpenCV's thread pool deadlocks.
    """
    die_with_parent(parent)
    import paddle.io
    info = paddle.io.get_worker_info()
    samples = info.dataset if info is not None else None
    seed = getattr(samples, "seed", 0)
    epoch = getattr(samples, "epoch", 0)
    ss = np.random.SeedSequence([seed, epoch, worker_id, 7])
    np.random.seed(ss.generate_state(1)[0])
    random.seed(int(ss.generate_state(1)[0]))


class VideoLoader:
    """Iterable batches `[imgs, labels, ids, failed]` as paddle Tensors (see build_dataloader).

    Each pass is a `LoaderPass` that ends its worker processes when it is exhausted, closed,
    left as a context manager, or dropped, so stopping early (max_iters, an error, a signal)
    leaves no workers behind.
    """

    def __init__(self, dataset, batch_sampler, num_workers, seed):
        import paddle
        self.dataset, self.batch_sampler = dataset, batch_sampler
        self.num_workers, self.seed = int(num_workers), int(seed)
        self._samples = _Samples(dataset, seed)
        self._paddle = paddle
        self._guard = GuardedSampler(batch_sampler)
        init = functools.partial(_worker_init, parent=os.getpid()) if self.num_workers else None
        self._loader = paddle.io.DataLoader(
            _PaddleDataset(self._samples), batch_sampler=self._guard, num_workers=self.num_workers,
            collate_fn=_collate, worker_init_fn=init, return_list=True,
            use_shared_memory=self.num_workers > 0)
        self._shape = None

    @property
    def epoch(self):
        return self._samples.epoch

    def set_epoch(self, epoch, start_batch=0):
        """Reseed shuffling and augmentation for `epoch` (call before iterating; resumes repeat
        it); the next pass starts at batch `start_batch` without loading the ones before."""
        self._samples.epoch = int(epoch)
        if start_batch:
            if not hasattr(self.batch_sampler, "start_batch"):
                raise TypeError(f"{type(self.batch_sampler).__name__} cannot start in the middle "
                                f"of an epoch; use ShuffledBatchSampler or "
                                f"DistributedTrainBatchSampler.")
            self.batch_sampler.set_epoch(int(epoch), int(start_batch))
        elif hasattr(self.batch_sampler, "set_epoch"):
            self.batch_sampler.set_epoch(int(epoch))

    def __len__(self):
        return len(self.batch_sampler)

    def __iter__(self):
        return LoaderPass(self)

    def _unpack(self, batch):
        paddle = self._paddle
        imgs, labels, ids, failed, error = batch
        raise_if_failed(error)
        ids, failed = ids[1:], failed[1:]           # strip collate_samples' leading -1
        if int(ids.shape[0]) == 0:
            shape = self._shape or [1, 3, 0, 0]
            imgs = paddle.zeros([0] + list(shape), dtype="float32")
            labels = paddle.zeros([0], dtype="int64")
        else:
            self._shape = list(imgs.shape[1:])
        return [imgs, labels, ids, failed]


class LoaderPass:
    """One pass over a VideoLoader: an iterator whose `close()` (also at exhaustion, on leaving
    a `with` block, or when it is dropped) shuts Paddle's iterator and its workers down at once.

    paddle.io.DataLoader's iterator keeps its workers until it is exhausted or garbage
    collected, and its feeding thread holds a reference to it, so a pass left unfinished would
    keep its worker processes alive for the rest of the run.
    """

    def __init__(self, loader):
        self._it = None
        self._loader = loader
        self._it = iter(loader._loader)

    def __iter__(self):
        return self

    def __next__(self):
        if self._it is None:
            raise StopIteration
        try:
            batch = next(self._it)
            return self._loader._unpack(batch)
        except BaseException as e:       # exhausted, a worker error, or an interrupt
            self.close()
            guard = self._loader._guard
            if guard.error is not None and not isinstance(e, KeyboardInterrupt):
                raise guard.error from None     # the sampler's, kept from Paddle's thread
            raise

    def close(self):
        it, self._it = self._it, None
        if it is not None:
            _shutdown(it)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        self.close()


def _shutdown(it, timeout=10.0):
    """End a Paddle DataLoader iterator now: its feeding thread and queue, its workers (waiting
    up to `timeout` seconds for each to finish its batch before terminating it), then its
    reader. The queue must close first: a reader waiting on an empty queue never returns."""
    workers = getattr(it, "_workers", None)
    if workers is None:
        it._try_shutdown_all()
    else:
        it._try_shutdown_all(timeout)
        for worker in workers:
            if worker.is_alive():
                worker.terminate()
                worker.join(timeout)
    reader = getattr(it, "_reader", None)
    if reader is not None:
        reader.shutdown()


def _paddle_dataset_class():
    import paddle

    class PaddleDataset(paddle.io.Dataset):
        def __init__(self, samples):
            super().__init__()
            self.samples = samples
            self.seed = samples.seed

        @property
        def epoch(self):
            return self.samples.epoch

        def __len__(self):
            return len(self.samples)

        def __getitem__(self, i):
            return self.samples[i]
    return PaddleDataset


def _PaddleDataset(samples):
    return _paddle_dataset_class()(samples)


def build_dataloader(dataset, batch_size, num_workers=0, shuffle=False, drop_last=False, seed=0,
                     distributed=False, num_replicas=None, rank=None, training=None):
    """A loader of `[imgs, labels, ids, failed]` batches with per-epoch, per-sample seeding.

    imgs float32 [B, V*T, 3, H, W]; labels and ids (dataset indices) int64 [B]; failed int64 [F]:
    indices of this batch's samples that failed to load and were dropped (B may be 0). Random
    choices depend only on (seed, epoch, sample index), never on the worker count or order, so a
    resumed run that calls `set_epoch(epoch)` sees exactly the same data. `distributed=True`
    gives each rank its share: DistributedTrainBatchSampler for training (`training`, by
    default `shuffle`: the seed's order, equal shares) and DistributedEvalBatchSampler otherwise
    (every sample once across ranks, no padding).
    """
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}.")
    training = shuffle if training is None else training
    if distributed and training:
        sampler = DistributedTrainBatchSampler(len(dataset), batch_size, num_replicas, rank,
                                               shuffle, drop_last, seed)
    elif distributed:
        sampler = DistributedEvalBatchSampler(len(dataset), batch_size, num_replicas, rank)
    else:
        sampler = ShuffledBatchSampler(len(dataset), batch_size, shuffle, drop_last, seed)
    return VideoLoader(dataset, sampler, num_workers, seed)
