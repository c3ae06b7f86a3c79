"""Two CPU processes through paddle.distributed.launch (gloo): identical parameters on both
ranks, rank 0 alone writes, validation counts every video once."""
import os
import re
import subprocess
import sys

import numpy as np

from synthetic import write_config

HERE = os.path.dirname(os.path.abspath(__file__))


def test_two_cpu_processes_end_with_identical_parameters(tmp_path):
    # 13 validation videos: a padding sampler would score 14; ours must score 13
    path = write_config(tmp_path, epochs=1, train=16, valid=13, batch_size=4, lr=0.01)
    env = dict(os.environ)
    env.pop("OMP_NUM_THREADS", None)
    cmd = [sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", "2",
           "--log_dir", str(tmp_path / "logs"), os.path.join(HERE, "dist_worker.py"), path,
           str(tmp_path)]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=240, cwd=tmp_path)
    logs = "".join(open(os.path.join(tmp_path / "logs", f)).read()
                   for f in sorted(os.listdir(tmp_path / "logs")) if f.startswith("workerlog"))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:] + logs[-5000:]
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
