"""Wall-clock timing of a callable, as every latency figure here is taken."""
import time

__all__ = ["time_calls"]


def time_calls(fn, runs):
    """Seconds taken by each of `runs` calls of fn(), after one untimed warm-up call (oneDNN and
    ONNX Runtime build their kernels on the first call)."""
    fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times
