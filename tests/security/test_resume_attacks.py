"""What a run resumes is the same model, from a checkpoint whose meta is what training wrote.

Attacks: resuming a TSM as a TSN or with another shift (`-o MODEL.backbone.shift_mode=none`, ...)
or another head or input; an older checkpoint that did not record those values; crafted meta
values (negative, text, bool, float, huge counts, a position its name contradicts). Each is
refused before anything trains, in one line naming the key (and the file), exit 1, and the
checkpoint is left as it was.
"""
import os
import shutil
import subprocess
import sys

import paddle
import pytest

TASKS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tasks")
sys.path.insert(0, TASKS)

from synthetic import write_config  # noqa: E402
from paddlevideo.tasks.train import train_model  # noqa: E402
from paddlevideo.utils.checkpoint import META_KEY, CheckpointError  # noqa: E402
from paddlevideo.utils.config import get_config  # noqa: E402


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(config path, output folder) of a finished 1-epoch run of 2 steps: Tiny_epoch_00001."""
    tmp = tmp_path_factory.mktemp("resume")
    path = write_config(tmp, epochs=1, train=8, batch_size=4, classes=2)
    train_model(get_config(path))
    return path, str(tmp / "out")


def _copy(trained, tmp_path):
    out = str(tmp_path / "run")
    shutil.copytree(trained[1], out)
    return out


def _files(out):
    return sorted((f, os.stat(os.path.join(out, f)).st_mtime_ns) for f in os.listdir(out)
                  if f.endswith((".pdparams", ".pdopt")))


def _resume(path, out, *overrides):
    return train_model(get_config(path, [f"output_dir={out}", *overrides]), resume=True)


def _set_meta(out, name="Tiny_epoch_00001", drop=(), **values):
    pdopt = os.path.join(out, name + ".pdopt")
    state = paddle.load(pdopt)
    meta = {k: v for k, v in state[META_KEY].items() if k not in drop}
    meta.update(values)
    state[META_KEY] = meta
    paddle.save(state, pdopt)
    return pdopt


@pytest.mark.parametrize("override, difference", [
    ("MODEL.backbone.shift_mode=none",
     "MODEL.backbone.shift_mode (checkpoint 'bidirectional', this run 'none')"),
    ("MODEL.backbone.shift_ratio=0.25", "MODEL.backbone.shift_ratio (checkpoint 0.125, this run 0.25)"),
    ("MODEL.backbone.shift_place=inplace",
     "MODEL.backbone.shift_place (checkpoint 'residual', this run 'inplace')"),
    ("MODEL.head.drop_ratio=0.6", "MODEL.head.drop_ratio (checkpoint 0.2, this run 0.6)"),
    ("DATASET.train.size=24", "PIPELINE.train.crop_size (checkpoint '32x32', this run '24x24')"),
])
def test_resume_refuses_another_network_or_input(trained, tmp_path, override, difference):
    out = _copy(trained, tmp_path)
    before = _files(out)
    with pytest.raises(CheckpointError, match=r"cannot resume from .*Tiny_epoch_00001: it differs "
                                              r"from this run in ") as info:
        _resume(trained[0], out, override, "epochs=2")
    assert difference in str(info.value) and "\n" not in str(info.value)
    assert _files(out) == before


def test_resume_as_tsn_names_every_difference(trained, tmp_path):
    out = _copy(trained, tmp_path)
    with pytest.raises(CheckpointError) as info:
        _resume(trained[0], out, "MODEL.backbone.name=ResNet", "epochs=2")
    message = str(info.value)
    assert "MODEL.backbone.name (checkpoint 'ResNetTSM', this run 'ResNet')" in message
    for key in ("shift_mode", "shift_ratio", "shift_place"):
        assert f"MODEL.backbone.{key} (checkpoint " in message and "this run (not recorded)" in message


def test_the_same_config_resumes_and_trains_on(trained, tmp_path):
    out = _copy(trained, tmp_path)
    result = _resume(trained[0], out, "epochs=2")
    assert result["epochs_done"] == 2 and os.path.isfile(os.path.join(out, "Tiny_epoch_00002.pdopt"))
    assert paddle.load(os.path.join(out, "Tiny_epoch_00002.pdopt"))[META_KEY][
        "MODEL.backbone.shift_mode"] == "bidirectional"


def test_cli_resume_with_another_shift_exits_1_in_one_line(trained, tmp_path):
    out = _copy(trained, tmp_path)
    r = subprocess.run([sys.executable, os.path.join(TASKS, "cli_worker.py"), "-c", trained[0],
                        "--resume", "-o", f"output_dir={out}", "-o", "epochs=2", "-o",
                        "MODEL.backbone.shift_mode=none"], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 1, r.stderr[-2000:]
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in r.stderr
    assert "MODEL.backbone.shift_mode (checkpoint 'bidirectional', this run 'none')" in errors[0]
    assert not os.path.exists(os.path.join(out, "Tiny_epoch_00002.pdparams"))


OLD_KEYS = ("signature_version", "MODEL.framework", "MODEL.backbone.shift_ratio",
            "MODEL.backbone.shift_mode", "MODEL.backbone.shift_place", "MODEL.backbone.in_channels",
            "MODEL.head.in_channels", "MODEL.head.drop_ratio", "MODEL.head.ls_eps",
            "MODEL.head.loss_cfg", "PIPELINE.train.num_seg", "PIPELINE.train.crop_size")


def test_an_older_checkpoint_is_compared_on_what_it_recorded(trained, tmp_path, caplog):
    """Before the version mark, checkpoints recorded the backbone's config keys, the head's name
    and class count and the optimizer: the backbone's other arguments were at their defaults."""
    out = _copy(trained, tmp_path)
    _set_meta(out, drop=OLD_KEYS)
    with pytest.raises(CheckpointError, match=r"MODEL.backbone.shift_mode \(checkpoint "
                                              r"'bidirectional', this run 'none'\)"):
        _resume(trained[0], out, "MODEL.backbone.shift_mode=none", "epochs=2")
    caplog.set_level("WARNING", logger="paddlevideo")
    _resume(trained[0], out)                            # nothing to train, but checked
    assert "was written before checkpoints recorded MODEL.framework, MODEL.head.in_channels" \
        in caplog.text and "those were not compared" in caplog.text
    assert "MODEL.backbone.shift_mode" not in caplog.text.split("recorded", 1)[1].split(";")[0]


@pytest.mark.parametrize("key, value", [
    ("epochs_done", -1), ("epochs_done", "1"), ("epochs_done", True), ("epochs_done", 1.0),
    ("epochs_done", 10 ** 30), ("epochs_done", 100000), ("step", -3), ("step", "0"),
    ("step", 2 ** 40), ("steps_per_epoch", 0), ("best_top1", "0.5"), ("best_top1", 7.0),
    ("best_top1", float("nan")), ("seed", -1), ("seed", "1234"), ("model_name", 3),
    ("MODEL.backbone.shift_mode", ["bidirectional"]), ("signature_version", "2"),
])
def test_crafted_meta_values_are_refused_naming_file_and_key(trained, tmp_path, key, value):
    out = _copy(trained, tmp_path)
    pdopt = _set_meta(out, **{key: value})
    before = _files(out)
    with pytest.raises(CheckpointError) as info:
        _resume(trained[0], out, "epochs=2")
    message = str(info.value)
    assert f"cannot resume from {pdopt}: its meta key {key!r} is " in message, message
    assert "\n" not in message
    assert _files(out) == before


def test_meta_that_is_not_a_mapping_is_refused(trained, tmp_path):
    out = _copy(trained, tmp_path)
    pdopt = os.path.join(out, "Tiny_epoch_00001.pdopt")
    state = paddle.load(pdopt)
    state[META_KEY] = [1, 2]
    paddle.save(state, pdopt)
    with pytest.raises(CheckpointError, match=f"its meta key '{META_KEY}' is \\[1, 2\\]"):
        _resume(trained[0], out, "epochs=2")


def test_a_position_the_name_contradicts_is_refused(trained, tmp_path):
    out = _copy(trained, tmp_path)
    _set_meta(out, epochs_done=0)
    with pytest.raises(CheckpointError, match=r"its meta says epochs_done 0 but its name says 1"):
        _resume(trained[0], out, "epochs=2")


def test_a_step_beyond_this_runs_epoch_is_refused(trained, tmp_path):
    """An interrupted checkpoint 7 steps into epoch 2, resumed where an epoch has 2 steps."""
    out = _copy(trained, tmp_path)
    _set_meta(out, step=7)
    for ext in (".pdopt", ".pdparams"):
        os.replace(os.path.join(out, "Tiny_epoch_00001" + ext),
                   os.path.join(out, "Tiny_epoch_00002_step_00007" + ext))
    with pytest.raises(CheckpointError, match=r"it stopped 7 steps into an epoch, but this run's "
                                              r"epochs have 2 steps"):
        _resume(trained[0], out, "epochs=3")
