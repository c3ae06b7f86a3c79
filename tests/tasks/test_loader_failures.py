"""The loader's threads and workers never hang or outlive a run: an exception in the batch
sampler, a dataset or the collate step ends the run with its message (exit 1, one line), and
the workers of a SIGKILLed training die with it. Each run is a process of its own with a
timeout, so a hang fails the test instead of hanging the suite."""
import os
import signal
import subprocess
import sys
import time

import pytest

from synthetic import write_config

HERE = os.path.dirname(os.path.abspath(__file__))
WORKER = os.path.join(HERE, "cli_worker.py")
TIMEOUT = 120


def run_training(path, env_extra, *args):
    env = dict(os.environ, **env_extra)
    proc = subprocess.Popen([sys.executable, WORKER, "-c", path, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()                     # SIGTERM does not end a hung loader; SIGKILL does
        proc.communicate()
        pytest.fail(f"the training hung (no exit within {TIMEOUT} s) with {env_extra}")
    return proc.returncode, out, err


@pytest.mark.parametrize("workers", [0, 2])
def test_a_sampler_error_ends_the_run_with_its_message(tmp_path, workers):
    path = write_config(tmp_path, epochs=1, train=32, batch_size=4)
    code, _, err = run_training(path, {"PV_TEST_SAMPLER_FAILS_AT": "3"}, "-o",
                                f"DATASET.num_workers={workers}")
    assert code == 1, err[-2000:]
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err, err[-2000:]
    assert "the batch sampler ShuffledBatchSampler raised RuntimeError: sampler broke at " \
           "batch 3" in lines[0]
    assert "error: the batch sampler" in (tmp_path / "out" / "train.log").read_text()


@pytest.mark.parametrize("workers", [0, 2])
def test_a_dataset_bug_ends_the_run_with_its_message(tmp_path, workers):
    path = write_config(tmp_path, epochs=1, train=32, batch_size=4)
    code, _, err = run_training(path, {"PV_TEST_LOAD_FAILS_AT": "13"}, "-o",
                                f"DATASET.num_workers={workers}")
    assert code == 1, err[-2000:]
    assert "Traceback" not in err, err[-2000:]
    assert "error: loading sample 13 (synthetic://train/0013) raised ValueError: cannot load " \
           "sample 13: a bug in the dataset (at " in err


def _children(pid):
    """The pids of `pid`'s child processes (any thread's)."""
    found = set()
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/children") as f:
                found.update(int(c) for c in f.read().split())
        except OSError:
            pass
    return found


def _alive(pid):
    """True while `pid` exists and is not a zombie (an unreaped zombie holds no memory)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc; prctl is Linux's")
def test_workers_die_with_a_sigkilled_training(tmp_path):
    """Each sample takes 5 s to load (a long video): without the parent-death signal a worker
    notices its parent's death only when its load is done, then blocks at exit on a pipe that
    nobody reads."""
    path = write_config(tmp_path, epochs=1, train=16, batch_size=4)
    env = dict(os.environ, PV_TEST_SLOW_LOAD="5")
    proc = subprocess.Popen([sys.executable, WORKER, "-c", path, "-o", "DATASET.num_workers=2"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        deadline, workers = time.time() + TIMEOUT, set()
        while time.time() < deadline and len(workers) < 2:
            assert proc.poll() is None, "the training ended before its workers started"
            workers = _children(proc.pid)
            time.sleep(0.2)
        assert len(workers) >= 2, f"no loader workers appeared within {TIMEOUT} s"
        time.sleep(1)                               # they are loading now
        os.kill(proc.pid, signal.SIGKILL)          # as the OOM killer does
        proc.wait(timeout=10)
        deadline = time.time() + 3
        while time.time() < deadline and any(_alive(w) for w in workers):
            time.sleep(0.1)
        left = [w for w in workers if _alive(w)]
    finally:
        for pid in _children(proc.pid) if proc.poll() is None else ():
            os.kill(pid, signal.SIGKILL)
        if proc.poll() is None:
            proc.kill()
    try:
        assert not left, f"loader workers {left} outlived their SIGKILLed training by 3 s"
    finally:
        for pid in left:                            # do not leave them to the next test
            os.kill(pid, signal.SIGKILL)
