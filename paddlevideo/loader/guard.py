"""Errors in the loader's feeding thread and worker processes reach the main thread, and workers
die with their parent.

Paddle's DataLoader iterates the batch sampler and, without workers, loads and collates samples
in a feeding thread. An exception there ends the thread and leaves the main thread waiting on an
empty queue for ever (SIGTERM cannot end that wait, only SIGKILL). An exception in a worker
process reaches the main thread as "Blocking queue is killed", without its message. So nothing
is allowed to raise there:

- `GuardedSampler` keeps the sampler's exception and ends the pass; the loader raises it in the
  main thread once the batches made before it are used.
- `guarded_fetch` turns an exception while loading a sample into a `LoadBug`, and
  `guarded_collate` turns it (or one while collating) into a batch whose extra `error` array
  carries the text, which `raise_if_failed` raises as a LoaderError in the main thread.
  A batch that is well carries a 1-element `error`: its shape says all, nothing is read back.

`die_with_parent` (run in each worker) makes the kernel kill a worker whose parent died, however
it died: a SIGKILLed training (the OOM killer) would otherwise leave its workers blocked on a
pipe, holding their memory, for minutes.
"""
import ctypes
import os
import signal
import sys
import traceback

import numpy as np

__all__ = ["LoaderError", "GuardedSampler", "LoadBug", "guarded_collate", "raise_if_failed",
           "die_with_parent", "describe_exception"]

_PR_SET_PDEATHSIG = 1           # linux/prctl.h


class LoaderError(RuntimeError):
    """A sampler, dataset or collate function raised in the loader's thread or a worker."""


def describe_exception(error, where):
    """One line: what raised, its message, and the innermost place in the code."""
    frames = traceback.extract_tb(error.__traceback__)
    place = f" (at {frames[-1].filename}:{frames[-1].lineno} in {frames[-1].name})" if frames else ""
    return f"{where} raised {type(error).__name__}: {error}{place}"


class GuardedSampler:
    """The batch sampler as Paddle sees it: its batches, and an exception kept in `error`
    (ending the pass) instead of thrown in Paddle's feeding thread."""

    def __init__(self, sampler):
        self.sampler, self.error = sampler, None

    def __len__(self):
        return len(self.sampler)

    def __iter__(self):
        self.error = None
        try:
            yield from self.sampler
        except Exception as e:          # noqa: BLE001  (re-raised in the main thread)
            self.error = LoaderError(describe_exception(
                e, f"the batch sampler {type(self.sampler).__name__}"))
            self.error.__cause__ = e


class LoadBug:
    """Stands for a sample whose loading raised something other than a SampleError."""

    def __init__(self, index, text):
        self.index, self.text = int(index), text


def _error_array(text):
    """uint8 [1 + n]: a leading 0, then `text` in UTF-8 (a queue cannot carry size 0)."""
    return np.frombuffer(b"\0" + text.encode("utf-8", "replace"), dtype=np.uint8).copy()


def guarded_collate(collate, batch):
    """collate(batch) + [error]: error is [0] when all went well, else the text of the first
    LoadBug in the batch or of collate's own exception, with a dummy batch in front."""
    bug = next((s for s in batch if isinstance(s, LoadBug)), None)
    if bug is None:
        try:
            return list(collate(batch)) + [np.zeros(1, dtype=np.uint8)]
        except Exception as e:          # noqa: BLE001  (re-raised in the main thread)
            text = describe_exception(e, "collating a batch")
    else:
        text = bug.text
    imgs = np.zeros((1, 1, 3, 1, 1), dtype=np.float32)
    marker = np.full((1,), -1, dtype=np.int64)
    return [imgs, marker, marker.copy(), marker.copy(), _error_array(text)]


def raise_if_failed(error):
    """Raise LoaderError with the text an `error` array (numpy or tensor) carries, if any."""
    if int(error.shape[0]) > 1:
        data = error.numpy() if hasattr(error, "numpy") else error
        raise LoaderError(bytes(np.asarray(data, dtype=np.uint8)[1:]).decode("utf-8", "replace"))


def die_with_parent(parent):
    """Ask the kernel to SIGKILL this process when its parent dies (Linux); if the parent, pid
    `parent`, is already gone (it died before the request), end now. Elsewhere, nothing.

    The kernel sends the signal when the parent's thread that started this process ends: the
    loader starts its workers from the main thread, which lives as long as the run."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != int(parent):     # the parent died before prctl: nobody will signal us
        os._exit(1)
