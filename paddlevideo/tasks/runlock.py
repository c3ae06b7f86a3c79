"""One training at a time in an output folder: an exclusive lock held for the run's lifetime.

Two runs started together into one folder would both pass the "no other run's checkpoints here"
check and then overwrite each other's checkpoints. Rank 0 of a run takes `fcntl.flock` on
`<output_dir>/.train.lock` before that check and holds it until the run ends; the file then
names the holder (pid, host, start time) so a second run can say who has the folder. The
operating system drops the lock when the holding process dies, however it dies (SIGKILL, the
OOM killer), so no stale lock ever has to be removed by hand; the file itself stays.

flock is advisory and local: it holds between runs on one machine (and on NFS mounts whose
server supports locks), not between machines writing to a file system without lock support.
"""
import datetime
import errno
import fcntl
import os
import socket

from .common import TaskError

__all__ = ["RunLock", "LOCK_NAME"]

LOCK_NAME = ".train.lock"


class RunLock:
    """The lock on one output folder; `release` (or the process's end) lets it go."""

    def __init__(self, folder):
        self.path = os.path.join(folder, LOCK_NAME)
        try:
            os.makedirs(folder, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        except OSError as e:
            raise TaskError(f"cannot lock the output folder {folder} ({self.path}: "
                            f"{e.strerror or e}); choose another folder with -o "
                            f"output_dir=...") from None
        self.file = os.fdopen(fd, "r+", encoding="utf-8", errors="replace")
        try:
            fcntl.flock(self.file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            holder = self._holder()
            self.file.close()
            if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise TaskError(f"cannot lock the output folder {folder}: {e.strerror or e}; "
                                f"choose another folder with -o output_dir=...") from None
            raise TaskError(f"{folder} is in use by another training ({holder}); wait for it to "
                            f"end, or choose another folder with -o output_dir=...") from None
        self.file.seek(0)
        self.file.truncate()
        started = datetime.datetime.now().isoformat(timespec="seconds")
        self.file.write(f"pid {os.getpid()} on host {socket.gethostname()}, started {started}\n")
        self.file.flush()

    def _holder(self):
        try:
            self.file.seek(0)
            text = self.file.read(300).strip()
        except (OSError, ValueError):
            text = ""
        return text.splitlines()[0] if text else "a process that has not written its pid yet"

    def release(self):
        """Let the folder go (idempotent)."""
        if not self.file.closed:
            fcntl.flock(self.file.fileno(), fcntl.LOCK_UN)
            self.file.close()
