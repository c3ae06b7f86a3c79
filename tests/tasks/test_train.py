"""Training: it learns, logs as PaddleVideo does, draws its curves, keeps the last checkpoints,
resumes exactly (and only a checkpoint that fits), never overwrites another run, stops cleanly,
leaves no worker processes behind, and writes every failure to train.log."""
import glob
import json
import os
import re
import shutil
import signal
from pathlib import Path

import cv2
import numpy as np
import paddle
import paddle.nn.functional as F
import pytest

import synthetic
from paddlevideo.modeling import build_model
from paddlevideo.modeling.heads.tsn_head import TSMHead
from paddlevideo.modeling.weights import WeightsError
from paddlevideo.tasks.common import TaskError
from paddlevideo.tasks import test as test_task
from paddlevideo.tasks.train import Trainer, TrainingDiverged, TrainingInterrupted, train_model
from paddlevideo.utils.checkpoint import CheckpointError, META_KEY, list_checkpoints
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


def validation_loss(cfg, weights):
    """The mean cross-entropy of `weights` on the valid set, computed here sample by sample."""
    model = build_model(cfg.MODEL, load_pretrained=False)
    model.set_state_dict(paddle.load(str(weights)))
    model.eval()
    data = synthetic.SyntheticMotion(mode="valid", num_samples=16, num_seg=4, size=32)
    losses = []
    with paddle.no_grad():
        for i in range(len(data)):
            imgs, label = data.load(i)
            logp = F.log_softmax(model(paddle.to_tensor(imgs[None])), axis=-1).numpy()[0]
            losses.append(-float(logp[label]))
    return float(np.mean(losses))


def test_training_learns_logs_saves_and_tests(tmp_path):
    path = write_config(tmp_path, epochs=5, lr="{name: PiecewiseDecay, boundaries: [4], "
                                               "values: [0.005, 0.001]}",
                        more="keep_checkpoints: 2\n")
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
    # keep_checkpoints: 2 keeps epochs 4 and 5 (model and optimizer) and the best
    assert sorted(glob.glob(str(out / "Tiny_*.pd*"))) == sorted(
        str(out / f"Tiny_{n}.{ext}") for n in ("epoch_00004", "epoch_00005", "best")
        for ext in ("pdparams", "pdopt"))
    assert "removed Tiny_epoch_00003 (keep_checkpoints=2)" in log
    assert any(f.startswith("vdlrecords") for f in os.listdir(out / "vdl"))
    assert not os.path.exists("train.log")
    # the curves: every epoch's train and validation figures, the rate at every logged step, and
    # a validation loss that is the model's cross-entropy on the valid set
    curves = json.loads((out / "training_curves.json").read_text())
    assert [row["epoch"] for row in curves["epochs"]] == [1, 2, 3, 4, 5]
    assert [round(row["train_loss"], 5) for row in curves["epochs"]] == [l for _, l, _ in ends]
    evals = re.findall(r"\[EVAL\] epoch:(\d+)\s+top1: (\S+) .* loss: (\S+) \(16 videos", log)
    assert [v for row in curves["epochs"] for v in (row["val_top1"], row["val_loss"])] == \
        pytest.approx([float(v) for _, t, l in evals for v in (t, l)], abs=1e-5)
    assert curves["epochs"][-1]["val_loss"] == pytest.approx(
        validation_loss(cfg, out / "Tiny_epoch_00005.pdparams"), rel=1e-4)
    assert [lr for _, lr in curves["lr"]] == [0.005] * 16 + [0.001] * 4
    picture = cv2.imread(str(out / "training_curves.png"))
    assert picture is not None and picture.shape[:2] == (380, 1300)

    # --test on the best checkpoint: the fast engine gives dygraph's answers
    fast = test_task.test_model(cfg, str(out / "Tiny_best.pdparams"), engine="inference")
    tested = Path(fast["results_dir"])            # named after the weights, list and protocol
    assert tested.name.startswith("test_Tiny_best__")
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
    # (1 of 16 is more than the default max_bad_ratio 0.01 allows: raised on purpose here)
    bad = test_task.test_model(get_config(path, ["DATASET.test.bad=[2]",
                                                 "DATASET.max_bad_ratio=0.1"]),
                               str(out / "Tiny_best.pdparams"))
    assert (bad["evaluated"], bad["failed"]) == (15, 1)
    assert bad["failed_files"] == ["synthetic://test/0002"]
    damaged = Path(bad["results_dir"])                 # another test set: another folder
    assert damaged != tested and (tested / "predictions.jsonl").is_file()
    rows = [json.loads(x) for x in (damaged / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 16 and rows[-1] == {"id": 2, "path": "synthetic://test/0002", "failed": True}
    test_log = (damaged / "test.log").read_text()
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
    assert "stopped: training stopped by SIGTERM after 1 epochs" in (out / "train.log").read_text()
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
    loaded = []
    load = synthetic.SyntheticMotion.load
    monkeypatch.setattr(synthetic.SyntheticMotion, "load",
                        lambda ds, i, rng=None: loaded.append(i) or load(ds, i, rng))
    train_model(get_config(path), resume=True)
    log = (out / "train.log").read_text()
    assert "resumed from" in log and "Tiny_epoch_00002_step_00003" in log
    assert "skipping the 3 steps of epoch 2" in log
    assert_same_params(out / "Tiny_epoch_00002.pdparams", reference)
    # the 3 finished batches were skipped in the sampler: only the last batch of 4 was loaded
    assert len(loaded) == 4
    # the interrupted checkpoint went once its epoch was complete
    assert [c[:2] for c in list_checkpoints(str(out), "Tiny")] == [(1, 0), (2, 0)]
    # the curves go on where the interrupted run left them: each epoch and logged step once
    curves = json.loads((out / "training_curves.json").read_text())
    assert [row["epoch"] for row in curves["epochs"]] == [1, 2]
    assert [p for p, _ in curves["lr"]] == [0.25 * i for i in range(8)]
    # a finished run says so and trains nothing
    made = (out / "Tiny_epoch_00002.pdparams").stat().st_mtime_ns
    result = train_model(get_config(path), resume=True)
    assert result["epochs_done"] == 2 and len(loaded) == 4
    assert "nothing to train: " in (out / "train.log").read_text()
    assert (out / "Tiny_epoch_00002.pdparams").stat().st_mtime_ns == made


def test_nan_loss_stops_with_message_and_keeps_last_checkpoint(tmp_path, monkeypatch):
    # the loss of epoch 2's step 1 (the 6th training step) is NaN; losses are read back only at
    # log steps (0 and 3 here), yet the run stops before anything is saved, naming that step
    calls = []
    loss = TSMHead.loss

    def nan_at_step_6(head, scores, labels):
        out = loss(head, scores, labels)
        if head.training:
            calls.append(1)
            if len(calls) == 6:
                out["loss"] = out["loss"] * float("nan")
        return out

    monkeypatch.setattr(TSMHead, "loss", nan_at_step_6)
    path = small_config(tmp_path, epochs=3)
    with pytest.raises(TrainingDiverged, match=r"loss became nan at epoch 2, step 1;.*"
                                               r"Tiny_epoch_00001"):
        train_model(get_config(path, ["log_interval=3"]))
    assert len(calls) == 8                          # found at the log step ending epoch 2
    out = tmp_path / "out"
    assert [c[:2] for c in list_checkpoints(str(out), "Tiny")] == [(1, 0)]
    assert all(np.isfinite(v).all() for v in params(out / "Tiny_epoch_00001.pdparams").values())
    assert not [f for f in os.listdir(out) if ".tmp-" in f]
    assert "error: the loss became nan at epoch 2, step 1" in (out / "train.log").read_text()


def test_bad_files_are_skipped_then_stop_the_run_past_max_bad_ratio(tmp_path):
    path = write_config(tmp_path, epochs=1, extra_train=", bad: [3]",
                        more="max_bad_ratio: 0.05\n")
    train_model(get_config(path))                       # 1 of 32 bad: allowed, logged
    assert "synthetic://train/0003" in (tmp_path / "out" / "train.log").read_text()
    path = write_config(tmp_path, name="b.yaml", epochs=1, extra_train=", bad: [3, 4, 5]",
                        more="max_bad_ratio: 0.05\n")
    with pytest.raises(TaskError, match=r"2 of 32 train samples failed.*max_bad_ratio=0.05(.|\n)*0003"):
        train_model(get_config(path, [f"output_dir={tmp_path}/b"]))
    assert "error: 2 of 32 train samples failed" in (tmp_path / "b" / "train.log").read_text()


def test_amp_on_cpu_stops_with_a_clear_message(tmp_path):
    """Paddle's auto_cast does nothing on CPU; --amp must say so rather than train in fp32."""
    path = write_config(tmp_path, epochs=1, train=16)
    for dtype in ("float16", "bfloat16"):
        with pytest.raises(ConfigError, match="needs a GPU.*no effect on CPU"):
            train_model(get_config(path), amp=True, amp_level="O2", amp_dtype=dtype)
    assert not (tmp_path / "out" / "Tiny_epoch_00001.pdparams").exists()
    assert "error: --amp (O2, bfloat16) needs a GPU" in (tmp_path / "out" / "train.log").read_text()


def test_resume_refuses_a_checkpoint_that_does_not_fit_the_config(tmp_path, reference):
    """Checked before anything trains: the class count, the backbone (depth, segments), the
    optimizer; from the meta of new checkpoints and from tensor shapes for older ones."""
    out = os.path.dirname(reference)                      # 2 epochs of a 4-class R18, Momentum
    before = sorted((f, os.stat(os.path.join(out, f)).st_mtime_ns) for f in os.listdir(out)
                    if f.endswith((".pdparams", ".pdopt")))
    base = small_config(tmp_path)
    cases = [(["MODEL.head.num_classes=3"], r"MODEL.head.num_classes \(checkpoint 4, this run 3\)"),
             (["MODEL.backbone.num_seg=2"], r"MODEL.backbone.num_seg \(checkpoint 4, this run 2\)"),
             (["MODEL.backbone.depth=34"], r"MODEL.backbone.depth \(checkpoint 18, this run "
                                          r"34\).*another network or depth"),
             (["OPTIMIZER.name=Adam"], r"OPTIMIZER.name \(checkpoint 'Momentum', this run 'Adam'\)")]
    for overrides, message in cases:
        with pytest.raises(CheckpointError, match=r"cannot resume from .*Tiny_epoch_00002: it "
                                                  r"differs from this run in " + message):
            train_model(get_config(base, overrides + [f"output_dir={out}"]), resume=True)
    assert "error: cannot resume from" in open(os.path.join(out, "train.log")).read()
    # an older checkpoint, without those records in its meta: its tensors still tell
    old = tmp_path / "old"
    old.mkdir()
    shutil.copy(reference, old / "Tiny_epoch_00002.pdparams")
    state = paddle.load(reference[:-len(".pdparams")] + ".pdopt")
    state[META_KEY] = {"epochs_done": 2, "step": 0}
    paddle.save(state, str(old / "Tiny_epoch_00002.pdopt"))
    with pytest.raises(CheckpointError, match=r"MODEL.head.num_classes \(checkpoint 4, this run "
                                              r"3\)"):
        train_model(get_config(base, ["MODEL.head.num_classes=3", f"output_dir={old}"]),
                    resume=True)
    with pytest.raises(CheckpointError, match=r"optimizer state holds velocity, the config's "
                                              r"Adam keeps moment1, moment2, beta1_pow_acc"):
        train_model(get_config(base, ["OPTIMIZER.name=Adam", f"output_dir={old}"]), resume=True)
    after = sorted((f, os.stat(os.path.join(out, f)).st_mtime_ns) for f in os.listdir(out)
                   if f.endswith((".pdparams", ".pdopt")))
    assert after == before


def test_a_run_never_writes_over_another_runs_checkpoints(tmp_path, reference):
    out = os.path.dirname(reference)
    log = open(os.path.join(out, "train.log")).read()
    base = small_config(tmp_path)
    with pytest.raises(TaskError, match=r"already holds the checkpoints of another run "
                                        r"\(Tiny_epoch_00001.pdparams.*--resume.*output_dir"):
        train_model(get_config(base, [f"output_dir={out}"]))
    with pytest.raises(TaskError, match=r"resume_epoch=1 would overwrite the later checkpoints.*"
                                        r"Tiny_epoch_00002"):
        train_model(get_config(base, ["resume_epoch=1", f"output_dir={out}"]))
    with pytest.raises(TaskError, match=r"--resume: .* holds no checkpoint of Other but other "
                                        r"checkpoints"):
        train_model(get_config(base, ["model_name=Other", f"output_dir={out}"]), resume=True)
    assert open(os.path.join(out, "train.log")).read() == log      # its log is left alone too
    # a failure while setting up a new run reaches its own train.log
    with pytest.raises(WeightsError):
        train_model(get_config(base, [f"output_dir={tmp_path}/new"]),
                    weights=str(tmp_path / "missing.pdparams"))
    assert "missing.pdparams" in (tmp_path / "new" / "train.log").read_text().split("error: ")[-1]


def children():
    """Live child processes of this process (Linux)."""
    found = set()
    for path in glob.glob(f"/proc/{os.getpid()}/task/*/children"):
        try:
            with open(path) as f:
                found.update(f.read().split())
        except OSError:                 # a thread that ended meanwhile
            pass
    return found


def test_no_worker_processes_outlive_their_epoch(tmp_path):
    """Two training and two validation workers per epoch, and max_iters leaving each training
    pass unfinished: after every epoch as many processes live as after the first (none), and
    none after training."""
    before = children()
    alive = []

    class Watched(Trainer):
        def end_epoch(self, epoch, stats):
            super().end_epoch(epoch, stats)
            alive.append(len(children() - before))

    path = small_config(tmp_path, epochs=3, valid=8)
    cfg = get_config(path, ["DATASET.num_workers=2", "DATASET.valid_num_workers=2"])
    trainer = Watched(cfg, validate=True, max_iters=2)
    trainer.start()
    trainer.setup()
    trainer.resume()
    result = trainer.fit()
    assert result["epochs_done"] == 3 and len(result["step_times"]) == 2
    assert alive == [alive[0]] * 3 and alive[0] == 0
    assert children() - before == set()
