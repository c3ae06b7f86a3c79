"""Logging for training and testing: console + file handlers, meters, PaddleVideo's line format.

Only rank 0 logs at INFO; other ranks keep warnings and errors so a failure on any rank is
still seen. The log file lives in `output_dir` (never the working directory).
"""
import datetime
import logging
import os
import sys

__all__ = ["LOGGER_NAME", "get_logger", "setup_logger", "log_to_files", "AverageMeter",
           "format_batch_line", "format_epoch_line", "VisualDLWriter"]

LOGGER_NAME = "paddlevideo"
_FORMAT = "[%(asctime)s] %(message)s"
_DATEFMT = "%Y/%m/%d %H:%M:%S"


def get_logger():
    return logging.getLogger(LOGGER_NAME)


def setup_logger(output_dir=None, rank=0, level="INFO", filename="train.log"):
    """Configure the 'paddlevideo' logger: console always, plus `output_dir/filename` on rank 0.

    Calling it again replaces the handlers it added before (tests and repeated runs in one
    process do not duplicate lines).
    """
    logger = get_logger()
    for handler in list(logger.handlers):
        if getattr(handler, "_paddlevideo", False):
            logger.removeHandler(handler)
            handler.close()
    numeric = logging.getLevelName(str(level).upper())
    if not isinstance(numeric, int):
        raise ValueError(f"log_level '{level}' is not a logging level; use DEBUG, INFO, WARNING "
                         f"or ERROR.")
    logger.setLevel(numeric if rank == 0 else max(numeric, logging.WARNING))
    logger.propagate = False
    formatter = logging.Formatter(_FORMAT, _DATEFMT)
    console = logging.StreamHandler(sys.stdout)
    console.setFormatter(formatter)
    console._paddlevideo = True
    logger.addHandler(console)
    if output_dir and rank == 0:
        os.makedirs(output_dir, exist_ok=True)
        file_handler = logging.FileHandler(os.path.join(output_dir, filename), encoding="utf-8")
        file_handler.setFormatter(formatter)
        file_handler._paddlevideo = True
        logger.addHandler(file_handler)
    return logger


class AverageMeter:
    """Latest value and the sample-weighted mean of a quantity over an epoch.

    `update(value, n)` counts `value` for `n` samples, so the epoch mean is the true mean over
    samples even when the last batch is smaller.
    """

    def __init__(self, name, fmt=".5f", unit=""):
        self.name, self.fmt, self.unit = name, fmt, unit
        self.reset()

    def reset(self):
        self.val, self.sum, self.count, self.total = 0.0, 0.0, 0, 0.0

    def update(self, value, n=1):
        value = float(value)
        self.val = value
        self.sum += value * n
        self.count += n
        self.total += value

    @property
    def avg(self):
        return self.sum / self.count if self.count else 0.0

    @property
    def value(self):
        return f"{self.name}: {self.val:{self.fmt}}{self.unit}"

    @property
    def mean(self):
        return f"{self.name}_avg: {self.avg:{self.fmt}}{self.unit}"


def _memory_str():
    """GPU memory figures for the log line, or '' without a GPU."""
    try:
        import paddle
        if not paddle.device.is_compiled_with_cuda() or "gpu" not in paddle.device.get_device():
            return ""
        reserved = paddle.device.cuda.max_memory_reserved() / 2 ** 20
        allocated = paddle.device.cuda.max_memory_allocated() / 2 ** 20
        return f", max_mem_reserved: {reserved:.2f} MB, max_mem_allocated: {allocated:.2f} MB"
    except Exception:            # memory stats are a courtesy; never fail a run over them
        return ""


def format_batch_line(epoch, total_epochs, mode, step, metrics, batch_cost, reader_cost, ips,
                      eta_sec=None):
    """PaddleVideo's per-step line, e.g.
    `epoch:[  1/50 ] train step:0    loss: 6.07193 lr: 0.020000 top1: 0.00000 top5: 0.00000
    batch_cost: 15.75052 sec, reader_cost: 0.09416 sec, ips: 0.12698 instance/sec, eta: 0:01:19`.
    `metrics` is a list of AverageMeters (their latest values are printed).
    """
    epoch_str = f"epoch:[{epoch:>3d}/{total_epochs:<3d}]"
    step_str = f"{mode} step:{step:<4d}"
    metric_str = " ".join(m.value for m in metrics)
    head = " ".join(part for part in (epoch_str, step_str, metric_str) if part)
    line = (f"{head} batch_cost: {batch_cost:.5f} sec, "
            f"reader_cost: {reader_cost:.5f} sec, ips: {ips:.5f} instance/sec")
    if eta_sec is not None:
        line += f", eta: {datetime.timedelta(seconds=int(eta_sec))}"
    return line + _memory_str()


def format_epoch_line(epoch, mode, metrics, batch_meter, reader_meter, samples):
    """PaddleVideo's `END epoch` line with true averages over the epoch's samples.

    avg_batch_cost / avg_reader_cost are per batch; avg_ips is samples / total batch time.
    """
    metric_str = " ".join(m.mean for m in metrics)
    batches = max(batch_meter.count, 1)
    avg_batch = batch_meter.total / batches
    avg_reader = reader_meter.total / batches
    ips = samples / batch_meter.total if batch_meter.total > 0 else 0.0
    return (f"END epoch:{epoch:<3d} {mode} {metric_str} avg_batch_cost: {avg_batch:.5f} sec, "
            f"avg_reader_cost: {avg_reader:.5f} sec, batch_cost_sum: {batch_meter.total:.5f} sec, "
            f"avg_ips: {ips:.5f} instance/sec.")


class VisualDLWriter:
    """VisualDL scalars under `output_dir/vdl`; a no-op off rank 0 or without visualdl."""

    def __init__(self, output_dir, enabled=True):
        self._writer = None
        if not enabled:
            return
        try:
            from visualdl import LogWriter
        except ImportError:
            get_logger().warning("visualdl is not installed; no VisualDL scalars are written "
                                 "(pip install visualdl).")
            return
        self.logdir = os.path.join(output_dir, "vdl")
        self._writer = LogWriter(logdir=self.logdir)

    def add_scalar(self, tag, value, step):
        if self._writer is not None:
            self._writer.add_scalar(tag=tag, value=float(value), step=int(step))

    def close(self):
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def log_to_files(message, level=logging.ERROR, exc_info=None):
    """Write one record to the log files only, not the console: for a failure that the command
    line prints itself, so that the log file tells how the run ended as well."""
    logger = get_logger()
    record = logger.makeRecord(logger.name, level, __file__, 0, message, None, exc_info)
    for handler in logger.handlers:
        if getattr(handler, "_paddlevideo", False) and isinstance(handler, logging.FileHandler):
            handler.handle(record)
