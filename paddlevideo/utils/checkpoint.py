"""Checkpoints for resuming training: one place that names, writes, finds and reads them.

Names follow PaddleVideo: `<model_name>_epoch_00003.pdparams` (model) + `.pdopt` (optimizer with
its learning-rate schedule), and `<model_name>_best.pdparams` + `.pdopt`. A checkpoint written
when a run is interrupted mid-epoch (SIGINT/SIGTERM) is `<model_name>_epoch_00004_step_00012`:
12 steps of epoch 4 done. The `.pdopt` also holds `paddlevideo_meta` (epochs done, steps done in
the next epoch, best top-1, seed, and what the run was: backbone, head, optimizer) so a resumed
run continues exactly where it stopped, and only with a config that fits.

Every file is written to a temporary name and renamed into place, so a crash or a full disk
never leaves a half-written checkpoint under a real name, and an existing good checkpoint is
never damaged. `prune_checkpoints` keeps the last N epoch checkpoints (the best is never
touched); `check_resumable` refuses a checkpoint that does not fit the model and optimizer.
"""
import errno
import glob
import os
import re
import shutil

import numpy as np
import paddle

from .safe_load import SafeLoadError, load_state

__all__ = ["atomic_save", "META_KEY", "checkpoint_prefix", "save_checkpoint", "load_checkpoint",
           "portable_optimizer_state", "restore_optimizer_state", "list_checkpoints",
           "latest_checkpoint", "training_checkpoints", "prune_checkpoints", "remove_checkpoint",
           "check_resumable", "check_meta", "check_position", "CheckpointError",
           "MAX_COUNT", "NOT_RECORDED", "remove_stale_temporaries"]

META_KEY = "paddlevideo_meta"
NOT_RECORDED = "(not recorded)"   # stands for a signature key one side of a comparison lacks


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


_TEMP = re.compile(r"\.(?:pdparams|pdopt)\.tmp-(\d+)$")   # atomic_save's, of checkpoint files


def _temporary(path):
    return f"{path}.tmp-{os.getpid()}"


def _payload_bytes(obj):
    """About how many bytes `paddle.save` writes for `obj`: its tensors' and arrays' data."""
    if isinstance(obj, dict):
        return sum(_payload_bytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(_payload_bytes(v) for v in obj)
    if isinstance(obj, np.ndarray):
        return int(obj.nbytes)
    if isinstance(obj, paddle.Tensor):
        return int(np.prod(obj.shape, dtype=np.int64)) * paddle.empty([0], obj.dtype).element_size()
    return 0


def _write_failed(path, obj, error):
    """A CheckpointError for a failed write of `path`, saying how much space it needed."""
    folder = os.path.dirname(os.path.abspath(path)) or "."
    needed = _payload_bytes(obj)
    try:
        free = f"; {shutil.disk_usage(folder).free / 1e6:.1f} MB free there"
    except OSError:
        free = ""
    if getattr(error, "errno", None) in (errno.ENOSPC, errno.EDQUOT):
        why = f"the disk is full ({error.strerror})"
    else:
        why = getattr(error, "strerror", None) or str(error)
    return CheckpointError(
        f"cannot save {path}: {why}. It needs about {needed / 1e6:.1f} MB{free}. Nothing was "
        f"replaced: the previous checkpoints are intact. Free some space (or choose another "
        f"output_dir), then continue with --resume.")


def atomic_save(obj, path):
    """paddle.save to a temporary name beside `path`, renamed into place once complete; a failed
    write (full disk, ...) is a CheckpointError naming the file and the space it needed, and
    leaves `path` as it was."""
    _write_temporary(obj, path)
    _put_in_place(obj, path)


def _put_in_place(obj, path):
    try:
        os.replace(_temporary(path), path)
    except OSError as e:
        _remove_quietly(_temporary(path))
        raise _write_failed(path, obj, e) from None


def _write_temporary(obj, path):
    tmp = _temporary(path)
    try:
        paddle.save(obj, tmp)
    except OSError as e:
        _remove_quietly(tmp)
        raise _write_failed(path, obj, e) from None
    except BaseException:
        _remove_quietly(tmp)
        raise


def _remove_quietly(path):
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def save_checkpoint(prefix, model_state, optimizer_state=None, meta=None):
    """Write `prefix.pdparams` (and `prefix.pdopt` with `meta` inside), each atomically.

    Both files are written to temporary names first, then renamed, the .pdopt first (a
    checkpoint counts as complete once its .pdparams exists): a write that fails (full disk)
    replaces neither, so an earlier checkpoint of the same name (the best) stays whole.
    """
    os.makedirs(os.path.dirname(os.path.abspath(prefix)), exist_ok=True)
    parts = []
    if optimizer_state is not None:
        state = dict(optimizer_state)
        if meta is not None:
            state[META_KEY] = dict(meta)
        parts.append((state, prefix + ".pdopt"))
    parts.append((model_state, prefix + ".pdparams"))
    written = []
    try:
        for obj, path in parts:
            _write_temporary(obj, path)
            written.append(path)
    except BaseException:
        for path in written:
            _remove_quietly(_temporary(path))
        raise
    for obj, path in parts:
        _put_in_place(obj, path)
    return prefix


def remove_stale_temporaries(folder):
    """Delete the `*.pdparams.tmp-PID` / `*.pdopt.tmp-PID` files that atomic_save left in
    `folder` when process PID died mid-save (kill -9, OOM killer); a live process's file, and
    any other file, is never touched. Call it while
    holding the folder's run lock. Returns [(path, bytes)] of what was removed."""
    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in sorted(names):
        match = _TEMP.search(name)
        path = os.path.join(folder, name)
        if not match or not os.path.isfile(path) or os.path.islink(path):
            continue
        pid = int(match.group(1))
        if pid == os.getpid() or _alive(pid):
            continue
        size = os.path.getsize(path)
        _remove_quietly(path)
        removed.append((path, size))
    return removed


def _alive(pid):
    """Whether a process with this pid exists on this machine (one of another user counts)."""
    if pid <= 0:
        return True                     # not a real pid: do not guess, keep the file
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def load_checkpoint(prefix):
    """(model_state, optimizer_state, meta) from `prefix.pdparams/.pdopt`; meta may be {} and is
    checked (`check_meta`) before anything uses it."""
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
    for path, state in ((params, model_state), (opt, opt_state)):
        if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
            raise CheckpointError(f"cannot resume: {path} is not a state dict of named tensors "
                                  f"(a {type(state).__name__} or keys that are not names).")
    meta = opt_state.pop(META_KEY, {}) if isinstance(opt_state, dict) else {}
    check_meta(opt, meta)
    return model_state, opt_state, meta


# The largest epoch or step count a checkpoint's name can carry (`_epoch_%05d_step_%05d`).
MAX_COUNT = 99999
# meta key -> (what it counts, smallest value); each an integer in [smallest, MAX_COUNT]
_COUNTS = {"epochs_done": ("finished epochs", 0), "step": ("steps into the next epoch", 0),
           "steps_per_epoch": ("steps per epoch", 1), "signature_version": ("version", 1)}


def _is_integer(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _is_number(value):
    return isinstance(value, (int, float, np.integer, np.floating)) and \
        not isinstance(value, (bool, np.bool_))


def check_meta(path, meta):
    """Raise CheckpointError, naming `path` and the key, unless the meta's values are what
    training writes: counts are integers in their range (never a bool, float, string or a
    number no checkpoint name can hold), best_top1 a number in [-1, 1], seed an integer,
    model_name a string, and the run's signature plain numbers, booleans and strings."""
    def refuse(key, value, wanted):
        shown = repr(value)
        shown = shown if len(shown) <= 40 else shown[:37] + "..."
        raise CheckpointError(f"cannot resume from {path}: its meta key {key!r} is {shown} "
                              f"({type(value).__name__}), not {wanted}; the file was damaged or "
                              f"not written by this toolkit. Resume from another checkpoint, or "
                              f"start a new run from its weights (-w).")
    if not isinstance(meta, dict):
        refuse(META_KEY, meta, "a mapping")
    for key, (what, low) in _COUNTS.items():
        value = meta.get(key)
        if value is not None and not (_is_integer(value) and low <= value <= MAX_COUNT):
            refuse(key, value, f"a whole number of {what} from {low} to {MAX_COUNT}")
    best = meta.get("best_top1")
    if best is not None and not (_is_number(best) and -1.0 <= float(best) <= 1.0):
        refuse("best_top1", best, "an accuracy from -1 (none yet) to 1")
    seed = meta.get("seed")
    if seed is not None and not (_is_integer(seed) and 0 <= seed < 2 ** 63):
        refuse("seed", seed, "a whole number from 0 to 2**63 - 1")
    if meta.get("model_name") is not None and not isinstance(meta["model_name"], str):
        refuse("model_name", meta["model_name"], "a name")
    for key, value in meta.items():
        if not isinstance(key, str):
            refuse(repr(key), key, "a text key")
        if key.startswith(("MODEL.", "PIPELINE.", "OPTIMIZER.")) and \
                not isinstance(value, (bool, str)) and not _is_number(value):
            refuse(key, value, "a number, boolean or text")


def check_position(prefix, meta, epochs_done, step, steps_per_epoch):
    """Raise CheckpointError unless the meta's position is the one the checkpoint's name says
    (`epochs_done`, `step`) and `step` falls inside this run's epochs of `steps_per_epoch`."""
    for key, named in (("epochs_done", epochs_done), ("step", step)):
        if key in meta and meta[key] != named:
            raise CheckpointError(
                f"cannot resume from {prefix}: its meta says {key} {meta[key]} but its name says "
                f"{named}; the file was renamed or damaged. Resume from another checkpoint, or "
                f"set resume_epoch to the epoch its meta says.")
    if step and step >= steps_per_epoch:
        raise CheckpointError(
            f"cannot resume from {prefix}: it stopped {step} steps into an epoch, but this run's "
            f"epochs have {steps_per_epoch} steps (another batch size, data list or number of "
            f"processes). Resume with the settings it was written with, or from an epoch "
            f"checkpoint (resume_epoch=N).")


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


_SEP = "@"         # between a parameter's structured name and its accumulator's kind
_ANY = re.compile(r"_(?:epoch_\d{5}(?:_step_\d{5})?|best)\.pdparams$")


def training_checkpoints(output_dir):
    """Names of the training checkpoints (epoch, interrupted or best, of any model) in a folder."""
    if not os.path.isdir(output_dir):
        return []
    return sorted(f for f in os.listdir(output_dir) if _ANY.search(f))


def remove_checkpoint(prefix):
    """Delete `prefix.pdparams` and then `.pdopt` (so it stops counting as complete first)."""
    for ext in (".pdparams", ".pdopt"):
        if os.path.exists(prefix + ext):
            os.remove(prefix + ext)


def prune_checkpoints(output_dir, model_name, keep):
    """Keep the newest `keep` epoch checkpoints; delete the older ones, and every interrupted
    (`_step_`) checkpoint that a later checkpoint supersedes. The best is never touched.
    Returns the deleted prefixes."""
    found = list_checkpoints(output_dir, model_name)
    if not found:
        return []
    newest = found[-1][:2]
    epochs = [c for c in found if c[1] == 0]
    doomed = [c[2] for c in epochs[:max(len(epochs) - int(keep), 0)]]
    doomed += [c[2] for c in found if c[1] and c[:2] < newest]
    for prefix in doomed:
        remove_checkpoint(prefix)
    return doomed


def _show(value):
    return repr(value) if isinstance(value, str) and value != NOT_RECORDED else str(value)


def check_resumable(prefix, params, opt_state, model, optimizer_name, accumulators, differences):
    """Raise CheckpointError unless the checkpoint fits this run, in one line naming every
    difference.

    `differences` is {config key: (the checkpoint's value, this run's)} from comparing the run's
    signature with the checkpoint's meta (tasks/signature.py); `accumulators` is what the
    optimizer `optimizer_name` keeps per parameter ({kind: has the parameter's shape},
    solver.accumulator_kinds). Every checkpoint is also compared tensor by tensor with the model
    and its optimizer state with the accumulators, so checkpoints that record little are
    checked too.
    """
    differences = dict(differences)
    problems = []
    state = model.state_dict()
    missing = [k for k in state if k not in params]
    extra = [k for k in params if k not in state]
    reshaped = [k for k in state if k in params and list(params[k].shape) != list(state[k].shape)]
    fc, classes = "head.fc.weight", "MODEL.head.num_classes"
    if fc in reshaped and classes not in differences:
        differences[classes] = (int(params[fc].shape[-1]), int(state[fc].shape[-1]))
    if missing or extra:
        problems.append(f"its model has {len(extra)} tensors this one lacks and lacks "
                        f"{len(missing)} of this one's (e.g. {(extra or missing)[0]}): another "
                        f"network or depth")
    for key in reshaped:
        if key.startswith("head.fc.") and classes in differences:
            continue
        problems.append(f"{key} is {list(params[key].shape)} there, {list(state[key].shape)} here")
        break
    if not (missing or extra or reshaped):
        problems += _optimizer_problems(opt_state, model, optimizer_name, accumulators)
    if not (differences or problems):
        return
    facts = []
    if differences:
        facts.append("it differs from this run in " + ", ".join(
            f"{key} (checkpoint {_show(theirs)}, this run {_show(ours)})"
            for key, (theirs, ours) in differences.items()))
    facts += problems
    raise CheckpointError(
        f"cannot resume from {prefix}: {'; '.join(facts)}. Resume with the config that run was "
        f"trained with, or start a new run in another output_dir (-o output_dir=...), from its "
        f"weights if you like (-w {prefix}.pdparams).")


def _optimizer_problems(opt_state, model, optimizer_name, wanted):
    """Differences between a portable optimizer state and the accumulators `wanted` that
    `optimizer_name` keeps for the model's trainable parameters; [] for Paddle's own naming,
    which cannot be mapped to parameters."""
    if any(_SEP not in k and k not in ("LR_Scheduler", "master_weights") for k in opt_state):
        return []
    keys = [k for k in opt_state if _SEP in k]
    params = {n: p for n, p in model.named_parameters() if not p.stop_gradient}
    kinds = {}
    for key in keys:
        name, kind = key.split(_SEP, 1)
        kinds.setdefault(re.sub(r"_\d+$", "", kind), []).append((name, key))
    if set(kinds) != set(wanted):
        held = ", ".join(sorted(kinds)) or "none"
        return [f"its optimizer state holds {held}, the config's {optimizer_name} keeps "
                f"{', '.join(wanted) or 'none'}"]
    for kind, shaped in wanted.items():
        names = {name for name, _ in kinds[kind]}
        if names != set(params):
            absent = sorted(set(params) - names) or sorted(names - set(params))
            return [f"its optimizer state does not cover the same parameters (e.g. {absent[0]})"]
        for name, key in kinds[kind]:
            shape = list(params[name].shape) if shaped else [1]
            if list(opt_state[key].shape) != shape:
                return [f"optimizer state {key} is {list(opt_state[key].shape)}, expected {shape}"]
    masters = opt_state.get("master_weights") or {}
    for name, value in masters.items():
        if name in params and list(value.shape) != list(params[name].shape):
            return [f"master weight {name} is {list(value.shape)}, the parameter "
                    f"{list(params[name].shape)}"]
    return []


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
