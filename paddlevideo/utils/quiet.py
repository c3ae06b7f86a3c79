"""Keep Paddle's lines that a user cannot act on off the terminal and out of captured logs.

Call `install()` first thing in a command-line entry point, before paddle is imported (it
imports nothing heavy). What it drops, where each line comes from, and how:

- `UserWarning: No ccache found ...`: `warnings.warn` in paddle.utils.cpp_extension at import;
  a warnings filter.
- `UserWarning: When training, we now always track global mean and variance.`: `warnings.warn`
  in every BatchNorm forward in training; a warnings filter.
- `WARNING: OMP_NUM_THREADS set to N, not 1 ...` and `PLEASE USE OMP_NUM_THREADS WISELY.`:
  `print(file=sys.stderr)` in paddle.base's bootstrap at import; the line filter, only when
  utils/env.py chose the thread count (PADDLEVIDEO_OMP_AUTO=1), not when the user did.
- `I... analysis_config.cc:...] Hardware support for BFLOAT16 is enabled`: glog INFO (C++);
  GLOG_minloglevel=1 (glog's INFO lines off) unless the user set it or GLOG_v, and the line
  filter.
- `W... eager_utils.cc:...] Paddle static graph(PIR) not support input out tensor for now`:
  glog WARNING (C++) while a model is traced; the line filter.
- `ReduceMeanCheckIfOneDNNSupport`: a plain C++ write to stdout in the oneDNN mean kernel; the
  line filter.

The line filter works on the file descriptors, because C++ output never passes through
Python: stdout and stderr (one channel when they go to the same place, keeping their order)
are replaced by a pipe, or by a pseudo-terminal when they were a terminal so that `isatty()`,
the window size and progress bars stay as they were. A forked helper process reads the
channel, drops exactly the lines above and copies everything else through unchanged, holding
back only a partial line that could be the start of one of them (at most 0.1 s). Being a
separate process it outlives a crash of the main one, so a crash report is never lost; it
ignores Ctrl-C and SIGTERM (so the main process can still print how it stopped) and ends when
every writer of the channel has closed it. Real warnings, errors and tracebacks pass.

`PADDLEVIDEO_QUIET=0` turns all of it off (to see Paddle's own output when debugging).
"""
import atexit
import os
import re
import sys
import threading
import warnings

__all__ = ["install", "is_noise", "NOISE_WARNINGS"]

NOISE_WARNINGS = (r"No ccache found",
                  r"When training, we now always track global mean and variance")

_ALWAYS = [
    rb"ReduceMeanCheckIfOneDNNSupport",
    rb"[IW]\d{4} [0-9:.]+ +\d+ [\w.]+:\d+\] Paddle static graph\(PIR\) not support input out "
    rb"tensor for now!*",
    rb"I\d{4} [0-9:.]+ +\d+ [\w.]+:\d+\] Hardware support for BFLOAT16 is enabled",
]
_OMP = [
    rb"WARNING: OMP_NUM_THREADS set to \d+, not 1\. The computation speed will not be "
    rb"optimized if you use data parallel\..*",
    rb"PLEASE USE OMP_NUM_THREADS WISELY\.",
]
# How a noise line can begin: a partial line matching one of these is held back until it ends.
_STARTS = [b"ReduceMeanCheckIfOneDNNSupport", b"WARNING: OMP_NUM_THREADS",
           b"PLEASE USE OMP_NUM_THREADS WISELY."]
_GLOG_START = re.compile(rb"[IW](\d{0,4}|\d{4} [0-9:. ]*(\d+ [\w.:]*\]?.*)?)")
_HOLD_SECONDS = 0.1
_ENV_CHANNELS = "PADDLEVIDEO_QUIET_CHANNELS"   # inode(s) of the channel a child inherits

_installed = False


def _patterns(drop_omp):
    body = b"|".join(b"(?:" + p + b")" for p in _ALWAYS + (_OMP if drop_omp else []))
    return re.compile(b"(?:" + body + rb")[ \t]*")


def is_noise(line, drop_omp=True):
    """True if `line` (bytes or str, with or without its newline) is one of the dropped lines
    (an empty line is not)."""
    if isinstance(line, str):
        line = line.encode()
    kept = _keep(line, _patterns(drop_omp))
    return kept != line and not kept.strip(b"\r\n")


def _keep(line, noise):
    """What to write of one line: all of it; or, when it is a noise line, nothing but what a
    carriage return before it would have let the noise overwrite (a progress bar's last draw)."""
    body = line.rstrip(b"\r\n")
    head, sep, tail = body.rpartition(b"\r")
    if not tail or noise.fullmatch(tail) is None:
        return line
    return head + sep


def _could_be_noise(partial):
    if any(start.startswith(partial) or partial.startswith(start) for start in _STARTS):
        return True
    return _GLOG_START.fullmatch(partial) is not None


def install(environ=None):
    """Quiet this process (idempotent); call before paddle is imported. Returns True if the
    line filter runs, False if only the warnings filters and glog level were set."""
    global _installed
    env = os.environ if environ is None else environ
    if env.get("PADDLEVIDEO_QUIET", "1") == "0":
        return False
    for message in NOISE_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=UserWarning)
    if "GLOG_minloglevel" not in env and "GLOG_v" not in env:
        env["GLOG_minloglevel"] = "1"        # glog INFO is progress chatter, never a warning
    if _installed:
        return True
    if not hasattr(os, "fork") or threading.active_count() > 1 or _already_filtered(env):
        return False
    _installed = _start_filter(env, drop_omp=env.get("PADDLEVIDEO_OMP_AUTO") == "1")
    return _installed


def _inode(fd):
    try:
        st = os.fstat(fd)
    except OSError:
        return None
    return f"{st.st_dev}:{st.st_ino}"


def _already_filtered(env):
    """A child process whose stdout/stderr are its parent's filtered channel needs no filter."""
    ours = set(env.get(_ENV_CHANNELS, "").split(","))
    return bool(ours - {""}) and {_inode(1), _inode(2)} <= ours


def _channel(fd):
    """(read end, write end) for `fd`: a raw pseudo-terminal of the same size if `fd` is a
    terminal, else a pipe."""
    if os.isatty(fd):
        import fcntl
        import termios
        import tty
        master, slave = os.openpty()
        tty.setraw(slave)                       # bytes pass unchanged (no \n -> \r\n)
        try:
            size = fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8)
            fcntl.ioctl(slave, termios.TIOCSWINSZ, size)
        except OSError:
            pass
        return master, slave
    return os.pipe()


def _start_filter(env, drop_omp):
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, OSError, ValueError):
            pass
    if _inode(1) is None or _inode(2) is None:
        return False
    same = _inode(1) == _inode(2) and os.isatty(1) == os.isatty(2)
    targets = [1] if same else [1, 2]
    channels = {fd: _channel(fd) for fd in targets}
    originals = {fd: os.dup(fd) for fd in (1, 2)}
    pid = os.fork()
    if pid == 0:                                 # the filter process
        code = 0
        try:
            for _, write_end in channels.values():
                os.close(write_end)
            for fd in (0, 1, 2):
                try:
                    os.close(fd)
                except OSError:
                    pass
            _run_filter({read: originals[fd] for fd, (read, _) in channels.items()},
                        _patterns(drop_omp))
        except BaseException:                    # never let the helper print a traceback
            code = 1
        finally:
            os._exit(code)
    for fd, (read_end, write_end) in channels.items():
        os.close(read_end)
    os.dup2(channels[1][1], 1)
    os.dup2(channels[1 if same else 2][1], 2)
    for _, write_end in channels.values():
        os.close(write_end)
    env[_ENV_CHANNELS] = ",".join(sorted({_inode(1), _inode(2)}))
    atexit.register(_stop_filter, pid, originals, os.getpid())
    return True


def _stop_filter(pid, originals, owner):
    """At exit: give stdout/stderr back their files, so the helper sees the end of its input and
    finishes copying before the shell prints its prompt."""
    if os.getpid() != owner:                     # a forked child running our atexit hooks
        return
    import time
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, OSError, ValueError):
            pass
    for fd, original in originals.items():
        os.dup2(original, fd)
        os.close(original)
    deadline = time.monotonic() + 1.0            # a leftover child still writing: do not hang
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return
        if done:
            return
        time.sleep(0.01)


def _run_filter(routes, noise):
    """Copy each read fd to its destination fd line by line, leaving out the `noise` lines."""
    import select
    import signal
    import time
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    if hasattr(signal, "SIGWINCH"):
        signal.signal(signal.SIGWINCH, lambda *_: _copy_window_sizes(routes))
    pending = {read: b"" for read in routes}
    held_since = {}
    open_reads = set(routes)
    while open_reads:
        timeout = _HOLD_SECONDS if held_since else None
        try:
            ready, _, _ = select.select(list(open_reads), [], [], timeout)
        except InterruptedError:
            continue
        for read in ready:
            try:
                data = os.read(read, 65536)
            except OSError:                      # EIO: the pseudo-terminal's last writer closed
                data = b""
            if not data:
                open_reads.discard(read)
                _emit(routes[read], pending.pop(read), noise)
                held_since.pop(read, None)
                continue
            rest = _emit_lines(routes[read], pending[read] + data, noise)
            if rest and _could_be_noise(rest.rsplit(b"\r", 1)[-1]):
                pending[read] = rest
                held_since.setdefault(read, time.monotonic())
            else:
                _write(routes[read], rest)
                pending[read] = b""
                held_since.pop(read, None)
        now = time.monotonic()
        for read, since in list(held_since.items()):
            if now - since >= _HOLD_SECONDS:     # not a noise line after all: let it out
                _write(routes[read], pending[read])
                pending[read] = b""
                del held_since[read]


def _emit_lines(dest, data, noise):
    """Write the complete lines of `data` that are not noise; return the unfinished rest."""
    end = data.rfind(b"\n")
    if end < 0:
        return data
    lines = data[:end + 1].split(b"\n")[:-1]
    _write(dest, b"".join(_keep(line + b"\n", noise) for line in lines))
    return data[end + 1:]


def _emit(dest, data, noise):
    if data:
        _write(dest, _keep(data, noise))


def _write(fd, data):
    while data:
        try:
            data = data[os.write(fd, data):]
        except InterruptedError:
            continue
        except OSError:                          # the terminal or reader went away: drop it
            return


def _copy_window_sizes(routes):
    import fcntl
    import termios
    for read, dest in routes.items():
        try:
            size = fcntl.ioctl(dest, termios.TIOCGWINSZ, b"\0" * 8)
            fcntl.ioctl(read, termios.TIOCSWINSZ, size)
        except OSError:
            pass
