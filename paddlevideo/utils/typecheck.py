"""Config values against type annotations: is this value one the annotation allows, and if not,
how to say what is allowed.

One rule set for every value a config can hold, whether the annotation comes from a component's
constructor (`depth: Literal[18, 34, 50, 101, 152] = 50`) or from the schema of the fixed
sections in `utils/config.py`. Nothing is coerced: `bool` is not an int, `4.5` is not an int,
`'8'` is not a number; an int is accepted where a float is expected. Understood annotations:
`int`, `float`, `bool`, `str`, `None`, `dict`, `list`, `Literal[...]`, unions (`X | None`),
`list[X]`, `tuple[X, Y]` (a list of exactly those; YAML has no tuples), `tuple[X, ...]`,
`dict[K, V]`, and `Annotated[X, Range(...)]` for bounds. Anything else is an isinstance check;
no annotation means any value.
"""
import inspect
import math
import re
import types
import typing

__all__ = ["Range", "FileName", "matches", "describe", "show", "problem", "PositiveInt", "Count",
           "Ratio", "Fraction", "PositiveFloat", "NonNegative", "Pixels", "Segments", "Workers", "Seed",
           "Classes", "Channels", "Name", "MAX_WORKERS", "MAX_CHANNELS", "MAX_PIXELS",
           "MAX_SEGMENTS", "MAX_CLASSES", "MAX_SEED"]


class FileName:
    """For `Annotated[str, FileName()]`: a value used as (part of) a file name, never a path:
    letters, digits, `_`, `-`, `+` and `.`, not starting with `.` or `-`, at most 100
    characters. No separator, `..`, NUL or control character can reach a path through it."""

    _ALLOWED = re.compile(r"[^\W][\w.+-]{0,99}")

    def __contains__(self, value):
        return isinstance(value, str) and bool(self._ALLOWED.fullmatch(value)) and \
            ".." not in value

    def __repr__(self):
        return ("usable as a file name (letters, digits, _ - + ., not starting with . or -, "
                "no / or .., at most 100 characters)")


class Range:
    """Bounds for `Annotated[int, Range(1)]` (>= 1) or `Annotated[float, Range(0, 1, high_open=True)]`
    (>= 0 and < 1). A value outside them, or NaN or an infinity, is not in the range."""

    def __init__(self, low=None, high=None, low_open=False, high_open=False):
        self.low, self.high, self.low_open, self.high_open = low, high, low_open, high_open

    def __contains__(self, value):
        if isinstance(value, float) and not math.isfinite(value):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or (value < self.high if self.high_open else value <= self.high)

    def __repr__(self):
        low = None if self.low is None else f"{'>' if self.low_open else '>='} {self.low}"
        high = None if self.high is None else f"{'<' if self.high_open else '<='} {self.high}"
        if low and high and not (self.low_open or self.high_open):
            return f"from {self.low} to {self.high}"
        return " and ".join(b for b in (low, high) if b)


# Bounds shared by the config schema and the components' signatures: one name per kind of value,
# so a kind has one range wherever it appears. The upper bounds are far above any real setting
# and far below what would exhaust a machine (a 10**9-pixel crop, 100000 loader processes).
MAX_WORKERS = 64                # loader processes per loader; a fixed bound, not the CPU count,
                                # so a config valid on one machine is valid on every one
MAX_PIXELS = 8192               # a side of a frame, crop or resize
MAX_SEGMENTS = 1024             # segments, frames per segment, clips or crops per video
MAX_CLASSES = 100_000           # classes of a head, metric or data set
MAX_CHANNELS = 16_384           # channels into a layer (ResNet-152 ends with 2048)
MAX_SEED = 2 ** 32 - 1          # numpy.random.seed takes [0, 2**32); paddle.seed [0, 2**64)
PositiveInt = typing.Annotated[int, Range(1)]
Count = typing.Annotated[int, Range(0)]
Ratio = typing.Annotated[float, Range(0, 1)]                    # 0 <= r <= 1
Fraction = typing.Annotated[float, Range(0, 1, high_open=True)]  # 0 <= f < 1 (dropout, momentum)
PositiveFloat = typing.Annotated[float, Range(0, low_open=True)]
NonNegative = typing.Annotated[float, Range(0)]
Pixels = typing.Annotated[int, Range(1, MAX_PIXELS)]
Segments = typing.Annotated[int, Range(1, MAX_SEGMENTS)]
Workers = typing.Annotated[int, Range(0, MAX_WORKERS)]
Seed = typing.Annotated[int, Range(0, MAX_SEED)]
Classes = typing.Annotated[int, Range(1, MAX_CLASSES)]
Channels = typing.Annotated[int, Range(1, MAX_CHANNELS)]
Name = typing.Annotated[str, FileName()]                    # part of a file name, never a path

_UNIONS = (typing.Union, types.UnionType)
_NAMES = {int: "an integer", float: "a finite number", bool: "true or false", str: "a string",
          type(None): "null", dict: "a mapping", list: "a list"}
_PLURALS = {int: "integers", float: "finite numbers", bool: "true/false values", str: "strings",
            dict: "mappings", list: "lists"}


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def matches(value, annotation):
    """Whether `value` (as YAML gave it) is allowed by `annotation`."""
    if annotation is inspect.Parameter.empty or annotation is typing.Any:
        return True
    if annotation is None or annotation is type(None):
        return value is None
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return matches(value, args[0]) and all(value in r for r in args[1:]
                                               if isinstance(r, (Range, FileName)))
    if origin in _UNIONS:
        return any(matches(value, a) for a in args)
    if origin is typing.Literal:
        return any(type(value) is type(a) and value == a for a in args)
    if origin in (list, tuple) or annotation in (list, tuple):
        if not isinstance(value, (list, tuple)):
            return False
        if origin is tuple and args and args[-1] is not Ellipsis:
            return len(value) == len(args) and all(map(matches, value, args))
        return not args or all(matches(v, args[0]) for v in value)
    if origin is dict or annotation is dict:
        if not isinstance(value, dict):
            return False
        return not args or all(matches(k, args[0]) and matches(v, args[1]) for k, v in value.items())
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return _is_int(value)
    if annotation is float:             # .nan and .inf are YAML floats, never a setting
        return _is_int(value) or (isinstance(value, float) and math.isfinite(value))
    if isinstance(annotation, type):
        return isinstance(value, annotation)
    return True                     # an annotation this checker does not know: no opinion


def _plural(annotation):
    if typing.get_origin(annotation) is typing.Annotated:
        args = typing.get_args(annotation)
        bounds = " ".join(repr(r) for r in args[1:] if isinstance(r, Range))
        return f"{_plural(args[0])} {bounds}".strip()
    if typing.get_origin(annotation) is None and annotation in _PLURALS:
        return _PLURALS[annotation]
    return f"items that are {describe(annotation)}"


def describe(annotation):
    """What `annotation` allows, in words: 'an integer', 'one of cv2, pillow', 'a list of 3 numbers'."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        bounds = " ".join(repr(r) for r in args[1:] if isinstance(r, (Range, FileName)))
        return f"{describe(args[0])} {bounds}".strip()
    if origin in _UNIONS:
        return " or ".join(describe(a) for a in args)
    if origin is typing.Literal:
        return "one of " + ", ".join(show(a, quote=False) for a in args)
    if origin in (list, tuple):
        if not args:
            return "a list"
        if origin is tuple and args[-1] is not Ellipsis:
            if len(set(args)) == 1:
                return f"a list of {len(args)} {_plural(args[0])}"
            return "a list [" + ", ".join(describe(a) for a in args) + "]"
        return f"a list of {_plural(args[0])}"
    if origin is dict:
        return "a mapping"
    if annotation is None:
        return "null"
    if annotation in _NAMES:
        return _NAMES[annotation]
    return f"a {getattr(annotation, '__name__', annotation)}"


def show(value, quote=True):
    """A value as the user wrote it in YAML: 'two', 4.5, true, null, [1, 2]."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value) if quote else value
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(show(v) for v in value) + "]"
    if isinstance(value, float) and not math.isfinite(value):
        return ".nan" if math.isnan(value) else (".inf" if value > 0 else "-.inf")
    if isinstance(value, dict):
        return "a mapping {" + ", ".join(str(k) for k in value) + "}"
    return repr(value)


def problem(value, annotation):
    """None when `value` fits `annotation`, else 'must be <what>; got <value>'."""
    if matches(value, annotation):
        return None
    return f"must be {describe(annotation)}; got {show(value)}"
