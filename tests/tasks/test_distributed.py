"""Two CPU processes through paddle.distributed.launch (gloo), on one node and as two nodes:
identical parameters on both ranks, rank 0 alone writes, validation counts every video once."""
import os
import re
import socket
import subprocess
import sys

import numpy as np

from synthetic import write_config

HERE = os.path.dirname(os.path.abspath(__file__))
LAUNCH = [sys.executable, "-m", "paddle.distributed.launch"]


def worker_logs(*log_dirs):
    return "".join(open(os.path.join(d, f)).read() for d in log_dirs
                   for f in sorted(os.listdir(d)) if f.startswith("workerlog"))


def check_run(tmp_path):
    """Both ranks hold the same parameters; rank 0 logged and saved; 13 videos scored once."""
    a, b = np.load(tmp_path / "rank0.npz"), np.load(tmp_path / "rank1.npz")
    assert sorted(a.files) == sorted(b.files) and len(a.files) > 50
    for key in a.files:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    log = (tmp_path / "out" / "train.log").read_text()
    assert "2 process(es), 4 clips each = global batch 8" in log
    assert "2 steps per epoch" in log                         # 16 videos / (2 ranks x 4)
    assert re.search(r"\[EVAL\] epoch:1 .*\(13 videos, 0 failed", log), log[-2000:]
    assert (tmp_path / "out" / "Tiny_epoch_00001.pdparams").is_file()
    assert not list((tmp_path / "out").glob("*rank1*"))


def setup_run(tmp_path):
    # 13 validation videos: a padding sampler would score 14; ours must score 13
    path = write_config(tmp_path, epochs=1, train=16, valid=13, batch_size=4, lr=0.01)
    env = dict(os.environ)
    env.pop("OMP_NUM_THREADS", None)
    return [os.path.join(HERE, "dist_worker.py"), path, str(tmp_path)], env


def test_two_cpu_processes_end_with_identical_parameters(tmp_path):
    worker, env = setup_run(tmp_path)
    cmd = LAUNCH + ["--nproc_per_node", "2", "--log_dir", str(tmp_path / "logs")] + worker
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=240, cwd=tmp_path)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:] + \
        worker_logs(tmp_path / "logs")[-5000:]
    check_run(tmp_path)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_nodes_end_with_identical_parameters(tmp_path):
    """Two launchers on this machine as two nodes of one process each (--nnodes 2, master on
    127.0.0.1), as a cluster runs them (docs/training.md, several machines)."""
    worker, env = setup_run(tmp_path)
    master = f"127.0.0.1:{free_port()}"
    nodes = [subprocess.Popen(LAUNCH + ["--master", master, "--nnodes", "2", "--rank", str(rank),
                                        "--nproc_per_node", "1", "--log_dir",
                                        str(tmp_path / f"node{rank}")] + worker,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env=env, cwd=tmp_path) for rank in (0, 1)]
    try:
        outputs = [node.communicate(timeout=240)[0] for node in nodes]
    finally:
        for node in nodes:
            if node.poll() is None:
                node.kill()
    logs = worker_logs(*(tmp_path / f"node{rank}" for rank in (0, 1)
                         if (tmp_path / f"node{rank}").is_dir()))
    assert [node.returncode for node in nodes] == [0, 0], \
        "".join(o[-2000:] for o in outputs) + logs[-5000:]
    check_run(tmp_path)
