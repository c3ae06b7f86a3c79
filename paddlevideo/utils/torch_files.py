"""PyTorch's file formats, read with numpy through the allow-list unpickler; torch is never
imported and nothing in the file runs.

- zip format (torch >= 1.6): `<prefix>/data.pkl` + `<prefix>/data/<key>` storages (stored, not
  compressed, by torch.save) + `byteorder`;
- legacy format: the pickled magic number, protocol and system info, the object, the list of
  storage keys, then each storage as an int64 element count and its bytes.

The object pickle names `torch._utils._rebuild_tensor_v2` over storages given as persistent ids
('storage', torch.FloatStorage, key, location, numel). Each becomes a stand-in that records its
arguments (a fresh storage kind per load, which no BUILD can change). Storages are read only
after their declared sizes are checked: against the tensor metadata and, together, against the
file's size. A tensor is made from its storage only if it lies inside the storage and has no
more elements than the storage holds (a stride-0 view of one float cannot become 16384 x 16384).
"""
import io
import os
import struct
import zipfile

import numpy as np

from .unpickler import (Budget, Refused, SafeLoadError, StandIn, count, numpy_globals,
                        placeholder, refusal, resolve, unpickle)

__all__ = ["TORCH_MAGIC", "torch_format", "load_torch"]

TORCH_MAGIC = 0x1950a86a20f9469cfc6c      # the first pickle of a legacy torch.save file
TORCH_LEGACY_PROTOCOL = 1001

_STORAGE_DTYPES = {
    "FloatStorage": "<f4", "DoubleStorage": "<f8", "HalfStorage": "<f2",
    "BFloat16Storage": "<u2", "LongStorage": "<i8", "IntStorage": "<i4",
    "ShortStorage": "<i2", "CharStorage": "i1", "ByteStorage": "u1", "BoolStorage": "?",
}


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


class _StorageKind:
    """torch.FloatStorage & co. as the file names them: a name and an element type, fresh per
    load and never changed (BUILD refuses anything that is not a recording stand-in)."""

    __slots__ = ("name", "bfloat16", "dtype")

    def __init__(self, name):
        self.name, self.bfloat16 = name, name == "BFloat16Storage"
        self.dtype = np.dtype(_STORAGE_DTYPES[name])


class _Storage:
    """A storage's raw bytes, filled once the file's layout has been read."""

    def __init__(self, kind, numel):
        self.kind, self.numel, self.data, self._flat = kind, numel, None, None

    @property
    def nbytes(self):
        return self.numel * self.kind.dtype.itemsize

    def flat(self):
        if self._flat is None:
            if self.data is None:
                raise Refused("a tensor refers to a storage the file does not contain")
            if len(self.data) != self.nbytes:
                raise Refused(f"a storage holds {len(self.data)} bytes, expected {self.numel} "
                              f"x {self.kind.dtype.itemsize}")
            flat = np.frombuffer(self.data, self.kind.dtype)
            if self.kind.bfloat16:                   # numpy has no bfloat16: widen to float32
                flat = (flat.astype("<u4") << 16).view("<f4")
            self._flat = flat
        return self._flat


class _StorageView:
    """A legacy view into a root storage (torch < 0.4 files)."""

    def __init__(self, root, offset, numel):
        self.root, self.offset, self.numel = root, offset, numel

    def flat(self):
        flat = self.root.flat()
        if self.offset + self.numel > flat.size:
            raise Refused("a storage view reaches past its storage")
        return flat[self.offset:self.offset + self.numel]


def _int(value, what):
    if type(value) is not int or value < 0:
        raise Refused(f"{what} is not a non-negative integer")
    return value


class _TensorRef(StandIn):
    """_rebuild_tensor_v2(storage, offset, size, stride, ...), recorded; made by `make`."""

    what, is_data = "torch tensor", True

    def __init__(self, storage, storage_offset, size, stride, *unused):
        if not isinstance(storage, (_Storage, _StorageView)):
            raise Refused("a tensor is rebuilt from something that is not a storage")
        self.storage, self.offset = storage, _int(storage_offset, "a tensor's offset")
        self.numel = count(tuple(size) if isinstance(size, (list, tuple)) else size, "a tensor")
        self.size = tuple(size)
        if not isinstance(stride, (tuple, list)) or len(stride) != len(self.size):
            raise Refused("a tensor has an invalid stride")
        self.stride = tuple(_int(s, "a tensor's stride") for s in stride)

    def make(self, ctx):
        flat = self.storage.flat()
        if self.numel == 0:
            return np.zeros(self.size, flat.dtype)
        end = self.offset + 1 + sum((n - 1) * s for n, s in zip(self.size, self.stride))
        if end > flat.size or self.numel > flat.size - self.offset:
            raise Refused(f"a tensor of shape {list(self.size)} (stride {list(self.stride)}) "
                          f"views more than its storage of {flat.size} elements holds")
        ctx.budget.charge(self.numel * flat.itemsize, "a tensor")
        view = np.lib.stride_tricks.as_strided(flat[self.offset:], self.size,
                                               [s * flat.itemsize for s in self.stride],
                                               writeable=False)
        return np.array(view)


def _rebuild_parameter(data, *unused):
    return data


def _torch_globals():
    """The allow list of a PyTorch pickle, fresh per load."""
    tensor = placeholder("torch", "Tensor")
    parameter = placeholder("torch.nn.parameter", "Parameter")

    def rebuild_from_type(func, cls, args, state):
        if func is not _TensorRef or cls not in (tensor, parameter) or not isinstance(args,
                                                                                      tuple):
            raise Refused("it rebuilds a tensor subclass")
        return _TensorRef(*args)

    found = numpy_globals()
    found.update({
        ("torch._utils", "_rebuild_tensor_v2"): _TensorRef,
        ("torch._utils", "_rebuild_tensor"): _TensorRef,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
        ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
        ("torch._tensor", "_rebuild_from_type_v2"): rebuild_from_type,
        ("torch", "Tensor"): tensor,
        ("torch.nn.parameter", "Parameter"): parameter,
    })
    for name in _STORAGE_DTYPES:
        found[("torch", name)] = _StorageKind(name)
    return found


def _storage_of(pid, storages, legacy):
    """Resolve a persistent id ('storage', kind, key, location, numel[, view]) to a storage."""
    if not isinstance(pid, tuple) or len(pid) < 5 or pid[0] != "storage":
        raise Refused(f"it refers to a persistent object of kind "
                      f"{pid[0] if isinstance(pid, tuple) and pid else type(pid).__name__!r} "
                      f"(a saved module or code, not tensors)")
    kind, key, numel = pid[1], str(pid[2]), _int(pid[4], "a storage's size")
    if not isinstance(kind, _StorageKind):
        raise Refused("a storage has an unknown element type")
    root = storages.setdefault(key, _Storage(kind, numel))
    if root.kind is not kind or root.numel != numel:
        raise Refused(f"storage {key} is declared twice, differently")
    view = pid[5] if legacy and len(pid) > 5 else None
    if view is not None:                              # (view_key, offset, view_size)
        if not isinstance(view, tuple) or len(view) != 3:
            raise Refused("a storage view is malformed")
        return _StorageView(root, _int(view[1], "a view's offset"), _int(view[2], "a view's size"))
    return root


def _load_zip(path, budget):
    """The object of a zip-format file; `budget` bounds the bytes read out of the archive."""
    with zipfile.ZipFile(path) as archive:
        infos = {info.filename: info for info in archive.infolist()}
        pickles = [n for n in infos if n.endswith("/data.pkl") or n == "data.pkl"]
        if len(pickles) != 1:
            raise SafeLoadError(f"{path} is a zip file but not one torch.save wrote (no single "
                                f"data.pkl).")
        prefix = pickles[0][:-len("data.pkl")]

        def read(name, size):
            """A member, after checking it declares `size` bytes; never inflates more."""
            info = infos.get(name)
            if info is None:
                raise SafeLoadError(f"{path} lacks the storage {name}; the file is damaged.")
            if info.file_size != size:
                raise refusal(path, f"its member {name} declares {info.file_size} bytes where "
                                    f"the tensors need {size}")
            with archive.open(info) as member:
                data = member.read(size + 1)
            if len(data) != size:
                raise refusal(path, f"its member {name} holds {len(data)} bytes where it "
                                    f"declares {size}")
            return data

        pkl = infos[pickles[0]].file_size
        try:
            budget.charge(pkl, "its object pickle")
        except Refused as e:
            raise refusal(path, e) from None
        obj_bytes = read(pickles[0], pkl)
        if prefix + "byteorder" in infos:
            if read(prefix + "byteorder", min(infos[prefix + "byteorder"].file_size, 16)) \
                    .decode("latin1").strip() != "little":
                raise SafeLoadError(f"{path} was written on a big-endian machine; not "
                                    f"supported.")
        storages = {}
        obj = unpickle(io.BytesIO(obj_bytes), path, _torch_globals(),
                       lambda pid: _storage_of(pid, storages, legacy=False))
        del obj_bytes
        try:
            for storage in storages.values():
                budget.charge(storage.nbytes, "its storages")
        except Refused as e:
            raise refusal(path, e) from None
        for key, storage in storages.items():
            storage.data = read(f"{prefix}data/{key}", storage.nbytes)
    return obj


def _load_legacy(path, budget):
    storages = {}
    with _open(path) as f:
        magic = unpickle(f, path, {})
        protocol = unpickle(f, path, {})
        info = unpickle(f, path, {})
        if magic != TORCH_MAGIC or protocol != TORCH_LEGACY_PROTOCOL:
            raise SafeLoadError(f"{path} is not a torch.save file this reader knows (magic "
                                f"{magic!r:.40}, protocol {protocol!r:.40}).")
        if isinstance(info, dict) and not info.get("little_endian", True):
            raise SafeLoadError(f"{path} was written on a big-endian machine; not supported.")
        obj = unpickle(f, path, _torch_globals(),
                       lambda pid: _storage_of(pid, storages, legacy=True))
        keys = unpickle(f, path, {})
        if not isinstance(keys, list):
            raise SafeLoadError(f"{path}: the storage list is missing; the file is damaged.")
        size = os.fstat(f.fileno()).st_size
        for key in keys:
            storage = storages.get(str(key))
            header = f.read(8)
            if storage is None or len(header) != 8:
                raise SafeLoadError(f"{path}: storage {key!s:.40} is missing or cut short; the "
                                    f"file is damaged.")
            numel = struct.unpack("<q", header)[0]
            if numel != storage.numel:
                raise SafeLoadError(f"{path}: storage {key} holds {numel} elements, expected "
                                    f"{storage.numel}; the file is damaged.")
            if storage.nbytes > size - f.tell():
                raise SafeLoadError(f"{path}: storage {key} needs {storage.nbytes} bytes but "
                                    f"the file has {size - f.tell()} left; it is cut short.")
            try:
                budget.charge(storage.nbytes, "its storages")
            except Refused as e:
                raise refusal(path, e) from None
            storage.data = f.read(storage.nbytes)
    return obj


def load_torch(path):
    """A PyTorch checkpoint (zip or legacy torch.save format) as plain containers and numpy
    arrays, without importing torch or running anything from the file."""
    path = os.fspath(path)
    kind = torch_format(path)
    if kind is None:
        raise SafeLoadError(f"{path} is not a PyTorch file written by torch.save.")
    size = os.path.getsize(path)
    read_budget = Budget(size, factor=1)      # storages: no more than the file holds
    try:
        obj = _load_zip(path, read_budget) if kind == "zip" else _load_legacy(path, read_budget)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError) as e:
        raise SafeLoadError(f"{path} is a damaged zip file: {type(e).__name__}: {e}") from None
    except MemoryError:
        raise SafeLoadError(f"{path} asks for more memory than is free; not a weights file "
                            f"this machine can read.") from None
    return resolve(obj, path, Budget(size))
