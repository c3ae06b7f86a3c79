"""Read weight and optimizer files without letting them run code.

A `.pdparams`/`.pdopt` (and a PyTorch `.pth`) is a pickle, and an ordinary unpickler calls any
function the file names: a crafted checkpoint could run `os.system` the moment it is loaded.
Every read of such a file in this package goes through this module, whose unpickler builds only
numpy arrays, numpy scalars, tensors rebuilt from raw storage, and plain containers. Any other
global the file names is refused with one line naming the file and the global.

What the files we read hold (found by reading what the writers emit):
- `paddle.save` of a state dict (ours, PaddleVideo's Paddle 2.x releases, PaddleClas's ImageNet
  files): a dict of numpy arrays plus `StructuredToParameterName@@` (a dict of strings), pickle
  protocol 2 (bytes as `_codecs.encode`) or 4; arrays as `numpy(._core).multiarray._reconstruct`,
  `numpy.ndarray`, `numpy.dtype`. Tensors above 1 GiB under protocol 2/3 are split into slices
  listed in `UnpackBigParamInfor@@`.
- `paddle.save` of an optimizer state: the same, plus `LR_Scheduler` (numbers) and our
  `paddlevideo_meta` (numbers, numpy scalars). With AMP's `master_weights` (a dict of tensors)
  Paddle pickles each tensor as `builtins.tuple((name, array))`.
- `torch.save` (zip format, torch >= 1.6: `data.pkl` + `data/<key>` storages; legacy format:
  magic number, protocol, system info, the object, the storage keys, then each storage as an
  int64 element count and its bytes): `torch._utils._rebuild_tensor_v2` over `torch.*Storage`,
  `collections.OrderedDict`. These are emulated here with numpy; torch is never imported.
- Metadata some training frameworks add (mmengine's `HistoryBuffer`, `ConfigDict`,
  `argparse.Namespace`) becomes an inert placeholder: nothing of theirs runs, and a placeholder
  where a tensor is needed is refused by the caller.

API: `load_state(path)` returns what `paddle.load(path)` returns for a Paddle state file (tensors
for the arrays, named as paddle.load names them); `load_state(path, return_numpy=True)` leaves
numpy arrays. `load_torch(path)` returns a PyTorch file's object with numpy arrays for tensors.
`torch_format(path)` says whether a file is a PyTorch file ('zip', 'legacy') or not (None).
"""
import _compat_pickle
import collections
import io
import os
import pickle
import struct
import zipfile

import numpy as np

__all__ = ["SafeLoadError", "Placeholder", "load_state", "load_torch", "torch_format"]

TORCH_MAGIC = 0x1950a86a20f9469cfc6c      # the first pickle of a legacy torch.save file
TORCH_LEGACY_PROTOCOL = 1001
_NAME_TABLE = "StructuredToParameterName@@"
_BIG_PARAMS = "UnpackBigParamInfor@@"     # (sic) Paddle's key for tensors split into slices


class SafeLoadError(ValueError):
    """A file that is not a weights file we can read safely; the message names the file."""


class _Refused(pickle.UnpicklingError):
    """Raised inside the unpickler; turned into a SafeLoadError that names the file."""


class Placeholder:
    """Stands for an instance of a known metadata class (e.g. mmengine's HistoryBuffer) that a
    checkpoint carries beside its tensors. None of that class's code runs: the arguments and
    state the file gives are dropped."""

    qualname = "?"

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        pass

    def __repr__(self):
        return f"<{self.qualname} (not loaded)>"


def _placeholder(module, name):
    return type(name, (Placeholder,), {"qualname": f"{module}.{name}"})


# ---------------------------------------------------------------------------------------------
# numpy: arrays, dtypes and scalars, never of dtype object (an object array can hold anything)

def _numpy_multiarray():
    try:
        from numpy._core import multiarray            # numpy >= 2
    except ImportError:                                 # numpy 1.x
        from numpy.core import multiarray
    return multiarray


_MULTIARRAY = _numpy_multiarray()


def _check_dtype(dtype):
    if np.dtype(dtype).hasobject:
        raise _Refused("it holds a numpy array of Python objects (dtype object), which a "
                       "weights file never needs")
    return dtype


def _reconstruct(cls, shape, typecode):
    if cls is not np.ndarray:
        raise _Refused(f"it rebuilds an array of class {getattr(cls, '__name__', cls)!r}")
    return _MULTIARRAY._reconstruct(np.ndarray, shape, _check_dtype(typecode))


def _dtype(spec, align=False, copy=True):
    return _check_dtype(np.dtype(spec, align, copy))


def _scalar(dtype, data=None):
    _check_dtype(dtype)
    return _MULTIARRAY.scalar(dtype) if data is None else _MULTIARRAY.scalar(dtype, data)


def _latin1_bytes(text, encoding="latin1"):
    """Protocol-2 pickles written by Python 3 store bytes as `_codecs.encode(text, 'latin1')`."""
    if encoding not in ("latin1", "latin-1"):
        raise _Refused(f"it encodes bytes with {encoding!r}")
    return text.encode("latin1")


def _plain_dict(*args, **kwargs):
    """collections.defaultdict without its factory (a factory is code from the file)."""
    return {}


_NUMPY = {"_reconstruct": _reconstruct, "scalar": _scalar}
_COMMON = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): _dtype,
    ("_codecs", "encode"): _latin1_bytes,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("collections", "defaultdict"): _plain_dict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
}
for _module in ("numpy.core.multiarray", "numpy._core.multiarray"):
    for _name, _fn in _NUMPY.items():
        _COMMON[(_module, _name)] = _fn

# Paddle pickles each tensor of a non-state-dict object as tuple((name, array)).
_PADDLE = {**_COMMON, ("builtins", "tuple"): tuple}

# Metadata classes of training frameworks, replaced by inert placeholders.
_INERT = {("argparse", "Namespace"),
          ("mmengine.logging.history_buffer", "HistoryBuffer"),
          ("mmengine.config.config", "ConfigDict"),
          ("mmcv.utils.config", "ConfigDict"),
          ("mmcv", "ConfigDict")}


class _Unpickler(pickle.Unpickler):
    """pickle.Unpickler that resolves only allow-listed globals and no persistent ids."""

    def __init__(self, file, allowed, persistent=None):
        super().__init__(file, encoding="latin1")
        self._allowed, self._persistent = allowed, persistent

    def find_class(self, module, name):
        # Python 2 names in protocol 0-2 pickles (__builtin__.tuple), as pickle itself maps them
        module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        found = self._allowed.get((module, name))
        if found is not None:
            return found
        if (module, name) in _INERT:
            return _placeholder(module, name)
        raise _Refused(f"it asks to call {module}.{name}, which a weights file never needs "
                       f"(only tensors, arrays and plain containers are read)")

    def persistent_load(self, pid):
        if self._persistent is None:
            raise _Refused("it refers to external objects (persistent ids), which a Paddle "
                           "weights file never does")
        return self._persistent(pid)


def _unpickle(file, path, allowed, persistent=None):
    try:
        return _Unpickler(file, allowed, persistent).load()
    except _Refused as e:
        raise SafeLoadError(f"refused to load {path}: {e}. It may be malicious or not a "
                            f"checkpoint; nothing in it was run.") from None
    except SafeLoadError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError, KeyError,
            AttributeError, MemoryError, OverflowError, struct.error) as e:
        raise SafeLoadError(f"{path} is not a readable weights file (damaged or another "
                            f"format): {type(e).__name__}: {e}") from None


def _check_plain(obj, path, depth=0):
    """Every leaf is an array (not of objects), a number, a string or bytes, or a placeholder."""
    if depth > 64:
        raise SafeLoadError(f"{path} nests containers more than 64 deep; not a weights file.")
    if isinstance(obj, np.ndarray):
        if obj.dtype.hasobject:
            raise SafeLoadError(f"refused to load {path}: it holds a numpy array of Python "
                                f"objects, which a weights file never needs.")
    elif isinstance(obj, dict):
        for key, value in obj.items():
            _check_plain(key, path, depth + 1)
            _check_plain(value, path, depth + 1)
    elif isinstance(obj, (list, tuple, set, frozenset)):
        for value in obj:
            _check_plain(value, path, depth + 1)
    return obj


# ---------------------------------------------------------------------------------------------
# Paddle

def _open(path):
    if not os.path.isfile(path):
        raise SafeLoadError(f"{path} does not exist or is not a file.")
    return open(path, "rb")


def torch_format(path):
    """'zip' or 'legacy' for a file torch.save wrote, else None (read only the first bytes)."""
    with _open(path) as f:
        head = f.read(64)
    if head.startswith(b"PK\x03\x04"):
        return "zip"
    # a legacy torch file opens with the pickled magic number (a long integer)
    if head[:1] == b"\x80" and TORCH_MAGIC.to_bytes(10, "little") in head[:32]:
        return "legacy"
    return None


def _join_big_params(state):
    info = state.pop(_BIG_PARAMS, None)
    if isinstance(info, dict):
        for key, spec in info.items():
            parts = [state.pop(name) for name in spec["slices"]]
            state[key] = np.concatenate(parts).reshape(spec["OriginShape"])
    return state


def _is_named_array(obj):
    return (isinstance(obj, tuple) and len(obj) == 2 and isinstance(obj[0], str)
            and isinstance(obj[1], np.ndarray))


def _map_leaves(obj, match, convert):
    if match(obj):
        return convert(obj)
    if isinstance(obj, dict):
        return type(obj)((k, _map_leaves(v, match, convert)) for k, v in obj.items())
    if isinstance(obj, list):
        return [_map_leaves(v, match, convert) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_map_leaves(v, match, convert) for v in obj)
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
    with _open(path) as f:
        if f.read(1) != b"\x80":
            raise SafeLoadError(f"{path} is not a Paddle weights file (not a pickle; Paddle's "
                                f"binary tensor and program files are not weights).")
        f.seek(0)
        obj = _unpickle(f, path, _PADDLE)
    _check_plain(obj, path)
    if isinstance(obj, dict):
        obj = _join_big_params(obj)
        names = obj.pop(_NAME_TABLE, None)
        if isinstance(names, dict):           # a state dict saved by paddle.save (2.0 and later)
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


# ---------------------------------------------------------------------------------------------
# PyTorch, without torch

_STORAGE_DTYPES = {
    "FloatStorage": "<f4", "DoubleStorage": "<f8", "HalfStorage": "<f2",
    "BFloat16Storage": "bfloat16", "LongStorage": "<i8", "IntStorage": "<i4",
    "ShortStorage": "<i2", "CharStorage": "i1", "ByteStorage": "u1", "BoolStorage": "?",
}


class _StorageType:
    def __init__(self, name):
        self.name = name
        self.dtype = _STORAGE_DTYPES[name]
        self.itemsize = 2 if self.dtype == "bfloat16" else np.dtype(self.dtype).itemsize


class _Storage:
    """A storage's raw bytes, filled when the file's layout has been read."""

    def __init__(self, kind, numel):
        self.kind, self.numel, self.data = kind, int(numel), None

    def array(self):
        if self.data is None:
            raise _Refused("a tensor refers to a storage the file does not contain")
        if len(self.data) != self.numel * self.kind.itemsize:
            raise _Refused(f"a storage holds {len(self.data)} bytes, expected "
                           f"{self.numel} x {self.kind.itemsize}")
        if self.kind.dtype == "bfloat16":              # numpy has no bfloat16: widen to float32
            raw = np.frombuffer(self.data, "<u2").astype("<u4") << 16
            return raw.view("<f4")
        return np.frombuffer(self.data, self.kind.dtype)


class _StorageView:
    """A legacy view into a root storage (torch < 0.4 files)."""

    def __init__(self, root, offset, numel):
        self.root, self.offset, self.numel = root, int(offset), int(numel)

    def array(self):
        flat = self.root.array()
        if self.offset < 0 or self.offset + self.numel > flat.size:
            raise _Refused("a storage view reaches past its storage")
        return flat[self.offset:self.offset + self.numel]


class _TensorRef:
    """A tensor to rebuild from its storage once every storage has been read."""

    def __init__(self, storage, offset, size, stride):
        if not isinstance(storage, (_Storage, _StorageView)):
            raise _Refused("a tensor is rebuilt from something that is not a storage")
        self.storage, self.offset = storage, int(offset)
        self.size, self.stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)
        if len(self.size) != len(self.stride) or min(self.size + self.stride + (self.offset,),
                                                     default=0) < 0:
            raise _Refused("a tensor has an invalid shape or stride")

    def materialize(self):
        flat = self.storage.array()
        if not self.size:
            end = self.offset + 1
        else:
            end = self.offset + 1 + sum((n - 1) * s for n, s in zip(self.size, self.stride)
                                        if n > 0)
            if 0 in self.size:
                return np.zeros(self.size, flat.dtype)
        if end > flat.size:
            raise _Refused("a tensor reaches past the end of its storage")
        item = flat.itemsize
        view = np.lib.stride_tricks.as_strided(flat[self.offset:], self.size,
                                               [s * item for s in self.stride], writeable=False)
        return np.array(view)


def _rebuild_tensor(storage, storage_offset, size, stride, *unused):
    return _TensorRef(storage, storage_offset, size, stride)


def _rebuild_parameter(data, *unused):
    return data


def _rebuild_from_type(func, cls, args, state):
    if func is not _rebuild_tensor or cls not in (_TORCH_TENSOR, _TORCH_PARAMETER):
        raise _Refused("it rebuilds a tensor subclass")
    return func(*args)


_TORCH_TENSOR = _placeholder("torch", "Tensor")
_TORCH_PARAMETER = _placeholder("torch.nn.parameter", "Parameter")

_TORCH = dict(_COMMON)
_TORCH.update({
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type,
    ("torch", "Tensor"): _TORCH_TENSOR,
    ("torch.nn.parameter", "Parameter"): _TORCH_PARAMETER,
})
for _name in _STORAGE_DTYPES:
    _TORCH[("torch", _name)] = _StorageType(_name)


def _materialize(obj, path):
    try:
        return _map_leaves(obj, lambda v: isinstance(v, _TensorRef), lambda r: r.materialize())
    except _Refused as e:
        raise SafeLoadError(f"refused to load {path}: {e}.") from None


def _storage_id(pid, storages, legacy):
    """Resolve a persistent id ('storage', type, key, location, numel[, view]) to a storage."""
    if not isinstance(pid, tuple) or not pid or pid[0] != "storage":
        raise _Refused(f"it refers to a persistent object of kind {pid[0] if pid else pid!r} "
                       f"(a saved module or code, not tensors)")
    kind, key, numel = pid[1], str(pid[2]), pid[4]
    if not isinstance(kind, _StorageType):
        raise _Refused("a storage has an unknown element type")
    if key not in storages:
        storages[key] = _Storage(kind, numel)
    root = storages[key]
    view = pid[5] if legacy and len(pid) > 5 else None
    if view is not None:                              # (view_key, offset, view_size)
        return _StorageView(root, view[1], view[2])
    return root


def _load_torch_zip(path):
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        pickles = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
        if len(pickles) != 1:
            raise SafeLoadError(f"{path} is a zip file but not one torch.save wrote (no single "
                                f"data.pkl).")
        prefix = pickles[0][:-len("data.pkl")]
        order = archive.read(prefix + "byteorder").decode().strip() \
            if prefix + "byteorder" in names else "little"
        if order != "little":
            raise SafeLoadError(f"{path} was written on a big-endian machine; not supported.")
        storages = {}
        obj = _unpickle(io.BytesIO(archive.read(pickles[0])), path, _TORCH,
                        lambda pid: _storage_id(pid, storages, legacy=False))
        for key, storage in storages.items():
            member = f"{prefix}data/{key}"
            if member not in names:
                raise SafeLoadError(f"{path} lacks the storage {member}; the file is damaged.")
            storage.data = archive.read(member)
    return obj


def _load_torch_legacy(path):
    storages = {}
    with _open(path) as f:
        magic = _unpickle(f, path, {})
        protocol = _unpickle(f, path, {})
        info = _unpickle(f, path, {})
        if magic != TORCH_MAGIC or protocol != TORCH_LEGACY_PROTOCOL:
            raise SafeLoadError(f"{path} is not a torch.save file this reader knows (magic "
                                f"{magic!r}, protocol {protocol!r}).")
        if isinstance(info, dict) and not info.get("little_endian", True):
            raise SafeLoadError(f"{path} was written on a big-endian machine; not supported.")
        obj = _unpickle(f, path, _TORCH, lambda pid: _storage_id(pid, storages, legacy=True))
        keys = _unpickle(f, path, {})
        if not isinstance(keys, list):
            raise SafeLoadError(f"{path}: the storage list is missing; the file is damaged.")
        for key in keys:
            storage = storages.get(str(key))
            header = f.read(8)
            if storage is None or len(header) != 8:
                raise SafeLoadError(f"{path}: storage {key} is missing or cut short; the file "
                                    f"is damaged.")
            numel = struct.unpack("<q", header)[0]
            if numel != storage.numel:
                raise SafeLoadError(f"{path}: storage {key} holds {numel} elements, expected "
                                    f"{storage.numel}; the file is damaged.")
            storage.data = f.read(numel * storage.kind.itemsize)
    return obj


def load_torch(path):
    """A PyTorch checkpoint (zip or legacy torch.save format) as plain containers and numpy
    arrays, without importing torch or running anything from the file."""
    path = os.fspath(path)
    kind = torch_format(path)
    if kind is None:
        raise SafeLoadError(f"{path} is not a PyTorch file written by torch.save.")
    try:
        obj = _load_torch_zip(path) if kind == "zip" else _load_torch_legacy(path)
    except zipfile.BadZipFile as e:
        raise SafeLoadError(f"{path} is a damaged zip file: {e}") from None
    obj = _materialize(obj, path)
    return _check_plain(obj, path)
