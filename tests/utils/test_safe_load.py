"""A weights or optimizer file cannot run code, and every file we write or read still loads as
paddle.load would load it."""
import builtins
import os
import pickle
import subprocess
import zipfile

import numpy as np
import paddle
import pytest

from paddlevideo.modeling import build_model
from paddlevideo.modeling.weights import WeightsError, load_weights
from paddlevideo.solver import build_optimizer
from paddlevideo.utils.checkpoint import (CheckpointError, load_checkpoint,
                                          portable_optimizer_state, restore_optimizer_state,
                                          save_checkpoint)
from paddlevideo.utils.config import AttrDict
from paddlevideo.utils.safe_load import (TORCH_MAGIC, SafeLoadError, load_state, load_torch)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def tiny_model(classes=5):
    return build_model(AttrDict(framework="Recognizer2D",
                                backbone=AttrDict(name="ResNetTSM", depth=18, num_seg=4),
                                head=AttrDict(name="TSMHead", num_classes=classes,
                                              in_channels=512)))


# --- files that would write a marker file when unpickled by an ordinary unpickler -------------

class Payload:
    """Unpickles as a call of `func(*args)`: what a crafted checkpoint carries."""

    def __init__(self, func, args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def payload(how, marker):
    if how == "os.system":
        return Payload(os.system, (f"touch {marker}",))
    if how == "builtins.exec":
        return Payload(builtins.exec, (f"open({str(marker)!r}, 'w').close()",))
    return Payload(subprocess.call, (["touch", str(marker)],))


GLOBAL_OF = {"os.system": "system", "builtins.exec": "builtins.exec",
             "subprocess.call": "subprocess.call"}


def crafted_pdparams(path, how, marker, protocol=4):
    state = {"backbone.conv._conv.weight": np.zeros([64, 3, 7, 7], "float32"),
             "head.fc.bias": payload(how, marker)}
    with open(path, "wb") as f:
        pickle.dump(state, f, protocol=protocol)


def crafted_pth(path, how, marker, fmt):
    obj = {"state_dict": {"module.new_fc.bias": payload(how, marker)}}
    if fmt == "zip":
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("archive/data.pkl", pickle.dumps(obj, protocol=2))
            z.writestr("archive/byteorder", "little")
            z.writestr("archive/version", "3\n")
    else:
        with open(path, "wb") as f:
            for part in (TORCH_MAGIC, 1001, {"protocol_version": 1001, "little_endian": True},
                         obj, []):
                pickle.dump(part, f, protocol=2)


def assert_one_line_refusal(message, path, how):
    assert "\n" not in message, message
    assert str(path) in message and "refused to load" in message
    assert GLOBAL_OF[how] in message, message


@pytest.mark.parametrize("how", ["os.system", "builtins.exec", "subprocess.call"])
def test_weights_file_that_would_run_code_is_refused(how, tmp_path):
    marker, path = tmp_path / "marker", tmp_path / "evil.pdparams"
    crafted_pdparams(path, how, marker)
    with pytest.raises(WeightsError) as err:
        load_weights(tiny_model(), str(path), require_head=True)
    assert not marker.exists()
    assert_one_line_refusal(str(err.value), path, how)


@pytest.mark.parametrize("how", ["os.system", "builtins.exec", "subprocess.call"])
def test_resume_from_an_optimizer_file_that_would_run_code_is_refused(how, tmp_path):
    marker, prefix = tmp_path / "marker", tmp_path / "TSM_epoch_00001"
    paddle.save(tiny_model().state_dict(), f"{prefix}.pdparams")
    crafted_pdparams(f"{prefix}.pdopt", how, marker, protocol=2)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(str(prefix))
    assert not marker.exists()
    assert_one_line_refusal(str(err.value), f"{prefix}.pdopt", how)


@pytest.mark.parametrize("fmt", ["zip", "legacy"])
@pytest.mark.parametrize("how", ["os.system", "builtins.exec", "subprocess.call"])
def test_pytorch_file_that_would_run_code_is_refused(how, fmt, tmp_path):
    marker, path = tmp_path / "marker", tmp_path / "evil.pth"
    crafted_pth(path, how, marker, fmt)
    with pytest.raises(SafeLoadError) as err:
        load_torch(str(path))
    assert not marker.exists()
    assert_one_line_refusal(str(err.value), path, how)
    with pytest.raises(WeightsError) as err:               # the way -w/-p/pretrained: read it
        load_weights(tiny_model(), str(path))
    assert not marker.exists()
    assert_one_line_refusal(str(err.value), path, how)


def test_export_tool_refuses_a_crafted_checkpoint_in_one_line(tmp_path, capsys):
    marker, path = tmp_path / "marker", tmp_path / "evil.pdparams"
    crafted_pdparams(path, "os.system", marker)
    from paddlevideo.deploy.cli import export_main
    assert export_main(["-c", os.path.join(REPO, "configs/recognition/tsm/tsm_demo.yaml"),
                        "-p", str(path), "-o", str(tmp_path / "out")]) != 0
    err = capsys.readouterr().err.strip()
    assert not marker.exists()
    assert err.count("\n") == 0 and err.startswith("error: refused to load") and "system" in err
    assert not (tmp_path / "out" / "TSM.pdiparams").exists()


def test_array_of_python_objects_is_refused(tmp_path):
    path = tmp_path / "objects.pdparams"
    with open(path, "wb") as f:
        pickle.dump({"w": np.array([1, "x"], dtype=object)}, f, protocol=4)
    with pytest.raises(SafeLoadError, match="object"):
        load_state(str(path))


def test_not_a_pickle_is_a_clear_error(tmp_path):
    path = tmp_path / "text.pdparams"
    path.write_text("hello")
    with pytest.raises(SafeLoadError, match="not a Paddle weights file"):
        load_state(str(path))
    with pytest.raises(WeightsError, match="not a Paddle weights file"):
        load_weights(tiny_model(), str(path))


# --- everything paddle.save writes for us still loads, as paddle.load gives it ----------------

def assert_same_as_paddle_load(ours, theirs, where="file"):
    assert type(ours) is type(theirs), (where, type(ours), type(theirs))
    if isinstance(ours, dict):
        assert list(ours) == list(theirs), where
        for key in ours:
            assert_same_as_paddle_load(ours[key], theirs[key], f"{where}[{key!r}]")
    elif isinstance(ours, paddle.Tensor):
        assert ours.dtype == theirs.dtype and ours.name == theirs.name, where
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy(), err_msg=where)
    elif isinstance(ours, np.ndarray):
        np.testing.assert_array_equal(ours, theirs, err_msg=where)
    else:
        assert ours == theirs, where


def _states():
    t = paddle.to_tensor(np.arange(12, dtype="float32").reshape(3, 4))
    return {
        "model_state_protocol4": ({"backbone.w": t, "head.fc.bias": paddle.ones([5])}, 4),
        "half_and_bfloat16_protocol2": ({"w": t, "h": t.astype("float16"),
                                         "b": t.astype("bfloat16")}, 2),
        "optimizer_with_schedule_and_meta": (
            {"backbone.w@velocity_0": t, "LR_Scheduler": {"last_epoch": 3, "last_lr": 0.01},
             "paddlevideo_meta": {"epochs_done": 2, "best_top1": np.float32(0.5),
                                  "seed": np.int64(7)}}, 4),
        "optimizer_with_master_weights": (
            {"backbone.w@moment1_0": t, "master_weights": {"backbone.w": t * 2},
             "LR_Scheduler": {"last_epoch": 1, "last_lr": 0.1}}, 4),
        "optimizer_with_master_weights_protocol2": (
            {"backbone.w@moment1_0": t, "master_weights": {"backbone.w": t * 2}}, 2),
    }


@pytest.mark.parametrize("name", list(_states()))
def test_load_state_returns_what_paddle_load_returns(name, tmp_path):
    state, protocol = _states()[name]
    path = str(tmp_path / f"{name}.pdparams")
    paddle.save(state, path, protocol=protocol)
    assert_same_as_paddle_load(load_state(path), paddle.load(path))
    numpy_state = load_state(path, return_numpy=True)
    first = next(iter(numpy_state.values()))
    assert isinstance(first, np.ndarray)


def test_resumed_optimizer_equals_the_saved_one(tmp_path):
    """What load_checkpoint returns goes into Momentum's set_state_dict: the velocities and the
    schedule's position come back exactly."""
    cfg = AttrDict(name="Momentum", momentum=0.9,
                   learning_rate=AttrDict(name="CosineAnnealingDecay", learning_rate=0.01),
                   weight_decay=AttrDict(name="L2", value=1e-4))
    paddle.seed(0)
    model = tiny_model()
    optimizer, schedule = build_optimizer(cfg, model, 2, 3)
    model(paddle.randn([2, 4, 3, 32, 32])).mean().backward()
    optimizer.step()
    schedule.step()
    prefix = save_checkpoint(str(tmp_path / "TSM_epoch_00001"), model.state_dict(),
                             portable_optimizer_state(optimizer, model), {"epochs_done": 1})
    params, opt_state, meta = load_checkpoint(prefix)
    assert meta == {"epochs_done": 1}
    other = tiny_model()
    other.set_state_dict(params)
    optimizer2, schedule2 = build_optimizer(cfg, other, 2, 3)
    restore_optimizer_state(optimizer2, other, opt_state)
    assert schedule2.last_epoch == schedule.last_epoch
    want = portable_optimizer_state(optimizer, model)
    got = portable_optimizer_state(optimizer2, other)
    velocities = [k for k in want if "@velocity" in k]
    assert len(velocities) > 50
    for key in velocities:
        np.testing.assert_array_equal(got[key].numpy(), want[key].numpy(), err_msg=key)
