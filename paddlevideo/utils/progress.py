"""Progress bars (the test and validation loops, downloads), drawn on a terminal only.

A bar (tqdm, on stderr) appears only when stderr is a terminal and this is the first (or only)
process; elsewhere nothing is drawn, so log files and pipes get plain lines, never `\\r`
redraws. The bar counts videos, so its rate is videos per second and its estimate the time
left for the videos this process scores.

While a bar is up, the console handlers of the 'paddlevideo' logger leave out the per-step
lines (those logged with `extra=STEP_LINE`: the bar shows the same, live) and clear the bar
before printing any other line; the log file keeps every line.
"""
import logging
import math
import os
import sys

__all__ = ["STEP_LINE", "progress_bar", "bytes_bar", "on_terminal"]

STEP_LINE = {"step_line": True}       # logger.info(line, extra=STEP_LINE): a per-step line


def on_terminal():
    """True when a bar would be seen: stderr is a terminal and this is rank 0."""
    rank = os.environ.get("PADDLE_TRAINER_ID", "0")
    return rank in ("", "0") and hasattr(sys.stderr, "isatty") and sys.stderr.isatty()


class _BarAwareConsole(logging.Filter):
    """Console filter while a bar is shown: drop per-step lines, clear the bar before others."""

    def __init__(self, bar):
        super().__init__()
        self.bar = bar

    def filter(self, record):
        if getattr(record, "step_line", False):
            return False
        self.bar.clear()             # the line takes the bar's place; the bar redraws below it
        return True


def _console_handlers(logger):
    return [h for h in logger.handlers if isinstance(h, logging.StreamHandler)
            and not isinstance(h, logging.FileHandler)
            and hasattr(h.stream, "isatty") and h.stream.isatty()]


class _Bar:
    """A tqdm bar tied to one loop; `wrap(iterable)` closes it when the loop ends or fails."""

    def __init__(self, total, desc, logger):
        from tqdm import tqdm
        self._tqdm = tqdm(total=total, desc=desc, unit="video", file=sys.stderr,
                          dynamic_ncols=True, leave=False, smoothing=0.1)
        self._filter = _BarAwareConsole(self._tqdm)
        self._handlers = _console_handlers(logger)
        for handler in self._handlers:
            handler.addFilter(self._filter)

    def update(self, videos):
        self._tqdm.update(int(videos))

    def wrap(self, iterable):
        try:
            yield from iterable
        finally:
            self.close()

    def close(self):
        for handler in self._handlers:
            handler.removeFilter(self._filter)
        self._handlers = []
        self._tqdm.close()


class _NoBar:
    """What a loop gets off a terminal: the same calls, nothing drawn."""

    def update(self, videos):
        pass

    def wrap(self, iterable):
        return iter(iterable)

    def close(self):
        pass


def progress_bar(loader, desc, logger_name="paddlevideo"):
    """A bar over the videos of `loader` (this process's share of its dataset), or a stand-in
    that draws nothing when stderr is not a terminal. Use:

        bar = progress_bar(loader, "test")
        for batch in bar.wrap(loader):
            ...
            bar.update(videos_in_batch)
    """
    if not on_terminal():
        return _NoBar()
    dataset = getattr(loader, "dataset", None)
    world = os.environ.get("PADDLE_TRAINERS_NUM", "1")
    world = int(world) if world.isdigit() and int(world) > 0 else 1
    total = math.ceil(len(dataset) / world) if dataset is not None else None
    return _Bar(total, desc, logging.getLogger(logger_name))


class _BytesBar:
    """tqdm over bytes, in MB with a rate; `update(n)`, `close()`."""

    def __init__(self, total, desc):
        from tqdm import tqdm
        self._tqdm = tqdm(total=total, desc=desc, unit="B", unit_scale=True, unit_divisor=1024,
                          file=sys.stderr, dynamic_ncols=True, leave=True)

    def update(self, n):
        self._tqdm.update(int(n))

    def close(self):
        self._tqdm.close()


def bytes_bar(total, desc, enabled=True):
    """A bar over `total` bytes (None: unknown) on a terminal, else a stand-in drawing nothing."""
    return _BytesBar(total, desc) if enabled and on_terminal() else _NoBar()
