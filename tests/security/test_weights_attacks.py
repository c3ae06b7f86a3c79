"""Crafted weights, optimizer and PyTorch files: each is refused in one line, reads no memory it
should not, and makes no more than its size justifies (docs/security.md, "Weights and optimizer
files"). The files are written opcode by opcode, as an attacker would write them."""
import io
import os
import pickle
import struct
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from paddlevideo.utils.safe_load import TORCH_MAGIC, SafeLoadError, load_state, load_torch

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STEM = "backbone.conv._conv.weight"
MIB = 1 << 20


class Ops:
    """A pickle (protocol 3) written opcode by opcode, for what pickle.dumps cannot emit:
    a BUILD on an object made earlier, calls with crafted arguments."""

    def __init__(self):
        self.out = bytearray(b"\x80\x03")

    def glob(self, module, name):
        self.out += f"c{module}\n{name}\n".encode()
        return self

    def str(self, text):
        data = text.encode()
        self.out += b"X" + struct.pack("<I", len(data)) + data
        return self

    def bytes(self, data):
        self.out += b"B" + struct.pack("<I", len(data)) + data
        return self

    def int(self, n):
        if -2 ** 31 <= n < 2 ** 31:
            self.out += b"J" + struct.pack("<i", n)
        else:
            data = pickle.encode_long(n)
            self.out += b"\x8a" + bytes([len(data)]) + data
        return self

    def op(self, codes):
        """Raw opcodes: ( mark, t tuple, R reduce, b build, 0 pop, } dict, s setitem, N None,
        \\x88 True, \\x89 False, ] list, a append, q/h put/get (one-byte memo index)."""
        self.out += codes
        return self

    def put(self, k):
        return self.op(b"q" + bytes([k]))

    def get(self, k):
        return self.op(b"h" + bytes([k]))

    def tuple(self, *items):
        self.op(b"(")
        for item in items:
            self.value(item)
        return self.op(b"t")

    def value(self, v):
        if isinstance(v, Ops):
            self.out += v.out[2:]
        elif v is None:
            self.op(b"N")
        elif isinstance(v, bool):
            self.op(b"\x88" if v else b"\x89")
        elif isinstance(v, int):
            self.int(v)
        elif isinstance(v, str):
            self.str(v)
        elif isinstance(v, bytes):
            self.bytes(v)
        elif isinstance(v, tuple):
            self.tuple(*v)
        else:
            raise TypeError(v)
        return self

    def end(self):
        return bytes(self.out + b".")


def frag():
    """A fragment of opcodes to splice into an Ops (its protocol header is dropped)."""
    return Ops()


def dtype(code, state=(3, "<", None, None, None, -1, -1, 0)):
    return frag().glob("numpy", "dtype").tuple(code, False, True).op(b"R").tuple(*state) \
        .op(b"b")


def array_of(dtype_frag, shape, raw):
    """numpy's own pickle of an array: _reconstruct(ndarray, (0,), b'b') then BUILD."""
    return frag().glob("numpy.core.multiarray", "_reconstruct") \
        .tuple(frag().glob("numpy", "ndarray"), (0,), b"b").op(b"R") \
        .tuple(1, shape, dtype_frag, False, raw).op(b"b")


def state_dict(*items):
    """{key: fragment, ...} as the file's object."""
    ops = Ops().op(b"}(")
    for key, value in items:
        ops.value(key).value(value)
    return ops.op(b"u")


def memory_view_pdparams():
    """The dtype-BUILD attack: an 8-byte array of a void dtype, whose dtype a second BUILD then
    enlarges to 1 GiB, viewed as float32 with numpy.ndarray(shape, '<f4', buffer, offset): the
    'weights' are the process's memory."""
    ops = Ops().op(b"}(").str(STEM)
    ops.value(dtype("V8", (3, "|", None, None, None, 8, 1, 0))).put(1).op(b"0")
    ops.value(array_of(frag().get(1), (1,), b"\0" * 8)).put(2).op(b"0")
    ops.get(1).tuple(3, "|", None, None, None, 1 << 30, 1, 0).op(b"b0")     # enlarge, pop
    ops.glob("numpy", "ndarray").tuple((64, 3, 7, 7), "<f4", frag().get(2), 0).op(b"R")
    return ops.op(b"u").end()


def run_load(kind, path, extra=""):
    """Load `path` in a fresh Python (load_state / load_torch / checkpoint); (exit code,
    stderr, growth of the peak resident size in MiB). A fresh process: the old reader could
    segfault or read the heap, and peak memory is per process."""
    code = f"""
import resource, sys
from paddlevideo.utils.safe_load import SafeLoadError, load_state, load_torch
import numpy
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    obj = {{"state": lambda p: load_state(p, return_numpy=True), "torch": load_torch}}[{kind!r}]({str(path)!r})
    {extra}
    rc = 0
except SafeLoadError as e:
    print(f"error: {{e}}", file=sys.stderr)
    rc = 1
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024)
sys.exit(rc)
"""
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    peak = float(done.stdout.strip().splitlines()[-1]) if done.stdout.strip() else None
    return done.returncode, done.stderr.strip(), peak


def assert_refused(rc, err, path, *words):
    assert rc == 1, (rc, err[-2000:])
    assert err.count("\n") == 0 and str(path) in err, err[-2000:]
    assert "Traceback" not in err
    for word in words:
        assert word in err, err


# --- the pickle never gets a live numpy object ------------------------------------------------

def test_dtype_build_memory_view_in_pdparams_is_refused(tmp_path):
    path = tmp_path / "evil.pdparams"
    path.write_bytes(memory_view_pdparams())
    rc, err, _ = run_load("state", path)
    assert_refused(rc, err, path, "refused to load")


def test_dtype_build_memory_view_in_pdopt_stops_resume(tmp_path):
    import paddle
    from paddlevideo.utils.checkpoint import CheckpointError, load_checkpoint
    prefix = tmp_path / "TSM_epoch_00001"
    paddle.save({"w": paddle.ones([2])}, f"{prefix}.pdparams")
    (tmp_path / "TSM_epoch_00001.pdopt").write_bytes(memory_view_pdparams())
    rc, err, _ = run_load("state", f"{prefix}.pdopt")
    assert_refused(rc, err, f"{prefix}.pdopt", "refused to load")
    with pytest.raises(CheckpointError, match="refused to load") as e:
        load_checkpoint(str(prefix))
    assert "\n" not in str(e.value)


def legacy_pth(obj_pickle, storages=(), keys=()):
    """A legacy torch.save file: magic, protocol, sys info, the object, the keys, then each
    storage as int64 element count + bytes."""
    out = io.BytesIO()
    for part in (TORCH_MAGIC, 1001, {"protocol_version": 1001, "little_endian": True}):
        pickle.dump(part, out, protocol=2)
    out.write(obj_pickle)
    pickle.dump(list(keys), out, protocol=2)
    for numel, data in storages:
        out.write(struct.pack("<q", numel) + data)
    return out.getvalue()


def zip_pth(path, obj_pickle, members=(), compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression) as z:
        z.writestr("archive/data.pkl", obj_pickle)
        z.writestr("archive/byteorder", "little")
        for name, data in members:
            z.writestr(f"archive/data/{name}", data)


def tensor(storage_key, numel, size, stride, kind="FloatStorage", offset=0):
    """torch._utils._rebuild_tensor_v2(persistent storage, offset, size, stride, False, {})."""
    pid = frag().tuple("storage", frag().glob("torch", kind), storage_key, "cpu", numel)
    return frag().glob("torch._utils", "_rebuild_tensor_v2") \
        .tuple(frag().value(pid).op(b"Q"), offset, tuple(size), tuple(stride), False,
               frag().glob("collections", "OrderedDict").op(b")R")).op(b"R")


def test_dtype_build_memory_view_in_pth_is_refused(tmp_path):
    path = tmp_path / "evil.pth"
    obj = Ops().op(b"}(").str("state_dict").op(b"}(").str("module.base_model.conv1.weight")
    obj.value(dtype("V8", (3, "|", None, None, None, 8, 1, 0))).put(1).op(b"0")
    obj.value(array_of(frag().get(1), (1,), b"\0" * 8)).put(2).op(b"0")
    obj.get(1).tuple(3, "|", None, None, None, 1 << 30, 1, 0).op(b"b0")
    obj.glob("numpy", "ndarray").tuple((64, 3, 7, 7), "<f4", frag().get(2), 0).op(b"R")
    path.write_bytes(legacy_pth(obj.op(b"uu").end()))
    rc, err, _ = run_load("torch", path)
    assert_refused(rc, err, path, "refused to load")


def test_structured_and_object_dtypes_are_refused(tmp_path):
    for code in ("V8", "O8", "U4", "M8"):
        path = tmp_path / f"{code}.pdparams"
        path.write_bytes(state_dict((STEM, array_of(dtype(code), (1,), b"\0" * 8))).end())
        with pytest.raises(SafeLoadError, match="refused to load") as e:
            load_state(str(path))
        assert "\n" not in str(e.value)


def test_float_storage_build_cannot_poison_later_files(tmp_path):
    """BUILD on torch.FloatStorage (the old reader's one shared object) set its dtype to <f2
    for every later file of the process."""
    good = tmp_path / "good.pth"
    want = np.arange(6, dtype="<f4")
    obj = Ops().op(b"}(").str("w").value(tensor("0", 6, (2, 3), (3, 1))).op(b"u").end()
    zip_pth(good, obj, [("0", want.tobytes())])
    poisoned = tmp_path / "poison.pth"
    poison = Ops().glob("torch", "FloatStorage").op(b"}(").str("dtype").str("<f2") \
        .op(b"ub0").op(b"}").end()
    zip_pth(poisoned, poison)
    with pytest.raises(SafeLoadError, match="refused to load"):
        load_torch(str(poisoned))
    np.testing.assert_array_equal(load_torch(str(good))["w"], want.reshape(2, 3))


# --- sizes are bounded before anything is allocated -------------------------------------------

def test_stride_zero_view_of_one_float_is_refused_cheaply(tmp_path):
    path = tmp_path / "stride0.pth"
    obj = Ops().op(b"}(").str("w").value(tensor("0", 1, (8192, 8192), (0, 0))).op(b"u").end()
    zip_pth(path, obj, [("0", b"\0\0\x80?")])
    assert path.stat().st_size < 1024
    rc, err, peak = run_load("torch", path)
    assert_refused(rc, err, path, "views more than its storage")
    assert peak < 64, f"peak grew by {peak:.0f} MiB for a {path.stat().st_size}-byte file"


def test_overlapping_views_cannot_multiply_a_storage(tmp_path):
    """Many tensors over one storage: each lies inside it, but together they would make far
    more than the file holds."""
    path = tmp_path / "views.pth"
    obj = Ops().op(b"}(")
    for i in range(200):
        obj.str(f"w{i}").value(tensor("0", MIB, (MIB,), (1,)))
    zip_pth(path, obj.op(b"u").end(), [("0", b"\0" * 4 * MIB)])
    rc, err, peak = run_load("torch", path)
    assert_refused(rc, err, path, "more than a file of its size can hold")
    assert peak < 64, f"peak grew by {peak:.0f} MiB"


def big_param_bomb():
    """`UnpackBigParamInfor@@` joining one array, given no data (the old reader made numpy
    allocate its declared 128 MiB), under two slice names: 256 MiB from ~300 bytes."""
    n = 128 * MIB
    ops = Ops().op(b"}(").str("x.0")
    ops.glob("numpy.core.multiarray", "_reconstruct") \
        .tuple(frag().glob("numpy", "ndarray"), (n,), b"b").op(b"R").put(1)
    ops.str("x.1").get(1)
    ops.str("UnpackBigParamInfor@@").op(b"}(").str("x").op(b"}(").str("OriginShape")
    ops.tuple(2 * n).str("slices").tuple("x.0", "x.1").op(b"uu")
    return ops.op(b"u").end()


def test_big_param_slices_cannot_blow_up(tmp_path):
    path = tmp_path / "bomb.pdparams"
    path.write_bytes(big_param_bomb())
    assert path.stat().st_size < 400
    rc, err, peak = run_load("state", path)
    assert_refused(rc, err, path, "refused to load")
    assert peak < 64, f"peak grew by {peak:.0f} MiB for a {path.stat().st_size}-byte file"


@pytest.mark.parametrize("spec, words", [
    ("no OriginShape", "lacks 'slices' or 'OriginShape'"),
    ("missing slice", "not distinct arrays"),
    ("wrong total", "not the 5 of OriginShape"),
    ("same slice twice", "not distinct arrays"),
])
def test_malformed_big_param_spec_is_one_line(spec, words, tmp_path):
    a = np.arange(3, dtype="float32")
    info = {"no OriginShape": {"w": {"slices": ["w.0"]}},
            "missing slice": {"w": {"OriginShape": [3], "slices": ["w.9"]}},
            "wrong total": {"w": {"OriginShape": [5], "slices": ["w.0"]}},
            "same slice twice": {"w": {"OriginShape": [6], "slices": ["w.0", "w.0"]}}}[spec]
    path = tmp_path / "bad.pdparams"
    with open(path, "wb") as f:
        pickle.dump({"w.0": a, "UnpackBigParamInfor@@": info}, f, protocol=4)
    with pytest.raises(SafeLoadError) as e:
        load_state(str(path), return_numpy=True)
    assert "\n" not in str(e.value) and words in str(e.value), str(e.value)


def test_real_big_param_slices_still_join(tmp_path):
    a = np.arange(12, dtype="float32")
    path = tmp_path / "big.pdparams"
    with open(path, "wb") as f:
        pickle.dump({"w.0": a[:5], "w.1": a[5:], "UnpackBigParamInfor@@":
                     {"w": {"OriginShape": [3, 4], "slices": ["w.0", "w.1"]}}}, f, protocol=2)
    got = load_state(str(path), return_numpy=True)
    assert list(got) == ["w"]
    np.testing.assert_array_equal(got["w"], a.reshape(3, 4))


def test_zip_bomb_storage_is_refused_before_it_inflates(tmp_path):
    """A storage stored deflated: 256 MiB of zeros in well under 1 MiB, declared honestly."""
    path = tmp_path / "bomb.pth"
    n = 64 * MIB                                              # floats: 256 MiB
    obj = Ops().op(b"}(").str("w").value(tensor("0", n, (n,), (1,))).op(b"u").end()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("archive/data.pkl", obj)
        with z.open("archive/data/0", "w", force_zip64=True) as member:
            block = b"\0" * (4 * MIB)
            for _ in range(64):
                member.write(block)
    assert path.stat().st_size < MIB
    rc, err, peak = run_load("torch", path)
    assert_refused(rc, err, path, "more than a file of its size can hold")
    assert peak < 64, f"peak grew by {peak:.0f} MiB for a {path.stat().st_size}-byte file"


def test_zip_member_that_declares_less_than_it_inflates_to_is_refused(tmp_path):
    path = tmp_path / "liar.pth"
    obj = Ops().op(b"}(").str("w").value(tensor("0", 4, (4,), (1,))).op(b"u").end()
    zip_pth(path, obj, [("0", b"\0" * 4 * MIB)], zipfile.ZIP_DEFLATED)
    with pytest.raises(SafeLoadError, match="declares 4194304 bytes where the tensors need 16"):
        load_torch(str(path))


def test_length_fields_cannot_ask_for_more_than_the_file_holds(tmp_path):
    """BINBYTES8 claiming 1 TiB in a 30-byte file: refused before Python allocates it."""
    path = tmp_path / "huge.pdparams"
    path.write_bytes(b"\x80\x04}X\x01\x00\x00\x00w\x8e" + struct.pack("<Q", 1 << 40) + b"xs.")
    rc, err, peak = run_load("state", path)
    assert_refused(rc, err, path, "asks to read 1099511627776 bytes")
    assert peak < 64


# --- every failure is one line ----------------------------------------------------------------

def nested(depth, cycle=False):
    ops = Ops().op(b"}(").str(STEM)
    if cycle:
        ops.op(b"]").put(1).get(1).op(b"a")
    else:
        ops.op(b"]" * depth + b"a" * (depth - 1))
    return ops.op(b"u").end()


@pytest.mark.parametrize("cycle", [False, True])
def test_deep_nesting_is_one_line(cycle, tmp_path):
    data = nested(100_000, cycle)
    pdparams, pth = tmp_path / "deep.pdparams", tmp_path / "deep.pth"
    pdparams.write_bytes(data)
    zip_pth(pth, data)
    for kind, path in (("state", pdparams), ("torch", pth)):
        rc, err, _ = run_load(kind, path)
        assert_refused(rc, err, path, "more than 64 deep")


def test_shared_parts_cannot_multiply_into_a_huge_tree(tmp_path):
    """One list holding the previous one twice, 60 times over: 2**60 values for any walk that
    does not notice the sharing, from a file of a few hundred bytes."""
    ops = Ops().op(b"}(").str(STEM).op(b"]").put(0).op(b"0")
    for level in range(60):
        ops.op(b"(").get(level).get(level).op(b"l").put(level + 1).op(b"0" if level < 59 else b"")
    path = tmp_path / "dag.pdparams"
    path.write_bytes(ops.op(b"u").end())
    rc, err, peak = run_load("state", path)
    assert_refused(rc, err, path, "shared parts are counted per reference")
    assert peak < 64


def test_int_keys_are_one_line(tmp_path):
    from paddlevideo.modeling.weights import WeightsError, read_weights
    path = tmp_path / "ints.pdparams"
    with open(path, "wb") as f:
        pickle.dump({0: np.zeros(3, "float32"), STEM: np.zeros(3, "float32")}, f, protocol=4)
    with pytest.raises(WeightsError, match="keys must be tensor names") as e:
        read_weights(str(path))
    assert "\n" not in str(e.value) and str(path) in str(e.value)
    pth = tmp_path / "ints.pth"
    obj = Ops().op(b"}(").str("state_dict").op(b"}(").int(7).value(
        tensor("0", 3, (3,), (1,))).op(b"uu").end()
    zip_pth(pth, obj, [("0", b"\0" * 12)])
    with pytest.raises(WeightsError, match="keys must be tensor names") as e:
        read_weights(str(pth))
    assert "\n" not in str(e.value)


def test_int_keys_stop_resume_in_one_line(tmp_path):
    from paddlevideo.utils.checkpoint import CheckpointError, load_checkpoint
    prefix = tmp_path / "TSM_epoch_00001"
    for ext in (".pdparams", ".pdopt"):
        with open(f"{prefix}{ext}", "wb") as f:
            pickle.dump({1: np.zeros(3, "float32")}, f, protocol=4)
    with pytest.raises(CheckpointError, match="not a state dict of named tensors"):
        load_checkpoint(str(prefix))


def test_numpy_1_and_2_module_names_both_load(tmp_path):
    """Paddle pickles arrays under the installed numpy's module (numpy._core in 2.x,
    numpy.core in 1.x): files from either load the same."""
    a = np.arange(6, dtype="float32").reshape(2, 3)
    data = pickle.dumps({"w": a, "s": np.float32(1.5)}, protocol=2)
    for module in (b"numpy._core.multiarray", b"numpy.core.multiarray"):
        other = data.replace(b"numpy._core.multiarray", module).replace(
            b"numpy.core.multiarray", module)
        assert module in other
        path = tmp_path / "np.pdparams"
        path.write_bytes(other)
        got = load_state(str(path), return_numpy=True)
        np.testing.assert_array_equal(got["w"], a)
        assert got["s"] == np.float32(1.5) and got["s"].dtype == np.float32


# --- through the real command line ------------------------------------------------------------

def run_export(weights, tmp_path):
    done = subprocess.run(
        [sys.executable, os.path.join(REPO, "tools/export_model.py"), "-c",
         os.path.join(REPO, "configs/recognition/tsm/tsm_demo.yaml"), "-p", str(weights),
         "-o", str(tmp_path / "out"), "--no_onnx"],
        cwd=REPO, capture_output=True, text=True, timeout=600)
    return done.returncode, done.stderr.strip()


def test_cli_refuses_the_memory_view_pdparams_in_one_line(tmp_path):
    path = tmp_path / "evil.pdparams"
    path.write_bytes(memory_view_pdparams())
    rc, err = run_export(path, tmp_path)
    assert_refused(rc, err.splitlines()[-1] if err else err, path, "refused to load")
    assert err.count("\n") == 0, err
    assert not (tmp_path / "out").exists() or not os.listdir(tmp_path / "out")


def test_cli_refuses_the_stride_zero_pth_in_one_line(tmp_path):
    path = tmp_path / "stride0.pth"
    obj = Ops().op(b"}(").str("state_dict").op(b"}(").str("base_model.conv1.weight").value(
        tensor("0", 1, (8192, 8192), (0, 0))).op(b"uu").end()
    zip_pth(path, obj, [("0", b"\0\0\x80?")])
    rc, err = run_export(path, tmp_path)
    assert_refused(rc, err, path, "views more than its storage")
