"""Keep Paddle's lines that a user cannot act on off the terminal, by plain means.

Call `install()` first thing in a command-line entry point, before paddle is imported. Each
line is dropped where it is made, by the mechanism its source offers:

- `UserWarning: No ccache found` (paddle.utils.cpp_extension, at import) and `When training, we
  now always track global mean and variance` (every BatchNorm forward in training): warnings
  filters.
- glog's INFO and WARNING lines from Paddle's C++ (`Hardware support for BFLOAT16 is enabled`,
  `Paddle static graph(PIR) not support input out tensor for now`): glog's own level,
  GLOG_minloglevel=2, unless the user set GLOG_minloglevel or GLOG_v. Errors still print.
- `WARNING: OMP_NUM_THREADS set to N, not 1` and `PLEASE USE OMP_NUM_THREADS WISELY.`: printed to
  sys.stderr by paddle's bootstrap when OMP_NUM_THREADS > 1, which utils/env.py sets. When env.py
  chose the count (not the user), `install()` imports paddle with those two lines held out of
  sys.stderr; any other line printed during the import passes.
- `ReduceMeanCheckIfOneDNNSupport`: a C++ write to stdout from oneDNN's mean kernel while Paddle
  Inference runs; `native_stdout_off()` wraps the calls that can reach it (deploy's
  engine), redirecting file descriptor 1 to /dev/null for that call alone.

`PADDLEVIDEO_QUIET=0` turns all of it off (to see Paddle's own output when debugging).
"""
import contextlib
import io
import os
import sys
import warnings

__all__ = ["install", "enabled", "NOISE_WARNINGS", "OMP_LINES", "native_stdout_off"]

NOISE_WARNINGS = (r"No ccache found",
                  r"When training, we now always track global mean and variance")
OMP_LINES = ("WARNING: OMP_NUM_THREADS set to", "PLEASE USE OMP_NUM_THREADS WISELY.")


def enabled(environ=None):
    return (os.environ if environ is None else environ).get("PADDLEVIDEO_QUIET", "1") != "0"


class _DropLines(io.TextIOBase):
    """A text stream that passes every line to `target` except those starting with `prefixes`."""

    def __init__(self, target, prefixes):
        self.target, self.prefixes, self.partial = target, prefixes, ""

    def write(self, text):
        lines = (self.partial + text).split("\n")
        self.partial = lines.pop()
        for line in lines:
            if not line.startswith(self.prefixes):
                self.target.write(line + "\n")
        return len(text)

    def flush(self):
        if self.partial:
            self.target.write(self.partial)
            self.partial = ""
        self.target.flush()


def install(environ=None):
    """Quiet this process (idempotent). Returns False when PADDLEVIDEO_QUIET=0 turned it off."""
    env = os.environ if environ is None else environ
    if not enabled(env):
        return False
    for message in NOISE_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=UserWarning)
    if "GLOG_minloglevel" not in env and "GLOG_v" not in env:
        env["GLOG_minloglevel"] = "2"        # glog's INFO and WARNING: progress chatter
    if env.get("PADDLEVIDEO_OMP_AUTO") == "1" and "paddle" not in sys.modules:
        stream = _DropLines(sys.stderr, OMP_LINES)
        with contextlib.redirect_stderr(stream):
            import paddle  # noqa: F401  (its bootstrap prints the OMP lines; nothing else held)
        stream.flush()
    return True


@contextlib.contextmanager
def native_stdout_off():
    """Send file descriptor 1 to /dev/null around a native call that writes to stdout directly."""
    if not enabled():
        yield
        return
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)
