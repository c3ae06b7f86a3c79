"""Training: it learns, logs as PaddleVideo does, resumes exactly, stops cleanly."""
import json
import os
import re
import shutil
import signal

import cv2
import numpy as np
import paddle
import pytest

from paddlevideo.modeling.heads.tsn_head import TSMHead
from paddlevideo.tasks.common import TaskError
from paddlevideo.tasks import test as test_task
from paddlevideo.tasks.train import TrainingDiverged, TrainingInterrupted, train_model
from paddlevideo.utils.checkpoint import list_checkpoints
from paddlevideo.utils.config import ConfigError, get_config
from synthetic import write_config

LINE = re.compile(r"epoch:\[\s*\d+/\d+\s*\] train step:\d+\s+loss: \d+\.\d{5} lr: \d\.\d{6} "
                  r"top1: \d\.\d{5} top5: \d\.\d{5} batch_cost: \d+\.\d{5} sec, reader_cost: "
                  r"\d+\.\d{5} sec, ips: \d+\.\d{5} instance/sec, eta: \d+:\d\d:\d\d")
END = re.compile(r"END epoch:(\d+)\s+train loss_avg: (\d+\.\d+) lr_avg: \S+ top1_avg: (\d\.\d+)")


def params(path):
    return {k: np.asarray(v) for k, v in paddle.load(str(path)).items()}


def assert_same_params(a, b):
    pa, pb = params(a), params(b)
    assert pa.keys() == pb.keys()
    for key in pa:
        np.testing.assert_array_equal(pa[key], pb[key], err_msg=key)


def test_training_learns_logs_saves_and_tests(tmp_path):
    path = write_config(tmp_path, epochs=5, lr="{name: PiecewiseDecay, boundaries: [4], "
                                               "values: [0.005, 0.001]}")
    cfg = get_config(path)
    result = train_model(cfg, validate=True)
    out = tmp_path / "out"
    log = (out / "train.log").read_text()
    assert LINE.search(log), log[:2000]
    ends = [(int(e), float(l), float(t)) for e, l, t in END.findall(log)]
    assert [e for e, _, _ in ends] == list(range(1, 6))
    assert ends[-1][1] < ends[0][1] / 2, ends           # the epoch loss falls
    assert ends[-1][2] >= 0.75                            # and the model fits the training set
    assert result["best_top1"] >= 0.6                     # chance is 0.25
    assert "math thread(s)" in log and "global batch 8" in log
    for e in range(1, 6):
        for ext in (".pdparams", ".pdopt"):
            assert (out / f"Tiny_epoch_{e:05d}{ext}").is_file()
    assert (out / "Tiny_best.pdparams").is_file() and (out / "Tiny_best.pdopt").is_file()
    assert any(f.startswith("vdlrecords") for f in os.listdir(out / "vdl"))
    assert not os.path.exists("train.log")

    # --test on the best checkpoint: the fast engine gives dygraph's answers
    fast = test_task.test_model(cfg, str(out / "Tiny_best.pdparams"), engine="inference")
    tested = out / "test_Tiny_best"                       # the results are named after the weights
    rows = [json.loads(x) for x in (tested / "predictions.jsonl").read_text().splitlines()]
    slow = test_task.test_model(cfg, str(out / "Tiny_best.pdparams"), engine="dygraph")
    rows_slow = [json.loads(x) for x in (tested / "predictions.jsonl").read_text().splitlines()]
    assert fast["engine"] == "inference" and slow["engine"] == "dygraph"
    assert (fast["top1"], fast["top5"], fast["evaluated"]) == (slow["top1"], slow["top5"], 16)
    np.testing.assert_allclose([r["score"] for r in rows], [r["score"] for r in rows_slow],
                               atol=1e-4)
    assert fast["protocol"] == "4 segments x 1 clip x 1 crop, 32x32 input"
    assert fast["top1"] >= 0.5
    assert cv2.imread(str(tested / "confusion_matrix.png")) is not None
    # a video that cannot be decoded is left out of the scores and listed, never replaced
    bad = test_task.test_model(get_config(path, ["DATASET.test.bad=[2]"]),
                               str(out / "Tiny_best.pdparams"))
    assert (bad["evaluated"], bad["failed"]) == (15, 1)
    assert bad["failed_files"] == ["synthetic://test/0002"]
    rows = [json.loads(x) for x in (tested / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 16 and rows[-1] == {"id": 2, "path": "synthetic://test/0002", "failed": True}
    test_log = (tested / "test.log").read_text()
    assert "1 of 16 test samples failed to load" in test_log
    assert "[TEST] finished, avg_acc1=" in test_log and "mean_class_acc=" in test_log


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted 2-epoch run: (config path maker, final checkpoint)."""
    tmp = tmp_path_factory.mktemp("ref")
    cfg = get_config(small_config(tmp))
    train_model(cfg)
    return str(tmp / "out" / "Tiny_epoch_00002.pdparams")


def small_config(tmp_path, **kw):
    """2 epochs of 4 steps of 4 clips: enough to resume at and inside an epoch, and quick."""
    args = dict(epochs=2, lr=0.01, train=16, batch_size=4)
    args.update(kw)
    return write_config(tmp_path, **args)


def interrupted_run(tmp_path, monkeypatch, at_step):
    """Train with a SIGTERM raised during training step `at_step` (1-based, counted across
    epochs); expect a clean stop once that step is done.

    The signal comes from the loss of that step, in the main thread, so where the run stops does
    not depend on how far the loader's prefetch thread has got."""
    calls = []
    loss = TSMHead.loss

    def loss_then_signal(head, scores, labels):
        if head.training:
            calls.append(1)
            if len(calls) == at_step:
                os.kill(os.getpid(), signal.SIGTERM)
        return loss(head, scores, labels)

    monkeypatch.setattr(TSMHead, "loss", loss_then_signal)
    path = small_config(tmp_path)
    with pytest.raises(TrainingInterrupted, match="--resume") as info:
        train_model(get_config(path))
    assert info.value.signum == signal.SIGTERM
    monkeypatch.setattr(TSMHead, "loss", loss)
    return path


def test_sigterm_at_epoch_boundary_then_resume_equals_uninterrupted(tmp_path, monkeypatch,
                                                                    reference):
    path = interrupted_run(tmp_path, monkeypatch, at_step=4)     # the last step of epoch 1
    out = tmp_path / "out"
    assert not (out / "Tiny_epoch_00002.pdparams").exists()
    assert [c[:2] for c in list_checkpoints(str(out), "Tiny")] == [(1, 0)]
    shutil.copytree(out, tmp_path / "copy")
    train_model(get_config(path), resume=True)
    assert_same_params(out / "Tiny_epoch_00002.pdparams", reference)
    # the config way: resume_epoch: 1
    train_model(get_config(path, ["resume_epoch=1", f"output_dir={tmp_path}/copy"]))
    assert_same_params(tmp_path / "copy" / "Tiny_epoch_00002.pdparams", reference)


def test_sigterm_mid_epoch_then_resume_equals_uninterrupted(tmp_path, monkeypatch, reference):
    path = interrupted_run(tmp_path, monkeypatch, at_step=4 + 3)  # step 3 of 4 in epoch 2
    out = tmp_path / "out"
    assert [c[:2] for c in list_checkpoints(str(out), "Tiny")] == [(1, 0), (1, 3)]
    assert (out / "Tiny_epoch_00002_step_00003.pdopt").is_file()
    train_model(get_config(path), resume=True)
    log = (out / "train.log").read_text()
    assert "resumed from" in log and "Tiny_epoch_00002_step_00003" in log
    assert "skipping the 3 steps of epoch 2" in log
    assert_same_params(out / "Tiny_epoch_00002.pdparams", reference)


def test_nan_loss_stops_with_message_and_keeps_last_checkpoint(tmp_path):
    path = small_config(tmp_path, epochs=3, extra_train=", nan_from: 20")
    with pytest.raises(TrainingDiverged, match=r"loss became nan at epoch 2.*Tiny_epoch_00001"):
        train_model(get_config(path))
    out = tmp_path / "out"
    assert sorted(os.listdir(out)).count("Tiny_epoch_00001.pdparams") == 1
    assert not (out / "Tiny_epoch_00002.pdparams").exists()
    assert all(np.isfinite(v).all() for v in params(out / "Tiny_epoch_00001.pdparams").values())
    assert not [f for f in os.listdir(out) if ".tmp-" in f]


def test_bad_files_are_skipped_then_stop_the_run_past_max_bad_ratio(tmp_path):
    path = write_config(tmp_path, epochs=1, extra_train=", bad: [3]",
                        more="max_bad_ratio: 0.05\n")
    train_model(get_config(path))                       # 1 of 32 bad: allowed, logged
    assert "synthetic://train/0003" in (tmp_path / "out" / "train.log").read_text()
    path = write_config(tmp_path, name="b.yaml", epochs=1, extra_train=", bad: [3, 4, 5]",
                        more="max_bad_ratio: 0.05\n")
    with pytest.raises(TaskError, match=r"2 of 32 train samples failed.*max_bad_ratio=0.05(.|\n)*0003"):
        train_model(get_config(path))


def test_amp_on_cpu_stops_with_a_clear_message(tmp_path):
    """Paddle's auto_cast does nothing on CPU; --amp must say so rather than train in fp32."""
    path = write_config(tmp_path, epochs=1, train=16)
    for dtype in ("float16", "bfloat16"):
        with pytest.raises(ConfigError, match="needs a GPU.*no effect on CPU"):
            train_model(get_config(path), amp=True, amp_level="O2", amp_dtype=dtype)
    assert not (tmp_path / "out" / "Tiny_epoch_00001.pdparams").exists()
