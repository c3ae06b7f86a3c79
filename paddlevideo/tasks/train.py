"""`main.py` training: the loop, validation, checkpoints, resume, signals, AMP, data parallelism.

`train_model` runs a `Trainer` through its steps: `start` (device, processes, the output folder
check, the log), `setup` (data, model, optimizer), `resume` (checkpoint checked against the
config), then `fit`: `train_epoch`, and after each epoch `end_epoch` (averaged BatchNorm
statistics, checkpoint, `validate`, best checkpoint, curves, retention).

Guarantees:
- Deterministic given the seed: shuffling and augmentation are seeded by (seed, epoch, sample)
  in the loader, and Paddle's generator is reseeded from (seed, rank, epoch, step) before every
  step (dropout). A run resumed from any checkpoint therefore ends with the same parameters as
  an uninterrupted one; a resumed epoch skips its finished batches without loading them.
- Never loses work, never mixes runs: checkpoints are written atomically; a new run refuses an
  output folder that holds another run's checkpoints; a resumed run refuses a checkpoint that
  does not fit its config. SIGINT/SIGTERM stop the run at the next step boundary and write a
  resumable `<model>_epoch_E_step_S` checkpoint. The last `keep_checkpoints` epoch checkpoints
  and the best are kept.
- The host does not wait for the device every step: losses and accuracies stay on the device
  until a log step, and a NaN/Inf loss is found there (at the latest before anything is saved):
  the run stops, naming the step where it happened, and no checkpoint holds the bad update.
- Every way a run ends is written to train.log as well as the terminal.
- One process per GPU (or several CPU processes) through `paddle.distributed.launch`: rank 0
  alone logs and saves, validation counts every video once; one all-reduce per step carries
  the stop and empty-batch flags.
"""
import logging
import math
import os
import random
import signal
import time

import numpy as np
import paddle
import paddle.distributed as dist
import paddle.nn.functional as F

from ..loader import FailureTracker, ListError, LoaderError, TooManyBadFiles
from ..metrics import build_metric
from ..modeling import build_model, load_weights
from ..modeling.weights import WeightsError
from ..solver import build_optimizer
from ..solver.optimizer import accumulator_kinds
from ..utils.checkpoint import (CheckpointError, check_position, check_resumable,
                                checkpoint_prefix, latest_checkpoint, list_checkpoints,
                                load_checkpoint,
                                portable_optimizer_state, prune_checkpoints,
                                remove_stale_temporaries, restore_optimizer_state,
                                save_checkpoint, training_checkpoints)
from ..utils.config import AttrDict, ConfigError
from ..utils.curves import TrainingCurves
from ..utils.download import DownloadError
from ..utils.logger import (AverageMeter, VisualDLWriter, format_batch_line, format_epoch_line,
                            log_to_files, setup_logger)
from .common import (TaskError, dataset_section, describe_threads, evaluate, make_loader,
                     max_bad_ratio, output_dir_of, setup_device, world)
from .runlock import RunLock
from .signature import SIGNATURE_VERSION, VERSION_KEY, compare_signature, run_signature

__all__ = ["train_model", "Trainer", "TrainingDiverged", "TrainingInterrupted", "step_seed",
           "run_signature"]

logger = logging.getLogger("paddlevideo")

# Failures whose message says what happened and what to do: one line, no traceback.
EXPLAINED = (ConfigError, TaskError, WeightsError, CheckpointError, DownloadError, ListError,
             TooManyBadFiles, LoaderError)


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


def _sync_flags(values, op="max"):
    """Max (or min) over ranks of a few integers, in one all_reduce; identity in one process."""
    if dist.get_world_size() <= 1:
        return [int(v) for v in values]
    tensor = paddle.to_tensor(np.asarray(values, dtype=np.int64))
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX if op == "max" else dist.ReduceOp.MIN)
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


class _ValidationRunner:
    """The model in eval mode: (probs, log_probs) [B, K] per batch, where probs is the softmax
    averaged over each video's views (what test_step gives) and log_probs its logarithm computed
    from the logits, so the validation loss stays finite however confident the model is."""

    def __init__(self, model):
        self.model = model

    def __call__(self, imgs):
        with paddle.no_grad():
            views = self.model.forward_views(imgs)
            probs = paddle.mean(F.softmax(views, axis=-1), axis=1)
            log_probs = paddle.logsumexp(F.log_softmax(views, axis=-1), axis=1) - \
                math.log(views.shape[1])
        return probs.numpy(), log_probs.numpy()


class _MeanNLL:
    """The validation loss: the mean over videos of -log p(label), summed over ranks."""

    def __init__(self):
        self.total, self.count = 0.0, 0

    def update(self, log_probs, labels):
        labels = np.asarray(labels).reshape(-1)
        picked = np.asarray(log_probs, dtype=np.float64)[np.arange(len(labels)), labels]
        self.total -= float(picked.sum())
        self.count += len(labels)

    def gather(self):
        """The mean over every rank's videos (None when none was scored)."""
        if dist.get_world_size() > 1:
            both = paddle.to_tensor(np.asarray([self.total, self.count], dtype=np.float64))
            dist.all_reduce(both)
            self.total, self.count = (float(v) for v in both.numpy())
        return self.total / self.count if self.count else None


class _EpochStats:
    """One epoch's meters. Each trained step leaves [loss, top1, top5] on the device; `flush`
    reads what is pending with one copy and feeds the meters (at log steps and the epoch end)."""

    def __init__(self):
        self.meters = [AverageMeter("loss"), AverageMeter("lr", ".6f"), AverageMeter("top1"),
                       AverageMeter("top5")]
        self.batch, self.reader = AverageMeter("batch_cost"), AverageMeter("reader_cost")
        self.samples = 0
        self.step_times = []    # (clips, batch_cost, reader_cost) per trained step, for benchmarks
        self.pending = []       # (device [3], clips, step, lr)

    def add(self, values, clips, step, lr, batch_cost, reader_cost):
        self.pending.append((values, clips, step, lr))
        self.samples += clips
        self.batch.update(batch_cost)
        self.reader.update(reader_cost)
        self.step_times.append((clips, batch_cost, reader_cost))

    def read_pending(self):
        """[(step, values [3] as numpy, clips, lr)] of the pending steps, emptied."""
        if not self.pending:
            return []
        values = paddle.stack([p[0] for p in self.pending]).numpy()
        rows = [(p[2], v, p[1], p[3]) for p, v in zip(self.pending, values)]
        self.pending = []
        return rows

    def count(self, rows):
        for _, (loss, top1, top5), clips, lr in rows:
            for meter, value in zip(self.meters, (loss, lr, top1, top5)):
                meter.update(float(value), clips)


class Trainer:
    """One training run in readable steps (see the module doc); `train_model` drives it."""

    def __init__(self, cfg, weights=None, validate=False, amp=False, amp_level=None,
                 amp_dtype=None, max_iters=None, seed=None, resume=False, output_dir=None):
        self.cfg, self.weights, self.do_validate = cfg, weights, validate
        self.amp_options = (amp, amp_level, amp_dtype)
        self.max_iters, self.resume_flag = max_iters, resume
        self.out = output_dir or output_dir_of(cfg)
        self.model_name = str(cfg.get("model_name", "model"))
        self.seed = int(seed if seed is not None else cfg.get("seed", 1234))
        self.start_epoch, self.skip, self.best = 0, 0, -1.0
        self.resumed_from = self.last_saved = None
        self.saved_at = None            # (epochs done, step) of this run's latest checkpoint
        self.stop = _StopFlag()
        self.lock = None                # rank 0's RunLock on the output folder, from start
        self.step_times = []
        self.net = None                 # the model, wrapped in DataParallel over several processes
        self.vdl = VisualDLWriter(self.out, enabled=False)      # opened by fit
        self.curves = TrainingCurves(self.out, enabled=False)   # set up by setup

    # ----- start: processes, the output folder, the log ----------------------------------------
    def start(self):
        """Device and process group; refuse another run's output folder; open train.log."""
        self.device = setup_device()
        self.rank, self.world_size = world()
        refusal, stale = None, []
        if self.rank == 0:          # rank 0 alone writes, so it alone holds the folder's lock
            try:
                self.lock = RunLock(self.out)
                refusal = self.output_dir_refusal()
                if refusal is None:
                    stale = remove_stale_temporaries(self.out)
            except TaskError as e:
                refusal = str(e)
        (refused,) = _sync_flags([int(refusal is not None)])
        if refused:
            self.close()
            raise TaskError(refusal or "rank 0 refused the output folder (see its message).")
        setup_logger(self.out, self.rank, self.cfg.get("log_level", "INFO"), filename="train.log")
        for path, size in stale:
            logger.info(f"removed {path} ({size / 1e6:.1f} MB): a save that a killed process "
                        f"(pid {path.rsplit('-', 1)[-1]}) left unfinished")

    def close(self):
        """Let the output folder go (the lock); the process's end does it too."""
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    def output_dir_refusal(self):
        """Why this run must not write into its output folder, or None.

        A new run refuses a folder with training checkpoints in it (it would overwrite or mix
        with them); --resume refuses one whose checkpoints are another model's; `resume_epoch`
        refuses to go back past later checkpoints (it would overwrite them).
        """
        found = training_checkpoints(self.out)
        if not found:
            return None
        shown = ", ".join(found[:3]) + (f" and {len(found) - 3} more" if len(found) > 3 else "")
        if self.resume_flag:
            if latest_checkpoint(self.out, self.model_name) is not None:
                return None
            return (f"--resume: {self.out} holds no checkpoint of {self.model_name} but other "
                    f"checkpoints ({shown}); a new run there would mix with them. Check "
                    f"model_name, or choose another folder with -o output_dir=...")
        if self.cfg.get("resume_epoch"):
            epoch = int(self.cfg["resume_epoch"])
            later = [c[2] for c in list_checkpoints(self.out, self.model_name)
                     if c[:2] > (epoch, 0)]
            if not later:
                return None
            return (f"resume_epoch={epoch} would overwrite the later checkpoints in {self.out} "
                    f"({', '.join(os.path.basename(p) for p in later[:3])}). Resume from the "
                    f"last with --resume, or move those files away first.")
        return (f"{self.out} already holds the checkpoints of another run ({shown}); this run "
                f"would overwrite them. Continue that run with --resume, or choose another "
                f"folder with -o output_dir=...")

    # ----- setup: data, model, optimizer -------------------------------------------------------
    def setup(self):
        cfg = self.cfg
        random.seed(self.seed)
        np.random.seed(self.seed)
        paddle.seed(self.seed)
        if "epochs" not in cfg:
            raise ConfigError(f"{cfg.where() if isinstance(cfg, AttrDict) else 'config'}: the "
                              f"config needs 'epochs' at the top level to train.")
        self.epochs = int(cfg["epochs"])
        self.log_interval = max(1, int(cfg.get("log_interval", 20)))
        self.save_interval = max(1, int(cfg.get("save_interval", 1)))
        self.val_interval = max(1, int(cfg.get("val_interval", 1)))
        self.keep = int(cfg.get("keep_checkpoints", 3))   # >= 1: the config schema checks it
        distributed = self.world_size > 1
        self.train_ds, self.train_loader = make_loader(cfg, "train", self.seed, distributed)
        self.tracker = FailureTracker(self.train_ds, max_bad_ratio(cfg), mode="train")
        self.valid = make_loader(cfg, "valid", self.seed, distributed) if self.do_validate else None

        model = build_model(cfg.MODEL)
        if self.weights:
            load_weights(model, self.weights)
        if cfg.get("sync_bn"):
            if self.device == "cpu":
                raise ConfigError("sync_bn: True needs GPUs (SyncBatchNorm has no CPU kernel); "
                                  "set sync_bn: False for CPU training.")
            if distributed:
                model = paddle.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        self.steps = len(self.train_loader)
        if self.max_iters:
            self.steps = min(self.steps, int(self.max_iters))
        optimizer, self.schedule = build_optimizer(cfg.get("OPTIMIZER"), model, self.steps,
                                                   self.epochs)
        self.use_amp, self.amp_level, self.amp_dtype = _amp_settings(cfg, *self.amp_options,
                                                                     self.device)
        self.scaler = None
        if self.use_amp:
            if self.amp_level == "O2":
                model, optimizer = paddle.amp.decorate(models=model, optimizers=optimizer,
                                                       level="O2", dtype=self.amp_dtype,
                                                       master_weight=True, save_dtype="float32")
            if self.amp_dtype == "float16":
                self.scaler = paddle.amp.GradScaler(init_loss_scaling=2.0 ** 15)
        self.model, self.optimizer = model, optimizer
        self.signature = run_signature(cfg, self.train_ds)
        self.curves = TrainingCurves(self.out, enabled=self.rank == 0)

    # ----- resume ------------------------------------------------------------------------------
    def resume(self):
        """Continue from the furthest checkpoint (--resume) or `resume_epoch`, after checking
        that it fits the config; every process must find the same one."""
        prefix = None
        if self.resume_flag:
            prefix = latest_checkpoint(self.out, self.model_name)
            if prefix is None:
                logger.warning(f"--resume: no checkpoint of {self.model_name} in {self.out}; "
                               f"starting from the beginning.")
        elif self.cfg.get("resume_epoch"):
            prefix = checkpoint_prefix(self.out, self.model_name, int(self.cfg["resume_epoch"]))
        if prefix is not None:
            params, opt_state, meta = load_checkpoint(prefix)
            named = _position_of(self.out, self.model_name, prefix)
            check_position(prefix, meta, *named, self.steps)
            differences, unrecorded = compare_signature(meta, self.signature)
            optimizer_name = self.signature["OPTIMIZER.name"]
            check_resumable(prefix, params, opt_state, self.model, optimizer_name,
                            accumulator_kinds(optimizer_name), differences)
            if unrecorded:
                logger.warning(f"{prefix} was written before checkpoints recorded "
                               f"{', '.join(unrecorded)}; those were not compared with this "
                               f"run's config (its tensors and the rest were).")
            self.model.set_state_dict(params)
            restore_optimizer_state(self.optimizer, self.model, opt_state)
            self.start_epoch, self.skip = named
            self.best = float(meta.get("best_top1", -1.0))
            self.resumed_from = self.last_saved = prefix
            self.saved_at = (self.start_epoch, self.skip)
            if meta.get("steps_per_epoch") not in (None, self.steps):
                logger.warning(f"the checkpoint was written with {meta['steps_per_epoch']} steps "
                               f"per epoch, this run has {self.steps} (another batch size, data "
                               f"list or number of processes); the schedule continues from the "
                               f"same epoch.")
            if meta.get("seed") not in (None, self.seed):
                logger.warning(f"the checkpoint was written by a run with seed {meta['seed']}, "
                               f"this one has {self.seed}: from here on the data order and "
                               f"augmentation differ from that run's.")
        position = [self.start_epoch, self.skip]
        if _sync_flags(position, "max") != _sync_flags(position, "min"):
            raise CheckpointError(
                f"the processes found different checkpoints to resume from in {self.out}: "
                f"--resume needs output_dir on a file system that every node shares (or the same "
                f"checkpoints copied to each node).")
        if prefix is not None and self.start_epoch < self.epochs:
            logger.info(f"resumed from {prefix}: {self.start_epoch} epochs done"
                        + (f", {self.skip} steps into epoch {self.start_epoch + 1}"
                           if self.skip else ""))
        # the schedule's position is the number of steps done, whatever wrote the checkpoint
        self.schedule.last_epoch = self.start_epoch * self.steps + self.skip - 1
        self.schedule.step()
        self.curves.load(self.start_epoch, self.start_epoch + self.skip / self.steps)

    # ----- the epochs ----------------------------------------------------------------------------
    def fit(self):
        """Train the remaining epochs; return train_model's result."""
        if self.start_epoch >= self.epochs:
            logger.info(f"nothing to train: {self.resumed_from} has {self.start_epoch} epochs "
                        f"done and the config asks for {self.epochs}. To train longer, raise "
                        f"epochs (-o epochs=N) and resume; to train again, use another "
                        f"output_dir.")
            return self.result()
        batch = int(dataset_section(self.cfg)["batch_size"])
        logger.info(f"{describe_threads(self.device)}; {self.world_size} process(es), {batch} "
                    f"clips each = global batch {batch * self.world_size}; {len(self.train_ds)} "
                    f"training videos, {self.steps} steps per epoch; seed {self.seed}"
                    + (f"; AMP {self.amp_level} {self.amp_dtype}" if self.use_amp else ""))
        self.vdl = VisualDLWriter(self.out, enabled=self.rank == 0)
        self.stop.install()
        try:
            for epoch in range(self.start_epoch, self.epochs):
                stats = self.train_epoch(epoch, self.skip)
                self.skip = 0
                self.end_epoch(epoch, stats)
        finally:
            self.stop.restore()
            self.vdl.close()
        if self.tracker.bad:
            logger.warning(self.tracker.report())
        if self.rank == 0:
            logger.info(f"training done: {self.epochs} epochs" +
                        (f", best validation top1 {self.best:.5f}" if self.best >= 0 else "") +
                        f"; checkpoints in {self.out}")
        return self.result()

    def result(self):
        return {"best_top1": self.best if self.best >= 0 else None,
                "epochs_done": max(self.start_epoch, self.epochs), "output_dir": self.out,
                "last": self.last_saved, "model": self.model, "step_times": self.step_times}

    def train_epoch(self, epoch, skip=0):
        """Train epoch `epoch` (0-based) from step `skip` on; return its _EpochStats."""
        if self.net is None:
            self.net = paddle.DataParallel(self.model) if self.world_size > 1 else self.model
        self.train_loader.set_epoch(epoch, skip)
        self.net.train()
        stats = _EpochStats()
        if skip:
            logger.info(f"skipping the {skip} steps of epoch {epoch + 1} done before the "
                        f"interruption")
        self.done = skip
        tic = time.time()
        with iter(self.train_loader) as batches:
            for step in range(skip, self.steps):
                try:
                    imgs, labels, ids, failed = next(batches)
                except StopIteration:
                    break
                except Exception:
                    if self.stop.signum is not None:     # workers killed by the same Ctrl-C
                        self.interrupt(epoch, self.done, stats, collective=False)
                    raise
                reader_cost = time.time() - tic
                if int(failed.shape[0]):
                    self.tracker.add(ids, failed)
                    try:
                        self.tracker.check()
                    except TooManyBadFiles as e:
                        raise TaskError(str(e)) from None
                clips = int(imgs.shape[0])
                # one all-reduce (none in a single process) so every rank stops or skips alike
                empty, stopping = _sync_flags([int(clips == 0), int(self.stop.signum is not None)])
                if stopping:
                    self.stop.signum = self.stop.signum or signal.SIGTERM  # another rank's signal
                    self.interrupt(epoch, self.done, stats)
                lr = self.schedule.get_lr()
                if not empty:   # when every sample of a batch failed on some rank, skip the step
                    values = self.train_step(imgs, labels, epoch, step)
                self.schedule.step()
                self.done += 1
                if empty:
                    tic = time.time()
                    continue
                batch_cost = time.time() - tic
                stats.add(values, clips, step, lr, batch_cost, reader_cost)
                if step % self.log_interval == 0 or step == self.steps - 1:
                    self.log_step(epoch, step, stats, clips, batch_cost, reader_cost)
                tic = time.time()
        self.check_finite(epoch, stats)
        self.step_times = stats.step_times
        return stats

    def train_step(self, imgs, labels, epoch, step):
        """Forward, backward and update on one batch; returns [loss, top1, top5] on the device
        (not read back: that would make the host wait for the device every step)."""
        paddle.seed(step_seed(self.seed, self.rank, epoch, step))
        if self.use_amp:
            with paddle.amp.auto_cast(level=self.amp_level, dtype=self.amp_dtype):
                outputs = self.model.head.loss(self.net(imgs), labels)
        else:
            outputs = self.model.head.loss(self.net(imgs), labels)
        loss = outputs["loss"].astype("float32")
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            self.optimizer.step()
        self.optimizer.clear_grad()
        return paddle.concat([paddle.reshape(x.detach().astype("float32"), [1])
                              for x in (loss, outputs["top1"], outputs["top5"])])

    def check_finite(self, epoch, stats, collective=True):
        """Read the pending steps' figures; stop the run if a loss was NaN/Inf (on any rank when
        `collective`: every rank calls it at the same step then).

        Called at log steps, at the end of an epoch and before an interruption's checkpoint, so
        a non-finite loss is found before anything after it is saved."""
        rows = stats.read_pending()
        bad = next(((step, float(v[0])) for step, v, _, _ in rows if not math.isfinite(v[0])),
                   None)
        (anywhere,) = _sync_flags([int(bad is not None)]) if collective else [bad is not None]
        if anywhere:
            where = (f"the loss became {bad[1]} at epoch {epoch + 1}, step {bad[0]}" if bad else
                     f"the loss became NaN/Inf on another rank by epoch {epoch + 1}, step "
                     f"{rows[-1][0] if rows else self.done}")
            raise TrainingDiverged(
                f"{where}; the run stopped without saving anything after it. The last good "
                f"checkpoint is {self.last_saved or 'none (nothing was saved yet)'} and was not "
                f"touched. Lower the learning rate, check OPTIMIZER.grad_clip, or with AMP "
                f"float16 try bfloat16; then resume with --resume.")
        stats.count(rows)

    def log_step(self, epoch, step, stats, clips, batch_cost, reader_cost):
        self.check_finite(epoch, stats)
        ips = clips / batch_cost if batch_cost > 0 else 0.0
        left = (self.epochs - epoch) * self.steps - step - 1
        eta = stats.batch.total / max(stats.batch.count, 1) * left
        logger.info(format_batch_line(epoch + 1, self.epochs, "train", step, stats.meters,
                                      batch_cost, reader_cost, ips, eta))
        global_step = epoch * self.steps + step + 1
        for meter in stats.meters:
            self.vdl.add_scalar(f"train/{meter.name}", meter.val, global_step)
        self.vdl.add_scalar("train/ips", ips, global_step)
        self.curves.add_lr(epoch + step / self.steps, stats.meters[1].val)

    def interrupt(self, epochs_done, steps, stats=None, collective=True):
        """Save where the run is, unless saved there already (after checking the pending
        losses), and raise TrainingInterrupted."""
        if stats is not None:
            self.check_finite(epochs_done, stats, collective)
        if self.saved_at != (epochs_done, steps):
            self.save(epochs_done, steps)
        self.draw_curves()              # with the rates logged so far, for the resumed run
        where = self.last_saved if self.rank == 0 else "rank 0's checkpoint"
        raise TrainingInterrupted(
            f"training stopped by {signal.Signals(self.stop.signum).name} after {epochs_done} "
            f"epochs and {steps} steps; saved {where}. Continue with the same command plus "
            f"--resume.", self.stop.signum)

    def end_epoch(self, epoch, stats):
        """After epoch `epoch`: BatchNorm statistics, log, checkpoint, validation, best,
        curves, retention; then stop here if a signal came."""
        if not self.cfg.get("sync_bn"):
            average_norm_statistics(self.model)
        done = epoch + 1
        logger.info(format_epoch_line(done, "train", stats.meters, stats.batch, stats.reader,
                                      stats.samples))
        loss, top1 = stats.meters[0].avg, stats.meters[2].avg
        self.vdl.add_scalar("train_epoch/loss", loss, done)
        self.vdl.add_scalar("train_epoch/top1", top1, done)
        if stats.samples and stats.batch.total > 0:
            self.vdl.add_scalar("train_epoch/ips", stats.samples / stats.batch.total, done)
        if done % self.save_interval == 0 or done == self.epochs or self.stop.signum:
            self.save(done)
        val = {}
        if self.valid is not None and (done % self.val_interval == 0 or done == self.epochs):
            val = self.validate(done)
            if val["top1"] > self.best:
                self.best = val["top1"]
                target = self.save(done, best=True)
                if target:
                    logger.info(f"[EVAL] best top1 so far: {self.best:.5f}; saved "
                                f"{target}.pdparams")
        self.curves.add_epoch(done, loss if stats.samples else None,
                              top1 if stats.samples else None, val.get("loss"), val.get("top1"))
        self.draw_curves()
        (stopping,) = _sync_flags([int(self.stop.signum is not None)])
        if stopping:
            self.stop.signum = self.stop.signum or signal.SIGTERM
            self.interrupt(done, 0)

    def draw_curves(self):
        """Redraw training_curves.png; a picture that cannot be drawn is reported once and
        given up, the training goes on (it changes no result)."""
        try:
            self.curves.save()
        except (ImportError, OSError, RuntimeError, ValueError) as e:
            logger.warning(f"could not draw the training curves ({type(e).__name__}: {e}); "
                           f"training goes on without them.")
            self.curves.enabled = False

    def validate(self, epoch):
        """Score the model on the valid list (every video once over all ranks); return
        {'top1', 'top5', 'mean_class_acc', 'loss', ...}."""
        dataset, loader = self.valid
        head = self.cfg.MODEL.head
        metric = build_metric(self.cfg.get("METRIC") or AttrDict(name="CenterCropMetric"),
                              int(head["num_classes"]), getattr(dataset, "class_names", None))
        tracker = FailureTracker(dataset, 1.0, mode="valid")
        nll = _MeanNLL()
        self.model.eval()
        try:
            evaluate(_ValidationRunner(self.model), loader, metric, tracker, mode="val",
                     log_interval=self.log_interval, epoch=epoch, epochs=self.epochs,
                     loss_meter=nll)
        finally:
            self.model.train()
        metric.gather()
        res = dict(metric.accumulate(), loss=nll.gather())
        loss_text = f"{res['loss']:.5f}" if res["loss"] is not None else "none"
        logger.info(f"[EVAL] epoch:{epoch:<3d} top1: {res['top1']:.5f} top5: {res['top5']:.5f} "
                    f"mean_class_acc: {res['mean_class_acc']:.5f} loss: {loss_text} "
                    f"({res['evaluated']} videos, {res['failed']} failed to load)")
        if res["failed"]:
            logger.warning("[EVAL] " + tracker.report())
        for key in ("top1", "top5", "mean_class_acc", "loss"):
            if res[key] is not None:
                self.vdl.add_scalar(f"val/{key}", res[key], epoch)
        return res

    # ----- checkpoints -----------------------------------------------------------------------
    def save(self, epochs_done, step=0, best=False):
        """Write a checkpoint on rank 0 (epoch, interrupted at `step`, or the best), then keep
        only the last `keep_checkpoints` epoch checkpoints; returns its prefix (None elsewhere)."""
        if self.rank != 0:
            return None
        meta = dict(self.signature, epochs_done=epochs_done, step=step, best_top1=self.best,
                    **{VERSION_KEY: SIGNATURE_VERSION},
                    seed=self.seed, steps_per_epoch=self.steps, model_name=self.model_name)
        if best:
            target = checkpoint_prefix(self.out, self.model_name, best=True)
        else:
            target = checkpoint_prefix(self.out, self.model_name,
                                       epochs_done + 1 if step else epochs_done, step)
        save_checkpoint(target, self.model.state_dict(),
                        portable_optimizer_state(self.optimizer, self.model), meta)
        if best:
            return target
        self.last_saved, self.saved_at = target, (epochs_done, step)
        logger.info(f"saved {target}.pdparams and .pdopt")
        for gone in prune_checkpoints(self.out, self.model_name, self.keep):
            logger.info(f"removed {os.path.basename(gone)} (keep_checkpoints={self.keep})")
        return target


def _position_of(output_dir, model_name, prefix):
    """(epochs done, steps into the next epoch) that a checkpoint's name says."""
    found = [c[:2] for c in list_checkpoints(output_dir, model_name) if c[2] == prefix]
    if not found:
        raise CheckpointError(f"cannot resume from {prefix}: it is not a complete training "
                              f"checkpoint (<model_name>_epoch_NNNNN.pdparams and .pdopt).")
    return found[0]


def _record_failure(error):
    """Write how the run ended to train.log (the command line prints it to the terminal)."""
    if isinstance(error, TrainingInterrupted):
        log_to_files(f"stopped: {error}", logging.WARNING)
    elif isinstance(error, KeyboardInterrupt):
        log_to_files("stopped at once by a second signal: the steps since the last checkpoint "
                     "are lost; continue with --resume.", logging.WARNING)
    elif isinstance(error, EXPLAINED):
        log_to_files(f"error: {error}")
    else:
        log_to_files(f"error: unexpected {type(error).__name__}: {error}",
                     exc_info=(type(error), error, error.__traceback__))


def train_model(cfg, weights=None, validate=False, amp=False, amp_level=None, amp_dtype=None,
                max_iters=None, seed=None, resume=False, output_dir=None):
    """Train the config's model; return {'best_top1', 'epochs_done', 'output_dir', 'last' (the
    last checkpoint's prefix), 'model' (the trained layer), 'step_times' ((clips, batch_cost,
    reader_cost) per step of the last epoch)}.

    weights: initialise from these (fine-tuning; a head of another class count is skipped).
    resume: continue from the furthest checkpoint in output_dir (else `resume_epoch: K`); a run
    that has done its epochs says so and returns.
    max_iters: at most this many steps per epoch (quick trials and benchmarks).
    """
    trainer = Trainer(cfg, weights, validate, amp, amp_level, amp_dtype, max_iters, seed, resume,
                      output_dir)
    trainer.start()
    try:
        trainer.setup()
        trainer.resume()
        return trainer.fit()
    except BaseException as error:
        _record_failure(error)
        raise
    finally:
        trainer.close()
