"""Name -> class registries; components register themselves and are built from config dicts."""
import inspect

from .config import AttrDict, ConfigError, suggest

__all__ = ["Registry"]


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
        if name not in self._items:
            place = f"{where}: " if where else ""
            raise ConfigError(f"{place}unknown {self.kind} '{name}'." + suggest(name, self._items))
        return self._items[name]

    def build(self, cfg, name_key="name", **extra):
        """Build a component from `cfg` ({name_key: NAME, **params}) plus `extra` arguments.

        Every parameter in `cfg` must be an argument of the component's constructor: a misspelled
        one is an error naming its place, never silently dropped.
        """
        if not isinstance(cfg, dict):
            raise ConfigError(f"a {self.kind} config must be a mapping with '{name_key}', got {cfg!r}.")
        where = cfg.where if isinstance(cfg, AttrDict) else (lambda key=None: self.kind)
        if name_key not in cfg:
            raise ConfigError(f"{where()}: the {self.kind} config has no '{name_key}'; "
                              f"choose one of: {', '.join(self.names())}.")
        name = cfg[name_key]
        cls = self.get(name, where(name_key))
        params = {k: v for k, v in cfg.items() if k != name_key}
        check_params(cls, params, where, f"{self.kind} '{name}'")
        return cls(**params, **extra)


def check_params(cls, params, where, what):
    """Raise ConfigError for a key of `params` that `cls(...)` does not take."""
    target = cls.__init__ if inspect.isclass(cls) else cls
    sig = inspect.signature(target)
    if any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
        return
    accepted = [n for n, p in sig.parameters.items()
                if n != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    for key in params:
        if key not in accepted:
            raise ConfigError(f"{where(key)}: {what} has no parameter '{key}'." + suggest(key, accepted))
