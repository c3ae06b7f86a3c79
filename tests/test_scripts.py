"""The shell entry points run as documented: the quick start (twice: the second run reuses),
train_tsm.sh / test_tsm.sh, and the TSN-vs-TSM reproduction, on a tiny demo set, 1 epoch each.

PY is set to this interpreter, so the scripts use the environment the tests run in and install
nothing (scripts/env.sh)."""
import json
import os
import pathlib
import shutil
import subprocess
import sys

import cv2
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# What gives away a line of Paddle's that the commands keep off the terminal (utils/quiet.py)
PADDLE_NOISE = ("No ccache found", "OMP_NUM_THREADS set to", "OMP_NUM_THREADS WISELY",
                "PIR) not support", "ReduceMeanCheckIfOneDNNSupport", "Hardware support for BFLOAT16",
                "always track global mean and variance")
DEMO = "configs/recognition/tsm/tsm_demo.yaml"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """A 50-video demo set (10 classes, 64 px, 8 frames): [-o overrides] pointing a demo config at it."""
    root = tmp_path_factory.mktemp("demo")
    subprocess.run([sys.executable, "data/make_demo.py", "--out", str(root), "--per-class", "2",
                    "--val-per-class", "1", "--test-per-class", "2", "--size", "64", "--frames", "8",
                    "--quiet"], cwd=REPO, check=True, timeout=120)
    overrides = []
    for mode, name in (("train", "train"), ("valid", "val"), ("test", "test")):
        overrides += ["-o", f"DATASET.{mode}.file_path={root}/{name}.list",
                      "-o", f"DATASET.{mode}.data_prefix={root}"]
    return root, overrides


def run(cmd, **kw):
    env = dict(os.environ, PY=sys.executable)
    out = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600, **kw)
    return out.returncode, out.stdout + out.stderr


@pytest.fixture
def default_output_dir():
    """A model name of its own, so the quick start writes to its default output/<model_name>
    (as a user's run does) without touching a user's output/TSM_demo; removed afterwards."""
    name = f"quickstart_test_{os.getpid()}"
    out = os.path.join(REPO, "output", name)
    yield name, out
    shutil.rmtree(out, ignore_errors=True)


def test_quickstart_runs_end_to_end_then_reuses_what_it_made(demo, default_output_dir):
    root, overrides = demo
    name, out = default_output_dir
    out = pathlib.Path(out)
    cmd = ["bash", "scripts/quickstart.sh", "-o", "epochs=1", "-o", f"model_name={name}"] + overrides
    code, log = run(cmd)
    assert code == 0, log[-3000:]
    for step in ("1/6", "2/6", "3/6", "4/6", "5/6", "6/6"):
        assert f"== {step}" in log
    assert f"using {sys.executable} as it is" in log
    assert f"reusing {root}" in log                          # the data was there already
    assert not [line for line in log.splitlines() if any(m in line for m in PADDLE_NOISE)]
    assert "Test top-1 on the demo set: 0." in log and "== Done in" in log
    (tested,) = out.glob(f"test_{name}_best__*")          # named after weights, list, protocol
    result = json.loads((tested / "test_results.json").read_text())
    assert (result["evaluated"], result["failed"]) == (20, 0)
    export = out / "inference"
    assert (export / f"{name}.json").is_file() and (export / f"{name}.pdiparams").is_file()
    labels = (root / "label_list.txt").read_text().split()
    rows = [json.loads(x) for x in (out / "predict_demo.jsonl").read_text().splitlines()]
    assert rows and all(r["top1"] in labels for r in rows)
    checkpoint = out / f"{name}_epoch_00001.pdparams"
    made = checkpoint.stat().st_mtime_ns

    code, log = run(cmd)
    assert code == 0, log[-3000:]
    assert "reusing the trained model" in log and checkpoint.stat().st_mtime_ns == made


def test_quickstart_refuses_other_arguments():
    code, log = run(["bash", "scripts/quickstart.sh", "--epochs", "3"])
    assert code != 0 and "takes only -o KEY=VALUE overrides" in log


def test_train_and_test_scripts(demo, tmp_path):
    _, overrides = demo
    out = tmp_path / "out"
    code, log = run(["bash", "scripts/train/train_tsm.sh", DEMO, "-o", "epochs=1",
                     "-o", f"output_dir={out}"] + overrides)
    assert code == 0, log[-3000:]
    assert "training on the CPU" in log or "GPU" in log
    assert (out / "TSM_demo_best.pdparams").is_file()          # --validate was added
    code, log = run(["bash", "scripts/test/test_tsm.sh", str(out / "TSM_demo_best.pdparams"), DEMO,
                     "-o", f"output_dir={out}"] + overrides)
    assert code == 0, log[-3000:]
    (tested,) = out.glob("test_TSM_demo_best__*")        # named after weights, list, protocol
    assert json.loads((tested / "test_results.json").read_text())["evaluated"] == 20


def test_train_script_says_how_to_make_missing_lists(tmp_path):
    lists = ["-o", f"DATASET.train.file_path={tmp_path}/mine/train.list",
             "-o", f"DATASET.valid.file_path={tmp_path}/mine/val.list"]
    code, log = run(["bash", "scripts/train/train_tsm.sh", DEMO] + lists)
    assert code == 1 and "Traceback" not in log
    assert f"DATASET.train.file_path: {tmp_path}/mine/train.list" in log
    assert f"DATASET.valid.file_path: {tmp_path}/mine/val.list" in log
    assert "as described in docs/data.md" in log
    code, log = run(["bash", "scripts/train/train_tsm.sh", DEMO] +
                    [x.replace("/mine/", "/demo/") for x in lists])
    assert code == 1 and "python data/make_demo.py" in log


def test_reproduce_demo_writes_the_table_and_plot(demo, tmp_path):
    _, overrides = demo
    out = tmp_path / "repro"
    cmd = [sys.executable, "scripts/reproduce_demo.py", "--seeds", "0", "1", "--variants", "tsn",
           "tsm", "--out", str(out), "-o", "epochs=1"] + overrides
    code, log = run(cmd)
    assert code == 0, log[-3000:]
    results = json.loads((out / "results.json").read_text())["results"]
    assert sorted(results) == ["tsm", "tsn"]
    for runs in results.values():
        assert [r["seed"] for r in runs] == [0, 1]
        for r in runs:
            assert 0 <= r["top1"] <= 1 and 0 <= r["twin_accuracy"] <= 1
            assert [e for e, _ in r["val_curve"]] == [1]
    table = (out / "results.md").read_text()
    assert "--seeds 0 1 --variants tsn tsm -o epochs=1" in table
    rows = [line for line in table.splitlines() if line.startswith("| TS")]
    assert len(rows) == 2 and all(line.endswith("| 2 |") for line in rows)
    tsn = [100 * r["top1"] for r in results["tsn"]]
    assert f"{sum(tsn) / 2:.1f} ± " in rows[0]
    assert cv2.imread(str(out / "val_accuracy.png")) is not None

    # the same folder with other settings is an error, not a silently mixed table
    code, log = run(cmd[:-len(overrides) - 1] + ["epochs=2"] + overrides)
    assert code != 0 and "holds a run with other settings" in log
