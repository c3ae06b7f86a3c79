"""Write files in torch.save's formats without torch, for tests only.

`save_torch(obj, path, fmt)` writes `obj` (containers with numpy arrays for tensors) as
`torch.save(obj, path)` would with tensors in their place: `fmt='zip'` (torch >= 1.6, `data.pkl`
+ `data/<key>` storages) or `fmt='legacy'` (magic number, protocol, system info, the object, the
storage keys, then each storage as an int64 element count and its bytes). Tensors pickle as
`torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks)` over a
`torch.FloatStorage` (etc.), as torch writes them. The names `torch`, `torch._utils` exist in
sys.modules only while pickling, so pickle can name the globals; nothing else sees them.
"""
import collections
import io
import pickle
import struct
import sys
import types
import zipfile

import numpy as np

STORAGE_OF = {np.dtype("float32"): "FloatStorage", np.dtype("float64"): "DoubleStorage",
              np.dtype("float16"): "HalfStorage", np.dtype("int64"): "LongStorage",
              np.dtype("int32"): "IntStorage", np.dtype("uint8"): "ByteStorage",
              np.dtype("bool"): "BoolStorage"}
MAGIC = 0x1950a86a20f9469cfc6c


class _Tensor:
    def __init__(self, rebuild, storage, array):
        self.rebuild, self.storage, self.array = rebuild, storage, array

    def __reduce__(self):
        stride = tuple(s // self.array.itemsize for s in self.array.strides)
        return self.rebuild, (self.storage, 0, tuple(self.array.shape), stride, False,
                              collections.OrderedDict())


class _StorageRef:
    def __init__(self, key, kind, array):
        self.key, self.kind, self.array = key, kind, array


def _fake_torch():
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")

    def _rebuild_tensor_v2(*args):
        raise AssertionError("never called: only its name is pickled")

    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    torch._utils = utils
    for name in set(STORAGE_OF.values()):
        setattr(torch, name, type(name, (), {"__module__": "torch"}))
    return torch, utils


def _wrap(obj, storages, rebuild, torch):
    if isinstance(obj, np.ndarray):
        array = np.array(obj, order="C")          # keeps 0-d arrays 0-d
        ref = _StorageRef(str(len(storages)), getattr(torch, STORAGE_OF[array.dtype]), array)
        storages.append(ref)
        return _Tensor(rebuild, ref, array)
    if isinstance(obj, dict):
        return type(obj)((k, _wrap(v, storages, rebuild, torch)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(_wrap(v, storages, rebuild, torch) for v in obj)
    return obj


class _Pickler(pickle.Pickler):
    def __init__(self, file, legacy):
        super().__init__(file, protocol=2)
        self.legacy = legacy

    def persistent_id(self, obj):
        if isinstance(obj, _StorageRef):
            pid = ("storage", obj.kind, obj.key, "cpu", obj.array.size)
            return pid + (None,) if self.legacy else pid
        return None


def save_torch(obj, path, fmt="zip"):
    saved = {name: sys.modules.get(name) for name in ("torch", "torch._utils")}
    assert saved["torch"] is None, "real torch is imported; use torch.save instead"
    torch, utils = _fake_torch()
    sys.modules["torch"], sys.modules["torch._utils"] = torch, utils
    try:
        storages = []
        wrapped = _wrap(obj, storages, utils._rebuild_tensor_v2, torch)
        main = io.BytesIO()
        _Pickler(main, legacy=fmt == "legacy").dump(wrapped)
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
    if fmt == "zip":
        with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
            z.writestr("archive/data.pkl", main.getvalue())
            z.writestr("archive/byteorder", "little")
            for ref in storages:
                z.writestr(f"archive/data/{ref.key}", ref.array.tobytes())
            z.writestr("archive/version", "3\n")
        return path
    with open(path, "wb") as f:
        for part in (MAGIC, 1001, {"protocol_version": 1001, "little_endian": True,
                                   "type_sizes": {"short": 2, "int": 4, "long": 8}}):
            pickle.dump(part, f, protocol=2)
        f.write(main.getvalue())
        pickle.dump([ref.key for ref in storages], f, protocol=2)
        for ref in storages:
            f.write(struct.pack("<q", ref.array.size))
            f.write(ref.array.tobytes())
    return path
