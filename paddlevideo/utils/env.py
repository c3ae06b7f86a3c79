"""Process set-up that must happen before `import paddle`: the CPU thread count.

`import paddle` sets OMP_NUM_THREADS=1 when it is unset, and the OpenMP runtime reads it once, so
without this a CPU run uses one core. `configure_cpu_threads()` gives each process on the machine
an equal share of the cores (cores / processes started by the launcher on this node). It must be
called before paddle is imported; this module itself imports nothing heavy.
"""
import os

__all__ = ["configure_cpu_threads", "cpu_threads", "available_cores"]


def available_cores():
    """Cores this process may run on (its CPU affinity, else all): the one core count used for
    training threads, --test and the inference engines."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def configure_cpu_threads(environ=None):
    """Set OMP_NUM_THREADS to this process's share of the cores unless the user set it.

    Returns (threads, source): source is 'OMP_NUM_THREADS' when the user chose, 'auto' otherwise.
    """
    env = os.environ if environ is None else environ
    # paddle.distributed.launch imports paddle itself, which exports OMP_NUM_THREADS=1 to the
    # workers it starts; under the launcher a 1 is therefore Paddle's default, not a choice.
    launched_default = env.get("PADDLE_LOCAL_SIZE") and env.get("OMP_NUM_THREADS") == "1"
    if (env.get("PADDLEVIDEO_OMP_AUTO") != "1" and env.get("OMP_NUM_THREADS")
            and not launched_default):
        try:
            return int(env["OMP_NUM_THREADS"]), "OMP_NUM_THREADS"
        except ValueError:
            pass
    local = 1
    for key in ("PADDLE_LOCAL_SIZE", "PADDLE_TRAINERS_NUM"):
        if env.get(key, "").isdigit() and int(env[key]) > 0:
            local = int(env[key])
            break
    threads = max(1, available_cores() // local)
    env["OMP_NUM_THREADS"] = str(threads)
    env["PADDLEVIDEO_OMP_AUTO"] = "1"    # ours, not the user's: recomputed in child processes
    return threads, "auto"


def cpu_threads():
    """(threads, how they were chosen) for the log, after configure_cpu_threads ran (or not)."""
    value = os.environ.get("OMP_NUM_THREADS", "1")
    if os.environ.get("PADDLEVIDEO_OMP_AUTO") == "1":
        return int(value), "all cores shared among this node's processes"
    return int(value) if value.isdigit() else 1, "from OMP_NUM_THREADS"
