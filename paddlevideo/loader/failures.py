"""Bad-file bookkeeping for the training and evaluation loops."""
import logging

__all__ = ["FailureTracker", "TooManyBadFiles", "DEFAULT_MAX_BAD_RATIO"]

logger = logging.getLogger("paddlevideo.loader")
DEFAULT_MAX_BAD_RATIO = 0.01


class TooManyBadFiles(RuntimeError):
    """More of a data set's files failed to load than `max_bad_ratio` allows."""


class FailureTracker:
    """Collects the samples that failed to load, with their reasons, for one dataset.

    The loop calls `add(ids, failed)` for every batch. `check()` raises TooManyBadFiles, listing
    the bad files and why, once the number of distinct failed samples exceeds
    `max_bad_ratio * len(dataset)` (so with the default 0.01, a 300-video set may lose 3 videos
    and a 240,000-video set 2,400; 0 stops at the first). `report()` is the list for the end of a run.
    """

    def __init__(self, dataset, max_bad_ratio=DEFAULT_MAX_BAD_RATIO, mode=None):
        ratio = DEFAULT_MAX_BAD_RATIO if max_bad_ratio is None else float(max_bad_ratio)
        if not 0 <= ratio <= 1:
            raise ValueError(f"max_bad_ratio must be in [0, 1], got {max_bad_ratio}.")
        self.dataset, self.max_bad_ratio = dataset, ratio
        self.mode = mode or getattr(dataset, "mode", "")
        self.bad = {}          # index -> reason ('' until asked)
        self.seen = 0

    @property
    def allowed(self):
        return int(self.max_bad_ratio * len(self.dataset))

    def _ints(self, x):
        if x is None:
            return []
        if hasattr(x, "numpy"):
            x = x.numpy()
        return [int(v) for v in list(x.reshape(-1) if hasattr(x, "reshape") else x)]

    def add(self, ids, failed):
        """Record one batch: `ids` loaded, `failed` did not (tensors, arrays or lists of indices)."""
        ids, failed = self._ints(ids), self._ints(failed)
        self.seen += len(ids) + len(failed)
        for i in failed:
            if i not in self.bad:
                self.bad[i] = ""
                logger.warning("%s: skipped sample %d (%s), it failed to load; %d bad so far",
                               self.mode or "data", i, self.dataset.path(i), len(self.bad))
        return len(failed)

    def reason(self, i):
        if not self.bad.get(i):
            self.bad[i] = self.dataset.failure_reason(i) or "failed in a worker, loads now (flaky?)"
        return self.bad[i]

    def __len__(self):
        return len(self.bad)

    def lines(self):
        return [f"{self.dataset.path(i)}: {self.reason(i)}" for i in sorted(self.bad)]

    def report(self):
        """A readable list of the failed files and reasons ('' when none failed)."""
        if not self.bad:
            return ""
        head = (f"{len(self.bad)} of {len(self.dataset)} {self.mode} samples failed to load and "
                f"were left out:")
        return "\n".join([head] + ["  " + line for line in self.lines()])

    def check(self):
        """Raise TooManyBadFiles once the failures pass max_bad_ratio of the dataset."""
        if len(self.bad) > self.allowed:
            raise TooManyBadFiles(
                f"{len(self.bad)} of {len(self.dataset)} {self.mode} samples failed to load, more "
                f"than DATASET.max_bad_ratio={self.max_bad_ratio} allows ({self.allowed}). Fix or "
                f"remove them (data/check_videos.py finds them all and writes a clean list), or "
                f"raise DATASET.max_bad_ratio.\n" + "\n".join("  " + s for s in self.lines()))
