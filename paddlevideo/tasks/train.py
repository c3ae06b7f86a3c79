"""`main.py` training: the loop, validation, checkpoints, resume, signals, AMP, data parallelism.

Guarantees:
- Deterministic given the seed: shuffling and augmentation are seeded by (seed, epoch, sample)
  in the loader, and Paddle's generator is reseeded from (seed, rank, epoch, step) before every
  step (dropout). A run resumed from any checkpoint therefore ends with the same parameters as
  an uninterrupted one.
- Never loses work: checkpoints are written atomically; SIGINT/SIGTERM stop the run at the next
  step boundary and write a resumable `<model>_epoch_E_step_S` checkpoint; a NaN/Inf loss stops
  the run before the bad update, leaving every checkpoint as it was.
- One process per GPU (or several CPU processes) through `paddle.distributed.launch`: rank 0
  alone logs and saves, validation counts every video once.
"""
import logging
import math
import random
import signal
import time

import numpy as np
import paddle
import paddle.distributed as dist

from ..metrics import build_metric
from ..modeling import build_model, load_weights
from ..solver import build_optimizer
from ..utils.checkpoint import (checkpoint_prefix, latest_checkpoint, load_checkpoint,
                                portable_optimizer_state, restore_optimizer_state,
                                save_checkpoint)
from ..utils.config import AttrDict, ConfigError
from ..utils.logger import (AverageMeter, VisualDLWriter, format_batch_line, format_epoch_line,
                            setup_logger)
from .common import (TaskError, dataset_section, describe_threads, evaluate, make_loader,
                     output_dir_of, setup_device, world)
from .runner import DygraphRunner

__all__ = ["train_model", "TrainingDiverged", "TrainingInterrupted", "step_seed"]

logger = logging.getLogger("paddlevideo")


class TrainingDiverged(TaskError):
    """The loss became NaN or Inf."""


class TrainingInterrupted(TaskError):
    """SIGINT/SIGTERM stopped the run after a resumable checkpoint was written."""

    def __init__(self, message, signum):
        super().__init__(message)
        self.signum = signum


def step_seed(seed, rank, epoch, step):
    """The Paddle seed of one training step: a function of where the step is, nothing else."""
    return (((int(seed) * 1_000_003 + int(rank)) * 100_003 + int(epoch)) * 100_003 + int(step)) % (2 ** 31 - 1)


class _StopFlag:
    """Records SIGINT/SIGTERM so the loop can stop between steps; a second signal kills at once."""

    def __init__(self):
        self.signum = None
        self._previous = {}

    def install(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._previous[sig] = signal.signal(sig, self._handle)
            except ValueError:          # not the main thread (e.g. in a notebook worker)
                pass

    def _handle(self, signum, frame):
        if self.signum is not None:     # asked twice: give up waiting for the step to end
            self.restore()
            raise KeyboardInterrupt
        self.signum = signum
        logger.warning("received %s: finishing this step, then saving a resumable checkpoint "
                       "(send it again to stop at once, losing the current epoch's progress).",
                       signal.Signals(signum).name)

    def restore(self):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}


def _amp_settings(cfg, amp, amp_level, amp_dtype, device):
    """(enabled, level, dtype) from flags and config; refuses what the device cannot do."""
    enabled = bool(amp or cfg.get("amp", False))
    if not enabled:
        return False, None, None
    level = amp_level or cfg.get("amp_level") or "O1"
    if level not in ("O1", "O2"):
        raise ConfigError(f"amp_level must be O1 or O2, got {level!r}.")
    dtype = amp_dtype or cfg.get("amp_dtype") or "float16"
    if dtype not in ("float16", "bfloat16"):
        raise ConfigError(f"amp_dtype must be float16 or bfloat16, got {dtype!r}.")
    if device == "cpu":
        # Paddle's auto_cast only acts on GPU/XPU places: on CPU it would train in float32
        # while the log claimed AMP. Refuse instead of pretending.
        raise ConfigError(f"--amp ({level}, {dtype}) needs a GPU: Paddle's automatic mixed "
                          f"precision has no effect on CPU, so the run would silently stay in "
                          f"float32. Train without --amp (and amp: False) on CPU.")
    return True, level, dtype


def _sync_flags(values):
    """Max over ranks of a few integer flags (one all_reduce); identity in a single process."""
    if dist.get_world_size() <= 1:
        return values
    tensor = paddle.to_tensor(np.asarray(values, dtype=np.int64))
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return [int(v) for v in tensor.numpy()]


def average_norm_statistics(model):
    """Average the BatchNorm running statistics over ranks (one all_reduce per tensor).

    DataParallel keeps the trainable parameters equal on every rank, but each rank's BatchNorm
    tracks the mean and variance of its own batches. Averaging them at the end of each epoch
    makes every rank hold the same model, and the saved one reflects all the data.
    """
    world_size = dist.get_world_size()
    if world_size <= 1:
        return
    for _, layer in model.named_sublayers(include_self=True):
        if isinstance(layer, paddle.nn.layer.norm._BatchNormBase):
            for buffer in (layer._mean, layer._variance):
                total = buffer.clone()
                dist.all_reduce(total)
                buffer.set_value(total / world_size)


def _model_state(model):
    return model.state_dict()


def train_model(cfg, weights=None, validate=False, amp=False, amp_level=None, amp_dtype=None,
                max_iters=None, seed=None, resume=False, output_dir=None):
    """Train the config's model; return {'best_top1', 'epochs_done', 'output_dir', 'last' (the
    last checkpoint's prefix), 'model' (the trained layer), 'step_times' ((clips, batch_cost,
    reader_cost) per step of the last epoch)}.

    weights: initialise from these (fine-tuning; a head of another class count is skipped).
    resume: continue from the furthest checkpoint in output_dir (else `resume_epoch: K`).
    max_iters: at most this many steps per epoch (quick trials and benchmarks).
    """
    device = setup_device()
    rank, world_size = world()
    out = output_dir or output_dir_of(cfg)
    model_name = str(cfg.get("model_name", "model"))
    setup_logger(out, rank, cfg.get("log_level", "INFO"), filename="train.log")
    seed = int(seed if seed is not None else cfg.get("seed", 1234))
    random.seed(seed)
    np.random.seed(seed)
    paddle.seed(seed)

    if "epochs" not in cfg:
        raise ConfigError(f"{cfg.where() if isinstance(cfg, AttrDict) else 'config'}: the config "
                          f"needs 'epochs' at the top level to train.")
    epochs = int(cfg["epochs"])
    log_interval = max(1, int(cfg.get("log_interval", 20)))
    save_interval = max(1, int(cfg.get("save_interval", 1)))
    val_interval = max(1, int(cfg.get("val_interval", 1)))
    section = dataset_section(cfg)
    max_bad = section.get("max_bad_ratio", cfg.get("max_bad_ratio"))

    from ..loader import FailureTracker, TooManyBadFiles
    train_ds, train_loader = make_loader(cfg, "train", seed, distributed=world_size > 1)
    tracker = FailureTracker(train_ds, max_bad, mode="train")
    valid = None
    if validate:
        valid_ds, valid_loader = make_loader(cfg, "valid", seed, distributed=world_size > 1)
        valid = (valid_ds, valid_loader)

    model = build_model(cfg.MODEL)
    if weights:
        load_weights(model, weights)
    if cfg.get("sync_bn"):
        if device == "cpu":
            raise ConfigError("sync_bn: True needs GPUs (SyncBatchNorm has no CPU kernel); set "
                              "sync_bn: False for CPU training.")
        if world_size > 1:
            model = paddle.nn.SyncBatchNorm.convert_sync_batchnorm(model)

    steps = len(train_loader)
    if max_iters:
        steps = min(steps, int(max_iters))
    optimizer, schedule = build_optimizer(cfg.get("OPTIMIZER"), model, steps, epochs)
    use_amp, level, dtype = _amp_settings(cfg, amp, amp_level, amp_dtype, device)
    scaler = None
    if use_amp:
        if level == "O2":
            model, optimizer = paddle.amp.decorate(models=model, optimizers=optimizer, level="O2",
                                                   dtype=dtype, master_weight=True,
                                                   save_dtype="float32")
        scaler = paddle.amp.GradScaler(enable=dtype == "float16", init_loss_scaling=2.0 ** 15)

    # ----- resume --------------------------------------------------------------------------
    start_epoch, skip, best = 0, 0, -1.0
    prefix = None
    if resume:
        prefix = latest_checkpoint(out, model_name)
        if prefix is None:
            logger.warning(f"--resume: no checkpoint of {model_name} in {out}; starting from "
                           f"the beginning.")
    elif cfg.get("resume_epoch"):
        prefix = checkpoint_prefix(out, model_name, int(cfg["resume_epoch"]))
    if prefix is not None:
        params, opt_state, meta = load_checkpoint(prefix)
        model.set_state_dict(params)
        restore_optimizer_state(optimizer, model, opt_state)
        start_epoch = int(meta.get("epochs_done", cfg.get("resume_epoch") or 0))
        skip = int(meta.get("step", 0))
        best = float(meta.get("best_top1", -1.0))
        if meta.get("steps_per_epoch") not in (None, steps):
            logger.warning(f"the checkpoint was written with {meta['steps_per_epoch']} steps per "
                           f"epoch, this run has {steps} (another batch size, data list or "
                           f"number of processes); the schedule continues from the same epoch.")
        logger.info(f"resumed from {prefix}: {start_epoch} epochs done"
                    + (f", {skip} steps into epoch {start_epoch + 1}" if skip else ""))
    # the schedule's position is the number of steps done, whatever wrote the checkpoint
    schedule.last_epoch = start_epoch * steps + skip - 1
    schedule.step()

    net = paddle.DataParallel(model) if world_size > 1 else model
    batch_size = int(section["batch_size"])
    logger.info(f"{describe_threads(device)}; {world_size} process(es), {batch_size} clips each "
                f"= global batch {batch_size * world_size}; {len(train_ds)} training videos, "
                f"{steps} steps per epoch; seed {seed}"
                + (f"; AMP {level} {dtype}" if use_amp else ""))
    vdl = VisualDLWriter(out, enabled=rank == 0)
    stop = _StopFlag()
    stop.install()
    global_step = start_epoch * steps + skip
    last_saved = prefix

    def save(epochs_done, step=0):
        nonlocal last_saved
        if rank != 0:
            return None
        meta = {"epochs_done": epochs_done, "step": step, "best_top1": best, "seed": seed,
                "steps_per_epoch": steps, "model_name": model_name}
        target = checkpoint_prefix(out, model_name, epochs_done + 1 if step else epochs_done, step)
        save_checkpoint(target, _model_state(model), portable_optimizer_state(optimizer, model), meta)
        last_saved = target
        return target

    def interrupted(epoch, step_done):
        name = signal.Signals(stop.signum).name
        target = save(epoch, step_done) if step_done else save(epoch)
        where = target or "rank 0's checkpoint"
        raise TrainingInterrupted(
            f"training stopped by {name} after {epoch} epochs and {step_done} steps; saved "
            f"{where}. Continue with the same command plus --resume.", stop.signum)

    try:
        for epoch in range(start_epoch, epochs):
            train_loader.set_epoch(epoch)
            net.train()
            meters = [AverageMeter("loss"), AverageMeter("lr", ".6f"), AverageMeter("top1"),
                      AverageMeter("top5")]
            batch_meter, reader_meter = AverageMeter("batch_cost"), AverageMeter("reader_cost")
            samples = 0
            step_times = []        # (clips, batch_cost, reader_cost) of this epoch, for benchmarks
            done = skip
            if skip:
                logger.info(f"skipping the {skip} steps of epoch {epoch + 1} done before the "
                            f"interruption")
            iterator = iter(train_loader)
            epoch_start = time.time()
            tic = time.time()
            for step in range(steps):
                try:
                    imgs, labels, ids, failed = next(iterator)
                except StopIteration:
                    break
                except Exception:
                    if stop.signum is not None:     # workers killed by the same Ctrl-C
                        interrupted(epoch, done)
                    raise
                if step < skip:
                    tic = time.time()
                    continue
                reader_cost = time.time() - tic
                tracker.add(ids, failed)
                try:
                    tracker.check()
                except TooManyBadFiles as e:
                    raise TaskError(str(e)) from None
                n = int(imgs.shape[0])
                empty, stopping = _sync_flags([int(n == 0), int(stop.signum is not None)])
                if stopping:
                    if stop.signum is None:
                        stop.signum = signal.SIGTERM    # another rank was told to stop
                    interrupted(epoch, done)
                if empty:          # every sample of a batch failed on some rank: skip the step
                    schedule.step()
                    done += 1
                    global_step += 1
                    tic = time.time()
                    continue
                paddle.seed(step_seed(seed, rank, epoch, step))
                if use_amp:
                    with paddle.amp.auto_cast(level=level, dtype=dtype):
                        outputs = model.head.loss(net(imgs), labels)
                else:
                    outputs = model.head.loss(net(imgs), labels)
                loss = outputs["loss"].astype("float32")
                loss_value = float(loss)
                (bad,) = _sync_flags([int(not math.isfinite(loss_value))])
                if bad:
                    raise TrainingDiverged(
                        f"the loss became {loss_value} at epoch {epoch + 1}, step {step} (on some "
                        f"rank if this one is finite); the run stopped before this update. The last "
                        f"good checkpoint is {last_saved or 'none (nothing was saved yet)'} and was "
                        f"not touched. Lower the learning rate, check OPTIMIZER.grad_clip, or "
                        f"with AMP float16 try bfloat16; then resume with --resume.")
                if scaler is not None and scaler._enable:
                    scaled = scaler.scale(loss)
                    scaled.backward()
                    scaler.step(optimizer)
                    scaler.update()
                else:
                    loss.backward()
                    optimizer.step()
                optimizer.clear_grad()
                lr_now = schedule.get_lr()
                schedule.step()
                done += 1
                global_step += 1
                samples += n
                for meter, value in zip(meters, (loss_value, lr_now, outputs["top1"],
                                                 outputs["top5"])):
                    meter.update(float(value), n)
                batch_cost = time.time() - tic
                batch_meter.update(batch_cost)
                reader_meter.update(reader_cost)
                step_times.append((n, batch_cost, reader_cost))
                ips = n / batch_cost if batch_cost > 0 else 0.0
                if step % log_interval == 0 or step == steps - 1:
                    left = (epochs - epoch) * steps - step - 1
                    eta = batch_meter.total / max(batch_meter.count, 1) * left
                    logger.info(format_batch_line(epoch + 1, epochs, "train", step, meters,
                                                  batch_cost, reader_cost, ips, eta))
                    for meter in meters:
                        vdl.add_scalar(f"train/{meter.name}", meter.val, global_step)
                    vdl.add_scalar("train/ips", ips, global_step)
                tic = time.time()
            skip = 0
            if not cfg.get("sync_bn"):
                average_norm_statistics(model)
            logger.info(format_epoch_line(epoch + 1, "train", meters, batch_meter, reader_meter,
                                          samples))
            vdl.add_scalar("train_epoch/loss", meters[0].avg, epoch + 1)
            vdl.add_scalar("train_epoch/top1", meters[2].avg, epoch + 1)
            if samples and time.time() > epoch_start:
                vdl.add_scalar("train_epoch/ips", samples / batch_meter.total, epoch + 1)
            epochs_done = epoch + 1
            if epochs_done % save_interval == 0 or epochs_done == epochs or stop.signum:
                target = save(epochs_done)
                if target:
                    logger.info(f"saved {target}.pdparams and .pdopt")
            if valid is not None and (epochs_done % val_interval == 0 or epochs_done == epochs):
                top1 = _validate(cfg, model, valid, epochs_done, epochs, log_interval, vdl)
                if top1 > best:
                    best = top1
                    if rank == 0:
                        target = checkpoint_prefix(out, model_name, best=True)
                        save_checkpoint(target, _model_state(model), portable_optimizer_state(optimizer, model),
                                        {"epochs_done": epochs_done, "step": 0, "best_top1": best,
                                         "seed": seed, "steps_per_epoch": steps,
                                         "model_name": model_name})
                        logger.info(f"[EVAL] best top1 so far: {best:.5f}; saved {target}.pdparams")
            (stopping,) = _sync_flags([int(stop.signum is not None)])
            if stopping:
                stop.signum = stop.signum or signal.SIGTERM
                interrupted(epochs_done, 0)
    finally:
        stop.restore()
        vdl.close()
    if tracker.bad:
        logger.warning(tracker.report())
    if rank == 0:
        logger.info(f"training done: {epochs} epochs" +
                    (f", best validation top1 {best:.5f}" if best >= 0 else "") +
                    f"; checkpoints in {out}")
    return {"best_top1": best if best >= 0 else None, "epochs_done": epochs, "output_dir": out,
            "last": last_saved, "model": model,
            "step_times": step_times if start_epoch < epochs else []}


def _validate(cfg, model, valid, epoch, epochs, log_interval, vdl):
    """Score the model on the valid list (every video once over all ranks); return top-1."""
    from ..loader import FailureTracker
    dataset, loader = valid
    head = cfg.MODEL.head
    metric = build_metric(cfg.get("METRIC") or AttrDict(name="CenterCropMetric"),
                          int(head["num_classes"]), getattr(dataset, "class_names", None))
    tracker = FailureTracker(dataset, 1.0, mode="valid")
    model.eval()
    evaluate(DygraphRunner(model), loader, metric, tracker, mode="val", log_interval=log_interval,
             epoch=epoch, epochs=epochs)
    model.train()
    metric.gather()
    res = metric.accumulate()
    logger.info(f"[EVAL] epoch:{epoch:<3d} top1: {res['top1']:.5f} top5: {res['top5']:.5f} "
                f"mean_class_acc: {res['mean_class_acc']:.5f} ({res['evaluated']} videos, "
                f"{res['failed']} failed to load)")
    if res["failed"]:
        logger.warning("[EVAL] " + tracker.report())
    vdl.add_scalar("val/top1", res["top1"], epoch)
    vdl.add_scalar("val/top5", res["top5"], epoch)
    vdl.add_scalar("val/mean_class_acc", res["mean_class_acc"], epoch)
    return res["top1"]
