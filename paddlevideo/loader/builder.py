"""build_dataset and build_dataloader: from a config to batches that report bad files."""
import math
import random

import numpy as np

from ..utils.config import AttrDict, ConfigError
from .datasets.base import SampleError
from .registry import DATASETS

__all__ = ["build_dataset", "build_dataloader", "VideoLoader", "ShuffledBatchSampler",
           "DistributedEvalBatchSampler", "collate_samples"]

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


class ShuffledBatchSampler:
    """Batches of indices, shuffled by a generator seeded from (seed, epoch): the same every run."""

    def __init__(self, num_samples, batch_size, shuffle=True, drop_last=False, seed=0):
        self.n, self.batch_size = int(num_samples), int(batch_size)
        self.shuffle, self.drop_last, self.seed, self.epoch = shuffle, drop_last, int(seed), 0

    def set_epoch(self, epoch):
        self.epoch = int(epoch)

    def __iter__(self):
        order = (np.random.default_rng([self.seed, self.epoch]).permutation(self.n)
                 if self.shuffle else np.arange(self.n))
        for start in range(0, self.n, self.batch_size):
            batch = order[start:start + self.batch_size].tolist()
            if len(batch) < self.batch_size and self.drop_last:
                return
            yield batch

    def __len__(self):
        return self.n // self.batch_size if self.drop_last else math.ceil(self.n / self.batch_size)


class DistributedEvalBatchSampler:
    """Rank r of w takes samples r, r + w, r + 2w, ...: every sample counted exactly once overall.

    Unlike paddle.io.DistributedBatchSampler it never pads with repeated samples, so summed
    metrics over ranks equal the single-process ones. Ranks may get one batch more or less.
    """

    def __init__(self, num_samples, batch_size, num_replicas=None, rank=None):
        if num_replicas is None or rank is None:
            import paddle.distributed as dist
            num_replicas = dist.get_world_size() if num_replicas is None else num_replicas
            rank = dist.get_rank() if rank is None else rank
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} is outside 0..{num_replicas - 1}.")
        self.n, self.batch_size = int(num_samples), int(batch_size)
        self.num_replicas, self.rank, self.epoch = int(num_replicas), int(rank), 0
        self.indices = list(range(self.rank, self.n, self.num_replicas))

    def set_epoch(self, epoch):
        self.epoch = int(epoch)

    def __iter__(self):
        for start in range(0, len(self.indices), self.batch_size):
            yield self.indices[start:start + self.batch_size]

    def __len__(self):
        return math.ceil(len(self.indices) / self.batch_size)


class _Samples:
    """The dataset as the workers see it: sample i -> (imgs, label, i) or a failure marker."""

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
        return imgs, int(label), int(i)


def collate_samples(batch):
    """Samples -> [imgs, labels, ids, failed, n_ok] numpy arrays, padded so none is empty.

    Paddle's worker queue cannot carry zero-size arrays, so an empty batch travels as one dummy
    sample and `failed` is padded with -1; VideoLoader trims both in the main process.
    """
    ok = [s for s in batch if s[0] is not None]
    failed = [s[2] for s in batch if s[0] is None]
    if ok:
        imgs = np.stack([s[0] for s in ok])
        labels = np.array([s[1] for s in ok], dtype=np.int64)
        ids = np.array([s[2] for s in ok], dtype=np.int64)
    else:
        imgs = np.zeros((1, 1, 3, 1, 1), dtype=np.float32)
        labels = ids = np.full((1,), -1, dtype=np.int64)
    failed = np.array(failed or [-1], dtype=np.int64)
    return [imgs, labels, ids, failed, np.array([len(ok)], dtype=np.int64)]


def _worker_init(worker_id):
    """Per-worker set-up: seed the global generators from (seed, epoch, worker).

    OpenCV's thread count is deliberately left alone: calling cv2.setNumThreads in a forked child
    after the parent used OpenCV's thread pool deadlocks.
    """
    import paddle.io
    info = paddle.io.get_worker_info()
    samples = info.dataset if info is not None else None
    seed = getattr(samples, "seed", 0)
    epoch = getattr(samples, "epoch", 0)
    ss = np.random.SeedSequence([seed, epoch, worker_id, 7])
    np.random.seed(ss.generate_state(1)[0])
    random.seed(int(ss.generate_state(1)[0]))


class VideoLoader:
    """Iterable batches `[imgs, labels, ids, failed]` as paddle Tensors (see build_dataloader)."""

    def __init__(self, dataset, batch_sampler, num_workers, seed):
        import paddle
        self.dataset, self.batch_sampler = dataset, batch_sampler
        self.num_workers, self.seed = int(num_workers), int(seed)
        self._samples = _Samples(dataset, seed)
        self._paddle = paddle
        self._loader = paddle.io.DataLoader(
            _PaddleDataset(self._samples), batch_sampler=batch_sampler, num_workers=self.num_workers,
            collate_fn=collate_samples, worker_init_fn=_worker_init if self.num_workers else None,
            return_list=True, use_shared_memory=self.num_workers > 0)
        self._shape = None

    @property
    def epoch(self):
        return self._samples.epoch

    def set_epoch(self, epoch):
        """Reseed shuffling and augmentation for `epoch` (call before iterating; resumes repeat it)."""
        self._samples.epoch = int(epoch)
        if hasattr(self.batch_sampler, "set_epoch"):
            self.batch_sampler.set_epoch(int(epoch))

    def __len__(self):
        return len(self.batch_sampler)

    def __iter__(self):
        paddle = self._paddle
        for imgs, labels, ids, failed, n_ok in self._loader:
            n = int(n_ok.numpy().reshape(-1)[0])
            if n == 0:
                shape = self._shape or [1, 3, 0, 0]
                imgs = paddle.zeros([0] + list(shape), dtype="float32")
                labels = paddle.zeros([0], dtype="int64")
                ids = paddle.zeros([0], dtype="int64")
            else:
                self._shape = list(imgs.shape[1:])
            if int(failed.shape[0]) == 1 and int(failed.numpy()[0]) < 0:
                failed = paddle.zeros([0], dtype="int64")
            yield [imgs, labels, ids, failed]


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
                     distributed=False, num_replicas=None, rank=None):
    """A loader of `[imgs, labels, ids, failed]` batches with per-epoch, per-sample seeding.

    imgs float32 [B, V*T, 3, H, W]; labels and ids (dataset indices) int64 [B]; failed int64 [F]:
    indices of this batch's samples that failed to load and were dropped (B may be 0). Random
    choices depend only on (seed, epoch, sample index), never on the worker count or order, so a
    resumed run that calls `set_epoch(epoch)` sees exactly the same data. `distributed=True` uses
    paddle.io.DistributedBatchSampler when shuffling (training) and DistributedEvalBatchSampler
    otherwise (every sample once across ranks, no padding).
    """
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}.")
    if distributed:
        if shuffle:
            import paddle.io
            kwargs = {}
            if num_replicas is not None:
                kwargs.update(num_replicas=num_replicas, rank=rank)
            sampler = paddle.io.DistributedBatchSampler(dataset, batch_size=int(batch_size),
                                                        shuffle=True, drop_last=drop_last, **kwargs)
        else:
            sampler = DistributedEvalBatchSampler(len(dataset), batch_size, num_replicas, rank)
    else:
        sampler = ShuffledBatchSampler(len(dataset), batch_size, shuffle, drop_last, seed)
    return VideoLoader(dataset, sampler, num_workers, seed)
