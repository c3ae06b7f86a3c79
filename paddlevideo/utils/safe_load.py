"""Read weight and optimizer files as data only: nothing in them runs, nothing they say reads
memory it should not, and nothing they ask for is allocated beyond what their size justifies.

Every read of a `.pdparams`/`.pdopt` (and of a PyTorch `.pth`) in this package goes through this
module. The pickle is read by the allow-list unpickler (`unpickler.py`), which hands it only
inert stand-ins and makes arrays afterwards from checked bytes; PyTorch's formats are emulated
in `torch_files.py`. Any global a file names beyond the allow list is refused with one line
naming the file and the global.

What the files we read hold (found by reading what the writers emit):
- `paddle.save` of a state dict (ours, PaddleVideo's Paddle 2.x releases, PaddleClas's ImageNet
  files): a dict of numpy arrays plus `StructuredToParameterName@@` (a dict of strings), pickle
  protocol 2 (bytes as `_codecs.encode`) or 4; arrays as `numpy(._core).multiarray._reconstruct`,
  `numpy.ndarray`, `numpy.dtype`. Tensors above 1 GiB under protocol 2/3 are split into slices
  listed in `UnpackBigParamInfor@@`.
- `paddle.save` of an optimizer state: the same, plus `LR_Scheduler` (numbers) and our
  `paddlevideo_meta` (numbers, numpy scalars). With AMP's `master_weights` (a dict of tensors)
  Paddle pickles each tensor as `builtins.tuple((name, array))`.
- `torch.save` files (see `torch_files.py`). Metadata some training frameworks add (mmengine's
  `HistoryBuffer`, `ConfigDict`, `argparse.Namespace`) becomes an inert `Placeholder`.

API: `load_state(path)` returns what `paddle.load(path)` returns for a Paddle state file (tensors
for the arrays, named as paddle.load names them); `load_state(path, return_numpy=True)` leaves
numpy arrays. `load_torch(path)` returns a PyTorch file's object with numpy arrays for tensors.
`torch_format(path)` says whether a file is a PyTorch file ('zip', 'legacy') or not (None).
"""
import os

import numpy as np

from .torch_files import TORCH_MAGIC, load_torch, torch_format
from .unpickler import (Budget, Placeholder, Refused, SafeLoadError, count, numpy_globals,
                        refusal, resolve, unpickle)

__all__ = ["SafeLoadError", "Placeholder", "load_state", "load_torch", "torch_format",
           "TORCH_MAGIC"]

_NAME_TABLE = "StructuredToParameterName@@"
_BIG_PARAMS = "UnpackBigParamInfor@@"     # (sic) Paddle's key for tensors split into slices


def _paddle_globals():
    """The allow list of a Paddle pickle: numpy's and, for tensors pickled as (name, array),
    builtins.tuple. Fresh per load."""
    found = numpy_globals()

    def make_tuple(*args):
        if not args:
            return ()
        if len(args) != 1 or not isinstance(args[0], (tuple, list)):
            raise Refused("it builds a tuple from something other than a sequence")
        return tuple(args[0])

    found[("builtins", "tuple")] = make_tuple
    return found


def _join_big_params(state, path, budget):
    """Paddle's tensors split into slices (`UnpackBigParamInfor@@`), joined after checking the
    spec: each slice a distinct array of the file, used once, summing to OriginShape."""
    info = state.pop(_BIG_PARAMS, None)
    if info is None:
        return state
    if not isinstance(info, dict):
        raise refusal(path, f"its {_BIG_PARAMS} is a {type(info).__name__}, not a dict")
    used = set()
    for key, spec in info.items():
        where = f"{_BIG_PARAMS}[{key!r:.60}]"
        if not (isinstance(spec, dict) and isinstance(spec.get("slices"), (list, tuple))
                and isinstance(spec.get("OriginShape"), (list, tuple))):
            raise refusal(path, f"its {where} lacks 'slices' or 'OriginShape'")
        names = spec["slices"]
        parts = [state.get(name) if isinstance(name, str) else None for name in names]
        if not parts or any(not isinstance(p, np.ndarray) for p in parts) or \
                len(set(names)) != len(names) or used & set(names):
            raise refusal(path, f"its {where} lists slices that are not distinct arrays of "
                                f"the file")
        if len({id(p) for p in parts}) != len(parts) or len({p.dtype for p in parts}) != 1:
            raise refusal(path, f"its {where} joins one array several times or mixed dtypes")
        try:
            total = count(tuple(spec["OriginShape"]), where)
            budget.charge(sum(p.nbytes for p in parts), where)
        except Refused as e:
            raise refusal(path, e) from None
        if sum(p.size for p in parts) != total:
            raise refusal(path, f"its {where} slices hold {sum(p.size for p in parts)} "
                                f"elements, not the {total} of OriginShape "
                                f"{list(spec['OriginShape'])}")
        used.update(names)
        for name in names:
            del state[name]
        state[key] = np.concatenate([p.reshape(-1) for p in parts]).reshape(
            spec["OriginShape"])
    return state


def _is_named_array(obj):
    return (isinstance(obj, tuple) and len(obj) == 2 and isinstance(obj[0], str)
            and isinstance(obj[1], np.ndarray))


def _map_leaves(obj, match, convert, depth=0):
    """obj with every leaf that matches converted; depth is capped by `resolve` already."""
    if match(obj):
        return convert(obj)
    if isinstance(obj, dict):
        return type(obj)((k, _map_leaves(v, match, convert, depth + 1)) for k, v in obj.items())
    if isinstance(obj, list):
        return [_map_leaves(v, match, convert, depth + 1) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_map_leaves(v, match, convert, depth + 1) for v in obj)
    return obj


def _contains(obj, match):
    if match(obj):
        return True
    if isinstance(obj, dict):
        return any(_contains(v, match) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return any(_contains(v, match) for v in obj)
    return False


def _tensor(array, name=None):
    import paddle
    tensor = paddle.to_tensor(array)
    if name:
        tensor.name = name
    return tensor


def _read(path):
    """The file's object with arrays made, and its budget."""
    if not os.path.isfile(path):
        raise SafeLoadError(f"{path} does not exist or is not a file.")
    with open(path, "rb") as f:
        if f.read(1) != b"\x80":
            raise SafeLoadError(f"{path} is not a Paddle weights file (not a pickle; Paddle's "
                                f"binary tensor and program files are not weights).")
        f.seek(0)
        size = os.fstat(f.fileno()).st_size
        obj = unpickle(f, path, _paddle_globals(), end=size)
    budget = Budget(size)
    return resolve(obj, path, budget), budget


def load_state(path, return_numpy=False):
    """A Paddle weights/optimizer file, read safely; the object paddle.load would return.

    return_numpy: leave numpy arrays instead of making tensors (what set_value takes anyway).
    """
    path = os.fspath(path)
    kind = torch_format(path)
    if kind is not None:
        raise SafeLoadError(f"{path} is a PyTorch file ({kind} format), not a Paddle state "
                            f"file; pass it as weights (-w/-p/pretrained:) or convert it with "
                            f"tools/convert_weights.py.")
    obj, budget = _read(path)
    try:
        if isinstance(obj, dict):
            obj = _join_big_params(obj, path, budget)
            names = obj.pop(_NAME_TABLE, None)
            if isinstance(names, dict):           # a state dict saved by paddle.save (2.0 on)
                if not return_numpy:
                    for key, name in names.items():
                        if isinstance(obj.get(key), np.ndarray):
                            obj[key] = _tensor(obj[key], name)
                return obj
        if _contains(obj, _is_named_array):       # tensors pickled as (name, array)
            convert = (lambda t: t[1]) if return_numpy else (lambda t: _tensor(t[1], t[0]))
            return _map_leaves(obj, _is_named_array, convert)
        if return_numpy:
            return obj
        return _map_leaves(obj, lambda v: isinstance(v, np.ndarray), _tensor)
    except MemoryError:
        raise SafeLoadError(f"{path} asks for more memory than is free; not a weights file "
                            f"this machine can read.") from None
