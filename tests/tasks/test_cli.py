"""tools/main.py: PaddleVideo's flags, readable errors with file and line, exit codes, threads."""
import os
import subprocess
import sys

from paddlevideo.tasks.cli import build_parser
from paddlevideo.utils.env import configure_cpu_threads
from synthetic import write_config

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MAIN = os.path.join(REPO, "tools", "main.py")


def run_main(*args, env=None):
    return subprocess.run([sys.executable, MAIN, *args], capture_output=True, text=True,
                          cwd=REPO, env=env, timeout=120)


def test_paddlevideo_flags_parse():
    a = build_parser().parse_args(["-c", "x.yaml", "-o", "epochs=1", "-o", "DATASET.batch_size=2",
                                   "--validate", "--seed", "7", "--max_iters", "3", "--amp",
                                   "--amp_level", "O2", "-w", "w.pdparams", "--resume"])
    assert a.override == ["epochs=1", "DATASET.batch_size=2"]
    assert (a.validate, a.seed, a.max_iters, a.amp, a.amp_level, a.weights, a.resume) == \
        (True, 7, 3, True, "O2", "w.pdparams", True)


def test_unknown_key_error_names_file_line_and_fix(tmp_path):
    path = write_config(tmp_path, more="epoch_count: 3\n")
    r = run_main("-c", path)
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    line = open(path).read().splitlines().index("epoch_count: 3") + 1
    assert f"{path}:{line}" in r.stderr and "epoch_count" in r.stderr


def test_bad_override_and_test_without_weights(tmp_path):
    path = write_config(tmp_path)
    r = run_main("-c", path, "-o", "OPTIMIZER.learnig_rate=0.1")
    assert r.returncode == 1 and "learnig_rate" in r.stderr and "Traceback" not in r.stderr
    # a shipped config: this process's tools/main.py does not know the tests' SyntheticMotion
    r = run_main("-c", os.path.join(REPO, "configs", "recognition", "tsm", "tsm_demo.yaml"), "--test")
    assert r.returncode == 1 and "-w" in r.stderr and "Traceback" not in r.stderr


def test_missing_data_list_is_one_clear_line(tmp_path):
    demo = os.path.join(REPO, "configs", "recognition", "tsm", "tsm_demo.yaml")
    r = run_main("-c", demo, "-o", "DATASET.train.file_path=nowhere/t.list",
                 "-o", f"output_dir={tmp_path}/out")
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert "nowhere/t.list" in r.stderr


def test_cpu_threads_use_all_cores_unless_the_user_chose():
    env = {}
    threads, how = configure_cpu_threads(env)
    assert how == "auto" and threads == len(os.sched_getaffinity(0)) and env["OMP_NUM_THREADS"]
    assert configure_cpu_threads({"OMP_NUM_THREADS": "3"}) == (3, "OMP_NUM_THREADS")
    # under the launcher, the 1 that `import paddle` exported is not a user's choice
    env = {"OMP_NUM_THREADS": "1", "PADDLE_LOCAL_SIZE": "2"}
    threads, how = configure_cpu_threads(env)
    assert how == "auto" and threads == max(1, len(os.sched_getaffinity(0)) // 2)
