"""Glue shared by training and testing: device and process set-up, data, the evaluation loop."""
import logging
import os
import time

import numpy as np
import paddle
import paddle.distributed as dist

from ..utils.config import AttrDict, ConfigError
from ..utils.logger import format_batch_line
from ..utils.progress import STEP_LINE, progress_bar
from ..utils.env import cpu_threads

__all__ = ["TaskError", "setup_device", "world", "output_dir_of", "dataset_section",
           "make_loader", "evaluate", "describe_threads", "views_of"]

logger = logging.getLogger("paddlevideo")


class TaskError(RuntimeError):
    """A run that cannot go on; the message says why and what to do (no traceback needed)."""


def setup_device():
    """'gpu:N' when Paddle has CUDA and a GPU is visible, else 'cpu'; returns the device string."""
    if paddle.device.is_compiled_with_cuda() and paddle.device.cuda.device_count() > 0:
        # the launcher gives each process its GPU in FLAGS_selected_gpus (`--gpus 2,3` -> "2"
        # for rank 0); without it, the local rank picks one
        selected = os.environ.get("FLAGS_selected_gpus", "").split(",")[0]
        local = int(selected) if selected.isdigit() else int(os.environ.get("PADDLE_LOCAL_RANK", 0))
        device = f"gpu:{local % paddle.device.cuda.device_count()}"
    else:
        device = "cpu"
    paddle.set_device(device)
    return device


def world():
    """(rank, world_size), initialising the process group when started by the launcher."""
    size = dist.get_world_size()
    if size > 1 and not dist.is_initialized():
        dist.init_parallel_env()
    return dist.get_rank(), size


def describe_threads(device):
    threads, how = cpu_threads()
    if device == "cpu":
        return f"device: CPU, {threads} math thread(s) per process ({how})"
    return f"device: {device.upper()}, {threads} CPU thread(s) per process ({how})"


def output_dir_of(cfg):
    """cfg.output_dir, or output/<model_name> (PaddleVideo's default)."""
    return cfg.get("output_dir") or os.path.join("output", str(cfg.get("model_name", "model")))


def dataset_section(cfg):
    dataset = cfg.get("DATASET")
    if not isinstance(dataset, dict):
        raise ConfigError("the config has no DATASET section (batch_size, num_workers, train, "
                          "valid, test); see configs/recognition/tsm/tsm_k400_videos.yaml.")
    return dataset


def max_bad_ratio(cfg):
    """The share of a data set's videos that may fail to load before a run stops (training) or
    a test refuses to score the rest: DATASET.max_bad_ratio, else the top-level max_bad_ratio,
    else the loader's default."""
    return dataset_section(cfg).get("max_bad_ratio", cfg.get("max_bad_ratio"))


def make_loader(cfg, mode, seed=0, distributed=False):
    """(dataset, loader) for 'train', 'valid' or 'test' with PaddleVideo's batch/worker keys.

    valid/test use `<mode>_batch_size` and `<mode>_num_workers` when set, else the training ones.
    """
    from ..loader import build_dataloader, build_dataset
    section = dataset_section(cfg)
    dataset = build_dataset(cfg, mode)
    if "batch_size" not in section:
        where = section.where() if isinstance(section, AttrDict) else "DATASET"
        raise ConfigError(f"{where}: DATASET needs batch_size (clips per GPU or process).")
    batch = section.get(f"{mode}_batch_size", section["batch_size"]) if mode != "train" \
        else section["batch_size"]
    workers = section.get(f"{mode}_num_workers", section.get("num_workers", 0)) if mode != "train" \
        else section.get("num_workers", 0)
    train = mode == "train"
    loader = build_dataloader(dataset, batch, workers,
                              shuffle=section.get("shuffle", True) if train else False,
                              drop_last=section.get("drop_last", True) if train else False,
                              seed=seed, distributed=distributed)
    return dataset, loader


def views_of(dataset):
    """(clips, crops) per video from the dataset's pipeline, or (num_views, 1)."""
    pipeline = getattr(dataset, "pipeline", None)
    if pipeline is not None and hasattr(pipeline, "num_clips") and hasattr(pipeline, "num_crops"):
        return int(pipeline.num_clips), int(pipeline.num_crops)
    return int(getattr(dataset, "num_views", 1)), 1


def _size(x):
    return int(x.shape[0])


def evaluate(run, loader, metric, tracker=None, mode="test", log_interval=20, epoch=None,
             epochs=None, loss_meter=None):
    """Run `run(imgs) -> probs [B, K]` over `loader`, feeding `metric`; log progress.

    Failed samples go to `tracker` and `metric.add_failed`, never into the scores. With a
    `loss_meter`, `run` returns (probs, log_probs) and `loss_meter.update(log_probs, labels)`
    sees every batch. Returns the (first batch's) sample shape [V*T, 3, H, W], or None if no
    sample loaded. (A VideoLoader pass ends its workers however this loop ends.)
    """
    total = len(loader)
    shape = None
    tic = time.time()
    start = tic
    done = 0
    bar = progress_bar(loader, "test" if mode == "test" else f"epoch {epoch} {mode}")
    for step, (imgs, labels, ids, failed) in enumerate(bar.wrap(loader)):
        reader_cost = time.time() - tic
        if tracker is not None:
            tracker.add(ids, failed)
        if _size(failed):
            metric.add_failed(failed.numpy())
        n = _size(imgs)
        if n:
            if shape is None:
                shape = list(imgs.shape[1:])
            probs = run(imgs)
            if loss_meter is not None:
                probs, log_probs = probs
                loss_meter.update(log_probs, labels.numpy())
            metric.update(ids.numpy(), np.asarray(probs), labels.numpy())
            done += n
        batch_cost = time.time() - tic
        bar.update(n + _size(failed))
        if step % log_interval == 0 or step == total - 1:
            elapsed = time.time() - start
            eta = elapsed / (step + 1) * (total - step - 1)
            ips = n / batch_cost if batch_cost > 0 else 0.0
            if mode == "test":
                logger.info(f"[TEST] step:{step + 1:>5d}/{total:<5d} videos: {done} "
                            f"batch_cost: {batch_cost:.5f} sec, reader_cost: {reader_cost:.5f} sec, "
                            f"ips: {ips:.5f} instance/sec, eta: {_eta(eta)}",
                            extra=STEP_LINE)
            else:
                logger.info(format_batch_line(epoch, epochs, mode, step, [], batch_cost,
                                              reader_cost, ips, eta), extra=STEP_LINE)
        tic = time.time()
    return shape


def _eta(seconds):
    import datetime
    return str(datetime.timedelta(seconds=int(seconds)))
