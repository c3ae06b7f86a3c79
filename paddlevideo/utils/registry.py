"""Name -> class registries; components register themselves and are built from config dicts.

A component's constructor is its config schema: each parameter a config may set, with its type
annotation and default. `Registry.check` holds a config dict against it (names, required
parameters, values, see `utils/typecheck.py`) without building anything, so a whole config can be
checked before a run starts; `Registry.build` checks and then builds.
"""
import functools
import inspect
import typing

from .config import AttrDict, ConfigError, suggest
from .typecheck import problem

__all__ = ["Registry", "check_params", "parameter_default", "constructor_defaults"]


class Registry:
    """A table of components of one kind (backbones, heads, pipeline ops, ...).

    >>> BACKBONES = Registry("backbone")
    >>> @BACKBONES.register()
    ... class ResNetTSM: ...
    >>> BACKBONES.build({"name": "ResNetTSM", "depth": 50})
    """

    def __init__(self, kind):
        self.kind = kind
        self._items = {}

    def register(self, name=None):
        def add(obj):
            key = name or obj.__name__
            if key in self._items and self._items[key] is not obj:
                raise KeyError(f"{self.kind} '{key}' is registered twice "
                               f"({self._items[key].__module__} and {obj.__module__}).")
            self._items[key] = obj
            return obj
        return add

    def __contains__(self, name):
        return name in self._items

    def names(self):
        return sorted(self._items)

    def get(self, name, where=None):
        if not isinstance(name, str) or name not in self._items:
            place = f"{where}: " if where else ""
            raise ConfigError(f"{place}unknown {self.kind} {name!r}." + suggest(name, self._items))
        return self._items[name]

    def check(self, cfg, name_key="name", injected=()):
        """(class, params) for `cfg` ({name_key: NAME, **params}), every param checked.

        `injected` names the constructor arguments the program passes itself (a dataset's
        `pipeline` and `mode`, ...): a config may not set them, nor is it asked to.
        """
        if not isinstance(cfg, dict):
            raise ConfigError(f"a {self.kind} config must be a mapping with '{name_key}', got {cfg!r}.")
        where = _where_of(cfg, self.kind)
        if name_key not in cfg:
            raise ConfigError(f"{where()}: the {self.kind} config has no '{name_key}'; "
                              f"choose one of: {', '.join(self.names())}.")
        name = cfg[name_key]
        cls = self.get(name, where(name_key))
        params = {k: v for k, v in cfg.items() if k != name_key}
        check_params(cls, params, where, f"{self.kind} '{name}'", injected)
        return cls, params

    def build(self, cfg, name_key="name", **extra):
        """Build a component from `cfg` ({name_key: NAME, **params}) plus `extra` arguments.

        Every parameter in `cfg` is checked first (see `check`). A ValueError the constructor
        raises about its arguments becomes a ConfigError naming the config entry.
        """
        cls, params = self.check(cfg, name_key, injected=tuple(extra))
        try:
            return cls(**params, **extra)
        except ValueError as e:
            if type(e) is not ValueError:       # a subclass carries its own full message
                raise
            raise ConfigError(f"{_where_of(cfg, self.kind)()}: {e}") from None


def _where_of(cfg, kind):
    return cfg.where if isinstance(cfg, AttrDict) else (lambda key=None: kind)


@functools.lru_cache(maxsize=None)
def _signature(cls):
    """(parameters, annotations, takes **kwargs) of what `cls(...)` calls."""
    target = cls.__init__ if inspect.isclass(cls) else cls
    sig = inspect.signature(target)
    params = {n: p for n, p in sig.parameters.items()
              if n != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    try:
        hints = typing.get_type_hints(target, include_extras=True)
    except Exception:                       # an annotation that cannot be resolved: names only
        hints = {}
    open_ended = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
    return params, hints, open_ended


def parameter_default(cls, name):
    """The default of `cls`'s constructor parameter `name` (inspect.Parameter.empty if none)."""
    params, _, _ = _signature(cls)
    return params[name].default if name in params else inspect.Parameter.empty


def constructor_defaults(cls):
    """{name: default} of every parameter `cls(...)` takes (inspect.Parameter.empty where it
    has none), in the constructor's order."""
    params, _, _ = _signature(cls)
    return {name: param.default for name, param in params.items()}


def check_params(cls, params, where, what, injected=()):
    """Raise ConfigError for the first entry of `params` that `cls(...)` does not take, a value
    its annotation does not allow, or a required parameter that is missing."""
    accepted, hints, open_ended = _signature(cls)
    for key, value in params.items():
        if key in injected:
            raise ConfigError(f"{where(key)}: {what}: '{key}' is set by the program, not by the "
                              f"config; remove it.")
        if key not in accepted:
            if open_ended:
                continue
            raise ConfigError(f"{where(key)}: {what} has no parameter '{key}'."
                              + suggest(key, [n for n in accepted if n not in injected]))
        wrong = problem(value, hints.get(key, inspect.Parameter.empty))
        if wrong:
            raise ConfigError(f"{where(key)}: {what}: '{key}' {wrong}.")
    for key, param in accepted.items():
        if param.default is param.empty and key not in params and key not in injected:
            raise ConfigError(f"{where()}: {what} needs '{key}'.")
