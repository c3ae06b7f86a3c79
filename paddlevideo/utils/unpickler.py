"""The allow-list unpickler behind every weights, optimizer and PyTorch file we read.

A pickle is a program: an ordinary unpickler calls any function the file names and applies any
state (BUILD) to what it made. Here the pickle never receives a live numpy or storage object:
every global it may name resolves to one of our inert stand-ins, which only record their
arguments, and BUILD applies to nothing but those stand-ins (it is ignored on plain containers
and refused on anything else). Arrays and scalars are made afterwards by `resolve`, from bytes
whose length is checked against shape x itemsize, with a dtype built from a plain string on an
allow list; structured and object dtypes are refused. Every load gets fresh stand-ins.

Sizes are bounded before anything is allocated: no opcode may read more bytes than the file has
left, and a `Budget` caps what is made from a file at twice its size plus a small margin (twice:
a PyTorch bfloat16 tensor widens to float32, and tied weights are made once per reference).
Depth is capped while the result is walked, and shared sub-objects are walked once.
"""
import _compat_pickle
import io
import math
import pickle
import struct

import numpy as np

__all__ = ["SafeLoadError", "Placeholder", "Budget", "StandIn", "Refused", "unpickle",
           "resolve", "placeholder", "refusal"]

MAX_DEPTH = 64                 # containers nested deeper than this are not a weights file
MAX_DIMS = 32                  # numpy's own limit on dimensions (64 in numpy 2; 32 is plenty)
MARGIN = 1 << 20               # bytes a file may make beyond twice its own size

# dtypes a weights file may hold, by numpy's short code (bfloat16 arrives as u2 from Paddle)
DTYPE_CODES = {"f2", "f4", "f8", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "b1"}


class SafeLoadError(ValueError):
    """A file that is not a weights file we can read safely; the message names the file."""


class Refused(pickle.UnpicklingError):
    """Raised while reading a file; turned into a SafeLoadError that names the file."""


def refusal(path, reason):
    return SafeLoadError(f"refused to load {path}: {reason}. It may be malicious or not a "
                         f"checkpoint; nothing in it was run.")


class Placeholder:
    """Stands for an instance of a known metadata class (e.g. mmengine's HistoryBuffer) that a
    checkpoint carries beside its tensors. None of that class's code runs: the arguments and
    state the file gives are dropped."""

    qualname = "?"

    def __init__(self, *args, **kwargs):
        pass

    def __repr__(self):
        return f"<{self.qualname} (not loaded)>"


def placeholder(module, name):
    """A fresh Placeholder class for `module.name` (fresh per global, so per load)."""
    return type(name, (Placeholder,), {"qualname": f"{module}.{name}"})


class Budget:
    """The bytes a file may make: `factor` times its size plus MARGIN, charged before each
    allocation (factor 2 for what is made from the file's data, 1 for what is read out of it)."""

    def __init__(self, file_size, factor=2):
        self.limit, self.used = factor * int(file_size) + MARGIN, 0

    def charge(self, nbytes, what):
        self.used += int(nbytes)
        if self.used > self.limit:
            raise Refused(f"{what} would make {self.used} bytes in all, more than a file of "
                          f"its size can hold (at most {self.limit})")


def count(shape, what):
    """prod(shape) for a shape of non-negative ints, refusing anything else."""
    if not isinstance(shape, (tuple, list)) or len(shape) > MAX_DIMS or not all(
            type(n) is int and n >= 0 for n in shape):
        raise Refused(f"{what} has an invalid shape")
    return math.prod(shape)


def as_bytes(data, what):
    """Raw data as bytes: bytes as is, a Python 2 str as its latin-1 bytes."""
    if isinstance(data, bytes):
        return data
    if isinstance(data, str):
        return data.encode("latin1")
    raise Refused(f"{what} holds its data as {type(data).__name__}, not bytes")


# ---------------------------------------------------------------------------------------------
# stand-ins: what the pickle gets instead of numpy's classes and functions

class StandIn:
    """An inert object the pickle may apply one BUILD to; `make(ctx)` turns it into data."""

    built = False
    is_data = False            # True for stand-ins that `make(ctx)` turns into a value

    def build(self, state):
        if self.built:
            raise Refused(f"it applies state twice to a {self.what}")
        self.record(state)
        self.built = True

    def record(self, state):
        raise Refused(f"it applies state to a {self.what}")

    what = "value"


class ClassRef(StandIn):
    """A class named by the file (numpy.ndarray), usable only as an argument."""

    def __init__(self, name):
        self.name, self.what = name, f"reference to {name}"

    def __call__(self, *args, **kwargs):
        raise Refused(f"it calls {self.name} directly, which a weights file never does")


class DtypeStandIn(StandIn):
    """numpy.dtype(code, align, copy) and its BUILD state, recorded."""

    what = "numpy dtype"

    def __init__(self, code, align=False, copy=True):
        if isinstance(code, bytes):
            code = code.decode("latin1")
        if not isinstance(code, str):
            raise Refused("it makes a numpy dtype from something other than a type code "
                          "(a structured dtype)")
        self.code, self.order = code, "="

    def record(self, state):
        plain = (isinstance(state, tuple) and len(state) in (8, 9) and state[0] in (3, 4)
                 and state[2:5] == (None, None, None) and state[5:8] == (-1, -1, 0)
                 and all(s is None for s in state[8:]))
        if not plain or state[1] not in ("<", "|", "="):
            raise Refused(f"it gives the dtype {self.code!r} a state that is not a plain "
                          f"little-endian number type (a structured or resized dtype)")
        self.order = state[1]

    def make(self, ctx=None):
        if self.code not in DTYPE_CODES:
            raise Refused(f"it holds a numpy dtype {self.code!r}; weights hold only "
                          f"{', '.join(sorted(DTYPE_CODES))}")
        return np.dtype(("|" if self.code[1] == "1" else "<") + self.code)


def _dtype_of(dtype, what):
    if not isinstance(dtype, DtypeStandIn):
        raise Refused(f"{what} has no numpy dtype")
    return dtype.make()


class ArrayStandIn(StandIn):
    """numpy's _reconstruct(ndarray, ...) and the BUILD state (version, shape, dtype,
    fortran, raw bytes) that fills it, recorded; the array is made by `make`."""

    what = "numpy array"
    is_data = True

    def __init__(self, cls, shape=None, typecode=None):
        if not (isinstance(cls, ClassRef) and cls.name == "numpy.ndarray"):
            raise Refused("it rebuilds an array of a class other than numpy.ndarray")
        self.state = None

    def record(self, state):
        if not (isinstance(state, tuple) and len(state) == 5 and state[0] == 1):
            raise Refused("it gives a numpy array a state numpy itself never writes")
        self.state = state

    def make(self, ctx):
        if self.state is None:
            raise Refused("it makes a numpy array without giving it data")
        _, shape, dtype, fortran, raw = self.state
        dtype = _dtype_of(dtype, "an array")
        n = count(shape, "an array")
        raw = as_bytes(raw, "an array")
        if len(raw) != n * dtype.itemsize:
            raise Refused(f"an array of shape {list(shape)} and dtype {dtype} needs "
                          f"{n * dtype.itemsize} bytes but holds {len(raw)}")
        ctx.budget.charge(len(raw), "an array")
        flat = np.frombuffer(raw, dtype)
        return flat.reshape(shape, order="F" if fortran else "C").copy(order="K")


class ScalarStandIn(StandIn):
    """numpy's scalar(dtype, raw bytes), recorded."""

    what = "numpy scalar"
    is_data = True

    def __init__(self, dtype, data=None):
        self.dtype, self.data = dtype, data

    def make(self, ctx):
        dtype = _dtype_of(self.dtype, "a numpy scalar")
        raw = as_bytes(self.data, "a numpy scalar")
        if len(raw) != dtype.itemsize:
            raise Refused(f"a numpy scalar of dtype {dtype} holds {len(raw)} bytes")
        return np.frombuffer(raw, dtype)[0]


def _latin1_bytes(text, encoding="latin1"):
    """Protocol-2 pickles written by Python 3 store bytes as `_codecs.encode(text, 'latin1')`."""
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise Refused(f"it encodes bytes with {encoding!r}")
    return text.encode("latin1")


def _empty_bytes(*args):
    """Protocol-2 pickles store b'' as `builtins.bytes()`."""
    if args:
        raise Refused("it builds bytes from arguments")
    return b""


def _plain_dict(*args, **kwargs):
    """collections.defaultdict without its factory (a factory is code from the file)."""
    return {}


def _ordered_dict(*args):
    if args:
        raise Refused("it builds an OrderedDict from arguments")
    import collections
    return collections.OrderedDict()


def _container(kind):
    def make(*args):
        if len(args) > 1:
            raise Refused(f"it builds a {kind.__name__} from {len(args)} arguments")
        return kind(*args)
    return make


def numpy_globals():
    """(module, name) -> what find_class returns, for numpy and plain containers; fresh per
    call, so every load gets its own."""
    found = {
        ("numpy", "ndarray"): ClassRef("numpy.ndarray"),
        ("numpy", "dtype"): DtypeStandIn,
        ("_codecs", "encode"): _latin1_bytes,
        ("builtins", "bytes"): _empty_bytes,
        ("collections", "OrderedDict"): _ordered_dict,
        ("collections", "defaultdict"): _plain_dict,
        ("builtins", "set"): _container(set),
        ("builtins", "frozenset"): _container(frozenset),
    }
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        found[(module, "_reconstruct")] = ArrayStandIn
        found[(module, "scalar")] = ScalarStandIn
    return found


# Metadata classes of training frameworks, replaced by inert placeholders.
INERT = {("argparse", "Namespace"),
         ("mmengine.logging.history_buffer", "HistoryBuffer"),
         ("mmengine.config.config", "ConfigDict"),
         ("mmcv.utils.config", "ConfigDict"),
         ("mmcv", "ConfigDict")}


# ---------------------------------------------------------------------------------------------
# the unpickler

class _BoundedFile:
    """A file whose reads may not ask for more than remains before `end` (so a length field in
    the pickle cannot make Python allocate more than the file holds)."""

    def __init__(self, file, end):
        self._file, self._end = file, end

    def _left(self):
        return max(0, self._end - self._file.tell())

    def read(self, n=-1):
        left = self._left()
        if n is None or n < 0:
            n = left
        if n > left:
            raise Refused(f"it asks to read {n} bytes where {left} remain")
        return self._file.read(n)

    def readline(self):
        return self._file.readline(self._left())


def _refuse_opcode(name):
    def refuse(self):
        raise Refused(f"it uses the pickle opcode {name}, which weights files never use")
    return refuse


class _Unpickler(pickle._Unpickler):
    """Python's own unpickler with find_class, REDUCE, BUILD and the object-making opcodes
    limited to the stand-ins of this load (the pure-Python one, whose dispatch we can set)."""

    dispatch = dict(pickle._Unpickler.dispatch)

    def __init__(self, file, allowed, persistent=None):
        super().__init__(file, encoding="latin1")
        self._allowed, self._persistent = allowed, persistent
        self._callables = {}       # id -> object, kept alive so an id is never reused

    def find_class(self, module, name):
        # Python 2 names in protocol 0-2 pickles (__builtin__.tuple), as pickle itself maps them
        module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        found = self._allowed.get((module, name))
        if found is None and (module, name) in INERT:
            found = placeholder(module, name)
        if found is None:
            raise Refused(f"it asks to call {module}.{name}, which a weights file never needs "
                          f"(only tensors, arrays and plain containers are read)")
        self._callables[id(found)] = found
        return found

    def persistent_load(self, pid):
        if self._persistent is None:
            raise Refused("it refers to external objects (persistent ids), which a Paddle "
                          "weights file never does")
        return self._persistent(pid)

    def _call(self, func, args, kwargs=None):
        if id(func) not in self._callables or not isinstance(args, tuple):
            raise Refused("it calls something that is not on the allow list")
        return func(*args, **(kwargs or {}))

    def load_reduce(self):
        args = self.stack.pop()
        self.stack[-1] = self._call(self.stack[-1], args)

    def load_newobj(self):
        args = self.stack.pop()
        self.stack[-1] = self._call(self.stack[-1], args)

    def load_newobj_ex(self):
        kwargs, args = self.stack.pop(), self.stack.pop()
        if not isinstance(kwargs, dict):
            raise Refused("it calls something with keyword arguments that are not a dict")
        self.stack[-1] = self._call(self.stack[-1], args, kwargs)

    def _instantiate(self, klass, args):
        self.append(self._call(klass, tuple(args)))

    def load_build(self):
        state = self.stack.pop()
        inst = self.stack[-1]
        if isinstance(inst, StandIn):
            inst.build(state)
        elif not isinstance(inst, (dict, list, Placeholder)):
            # a dict's BUILD carries attributes (torch's `_metadata`): dropped with the rest
            raise Refused(f"it applies state to a {type(inst).__name__}")

    dispatch[pickle.REDUCE[0]] = load_reduce
    dispatch[pickle.NEWOBJ[0]] = load_newobj
    dispatch[pickle.NEWOBJ_EX[0]] = load_newobj_ex
    dispatch[pickle.BUILD[0]] = load_build
    for _op in ("BYTEARRAY8", "NEXT_BUFFER", "READONLY_BUFFER", "EXT1", "EXT2", "EXT4"):
        dispatch[getattr(pickle, _op)[0]] = _refuse_opcode(_op)


def _damaged(path, e):
    return SafeLoadError(f"{path} is not a readable weights file (damaged or another format): "
                         f"{type(e).__name__}: {str(e)[:200]}")


def unpickle(file, path, allowed, persistent=None, end=None):
    """One pickle from `file` (up to byte `end`), resolving only `allowed` globals; errors
    become one-line SafeLoadErrors naming `path`."""
    if end is None:
        here = file.tell()
        end = file.seek(0, io.SEEK_END)
        file.seek(here)
    try:
        return _Unpickler(_BoundedFile(file, end), allowed, persistent).load()
    except Refused as e:
        raise refusal(path, e) from None
    except SafeLoadError:
        raise
    except RecursionError:
        raise SafeLoadError(f"{path} nests values too deeply; not a weights file.") from None
    except MemoryError:
        raise SafeLoadError(f"{path} asks for more memory than is free; not a weights "
                            f"file this machine can read.") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError, KeyError,
            AttributeError, OverflowError, struct.error) as e:
        raise _damaged(path, e) from None


# ---------------------------------------------------------------------------------------------
# after unpickling: stand-ins -> data, with the depth capped and shared parts walked once

class Context:
    """What `resolve` needs: the file's budget, what was made so far (by id), and how many
    values the result holds counting each shared part once per reference (so a file that
    shares one list under itself 64 times cannot become 2**64 values for the walks after)."""

    def __init__(self, budget, node_limit):
        self.budget, self.made = budget, {}
        self.nodes, self.node_limit = 0, node_limit

    def count(self, n):
        self.nodes += n
        if self.nodes > self.node_limit:
            raise Refused(f"it holds more than {self.node_limit} values once its shared parts "
                          f"are counted per reference")


_LEAVES = (str, bytes, int, float, complex, bool, type(None), Placeholder, np.generic)


def _key(key):
    if isinstance(key, tuple):
        return tuple(_key(k) for k in key)
    if isinstance(key, ScalarStandIn):
        return key.make(None)
    if not isinstance(key, (str, bytes, int, float, bool, type(None))):
        raise Refused(f"it uses a {type(key).__name__} as a dictionary key")
    return key


def _resolve(obj, ctx, depth):
    if depth > MAX_DEPTH:
        raise Refused(f"it nests containers more than {MAX_DEPTH} deep (or in a cycle)")
    ctx.count(1)
    if isinstance(obj, _LEAVES):
        return obj
    if id(obj) in ctx.made:
        _, made, nodes, nbytes = ctx.made[id(obj)]
        ctx.count(nodes - 1)
        ctx.budget.charge(nbytes, "a shared part")        # each reference becomes tensors
        return made
    first_node, first_byte = ctx.nodes, ctx.budget.used
    if isinstance(obj, StandIn) and obj.is_data:
        made = obj.make(ctx)
    elif isinstance(obj, dict):
        made = type(obj)()
        for key, value in obj.items():
            made[_key(key)] = _resolve(value, ctx, depth + 1)
    elif isinstance(obj, list):
        made = [_resolve(value, ctx, depth + 1) for value in obj]
    elif isinstance(obj, tuple):
        made = tuple(_resolve(value, ctx, depth + 1) for value in obj)
    elif isinstance(obj, (set, frozenset)):
        made = type(obj)(_key(value) for value in obj)
    else:
        raise Refused(f"it holds a {getattr(obj, 'what', type(obj).__name__)} where data "
                      f"belongs")
    # obj is kept alive, so its id stays unique
    ctx.made[id(obj)] = (obj, made, ctx.nodes - first_node + 1, ctx.budget.used - first_byte)
    return made


def resolve(obj, path, budget):
    """The unpickled object with every stand-in made into data, as one-line errors."""
    try:
        return _resolve(obj, Context(budget, budget.limit), 0)
    except Refused as e:
        raise refusal(path, e) from None
    except RecursionError:
        raise SafeLoadError(f"{path} nests values too deeply; not a weights file.") from None
    except MemoryError:
        raise SafeLoadError(f"{path} asks for more memory than is free; not a weights "
                            f"file this machine can read.") from None


