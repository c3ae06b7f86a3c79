"""Checkpoints for resuming training: one place that names, writes, finds and reads them.

Names follow PaddleVideo: `<model_name>_epoch_00003.pdparams` (model) + `.pdopt` (optimizer with
its learning-rate schedule), and `<model_name>_best.pdparams` + `.pdopt`. A checkpoint written
when a run is interrupted mid-epoch (SIGINT/SIGTERM) is `<model_name>_epoch_00004_step_00012`:
12 steps of epoch 4 done. The `.pdopt` also holds `paddlevideo_meta` (epochs done, steps done in
the next epoch, best top-1, seed) so a resumed run continues exactly where it stopped.

Every file is written to a temporary name and renamed into place, so a crash or a full disk
never leaves a half-written checkpoint under a real name, and an existing good checkpoint is
never damaged.
"""
import glob
import os
import re

import paddle

from .safe_load import SafeLoadError, load_state

__all__ = ["META_KEY", "checkpoint_prefix", "save_checkpoint", "load_checkpoint",
           "portable_optimizer_state", "restore_optimizer_state",
           "list_checkpoints", "latest_checkpoint", "CheckpointError"]

META_KEY = "paddlevideo_meta"


class CheckpointError(RuntimeError):
    """A checkpoint that is absent or unreadable; the message says which and what to do."""


def checkpoint_prefix(output_dir, model_name, epoch=None, step=0, best=False):
    """The path without extension: `..._best`, `..._epoch_00003`, or `..._epoch_00004_step_00012`."""
    if best:
        return os.path.join(output_dir, f"{model_name}_best")
    name = f"{model_name}_epoch_{int(epoch):05d}"
    if step:
        name += f"_step_{int(step):05d}"
    return os.path.join(output_dir, name)


def _atomic_save(obj, path):
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        paddle.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def save_checkpoint(prefix, model_state, optimizer_state=None, meta=None):
    """Write `prefix.pdparams` (and `prefix.pdopt` with `meta` inside), each atomically.

    The .pdopt goes first: a checkpoint counts as complete once its .pdparams exists.
    """
    os.makedirs(os.path.dirname(os.path.abspath(prefix)), exist_ok=True)
    if optimizer_state is not None:
        state = dict(optimizer_state)
        if meta is not None:
            state[META_KEY] = dict(meta)
        _atomic_save(state, prefix + ".pdopt")
    _atomic_save(model_state, prefix + ".pdparams")
    return prefix


def load_checkpoint(prefix):
    """(model_state, optimizer_state, meta) from `prefix.pdparams/.pdopt`; meta may be {}."""
    params, opt = prefix + ".pdparams", prefix + ".pdopt"
    for path in (params, opt):
        if not os.path.isfile(path):
            raise CheckpointError(f"cannot resume: {path} does not exist. List the checkpoints "
                                  f"in {os.path.dirname(prefix) or '.'} and set resume_epoch to "
                                  f"one that has both .pdparams and .pdopt, or use --resume.")
    try:       # the safe reader: a checkpoint can hold tensors and plain values, never code
        model_state = load_state(params)
        opt_state = load_state(opt)
    except (SafeLoadError, OSError) as e:
        raise CheckpointError(f"cannot resume from {prefix}: {e}") from None
    meta = opt_state.pop(META_KEY, {}) if isinstance(opt_state, dict) else {}
    return model_state, opt_state, meta


_NAME = re.compile(r"_epoch_(\d{5})(?:_step_(\d{5}))?\.pdparams$")


def list_checkpoints(output_dir, model_name):
    """[(epochs_done, steps_into_next, prefix)] for every complete resumable checkpoint, oldest first."""
    found = []
    for path in glob.glob(os.path.join(glob.escape(output_dir), f"{glob.escape(model_name)}_epoch_*.pdparams")):
        m = _NAME.search(path)
        if not m or not path[:-len(".pdparams")].endswith(m.group(0)[:-len(".pdparams")]):
            continue
        prefix = path[:-len(".pdparams")]
        if not os.path.isfile(prefix + ".pdopt"):
            continue
        epoch, step = int(m.group(1)), int(m.group(2) or 0)
        # an interrupted checkpoint of epoch E holds E-1 finished epochs plus `step` steps
        found.append((epoch - 1, step, prefix) if step else (epoch, 0, prefix))
    return sorted(found)


def latest_checkpoint(output_dir, model_name):
    """The prefix of the furthest-along checkpoint in `output_dir`, or None."""
    found = list_checkpoints(output_dir, model_name)
    return found[-1][2] if found else None


_SEP = "@"


def _name_maps(model):
    """(Paddle's unique tensor name -> structured name, and back) for the model's parameters."""
    to_struct = {p.name: n for n, p in model.named_parameters()}
    return to_struct, {n: pn for pn, n in to_struct.items()}


def _rename(key, mapping, sep_in, sep_out):
    """Rename the parameter part of an accumulator key (`<param><sep_in><suffix>`), longest first."""
    best = None
    for old in mapping:
        if key.startswith(old + sep_in) and (best is None or len(old) > len(best)):
            best = old
    if best is None:
        return key
    return mapping[best] + sep_out + key[len(best) + len(sep_in):]


def portable_optimizer_state(optimizer, model):
    """The optimizer's state keyed by structured parameter names (`head.fc.weight@velocity_0`).

    Paddle keys accumulators by generated tensor names (`conv2d_40.w_0_velocity_0`) that depend
    on how many layers the process built before; structured names make a checkpoint load into
    any model instance.
    """
    to_struct, _ = _name_maps(model)
    state = {}
    for key, value in optimizer.state_dict().items():
        if key == "master_weights" and isinstance(value, dict):
            state[key] = {to_struct.get(k, k): v for k, v in value.items()}
        elif key == "LR_Scheduler":
            state[key] = value
        else:
            state[_rename(key, to_struct, "_", _SEP)] = value
    return state


def restore_optimizer_state(optimizer, model, state):
    """Load a state from `portable_optimizer_state` (or Paddle's own naming, as PaddleVideo's
    .pdopt files have it) into `optimizer`."""
    _, to_tensor = _name_maps(model)
    fixed = {}
    for key, value in state.items():
        if key == "master_weights" and isinstance(value, dict):
            fixed[key] = {to_tensor.get(k, k): v for k, v in value.items()}
        elif _SEP in key:
            fixed[_rename(key, to_tensor, _SEP, "_")] = value
        else:
            fixed[key] = value
    optimizer.set_state_dict(fixed)
