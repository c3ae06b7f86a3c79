"""YAML configs in PaddleVideo's schema: `_base_` inheritance, `-o` overrides, checked keys.

A config is a tree of `AttrDict`s. Each node remembers its dotted path
(`PIPELINE.train.transform[0].MultiScaleCrop`) and, for each key, the file and line that wrote it
(or the `-o` override that set it), so every error can say where the bad value came from, even
when it was inherited from a base file.

`_base_: path` (or a list of paths, relative to the file) makes a config start from other configs:
mappings merge key by key, recursively; any other value (a list, a number) from the child
replaces the base's; a mapping with `_delete_: true` replaces the base's mapping instead of merging
into it. Several bases merge in order, later ones winning, at most MAX_CONFIG_FILES reads in
all. YAML anchors and aliases work inside one file, and an alias is a copy: overriding it does
not change the anchored original. A file or `-o` value nested too deep, or whose aliases would
expand too far, is refused while it is read (see `yaml_bounds`).

The fixed sections (top level, MODEL, DATASET, PIPELINE, OPTIMIZER, INFERENCE) are checked here
against `TOP_LEVEL_KEYS` / `SECTION_KEYS`: names and values. The parameters of components (a
backbone, a pipeline op, ...) are checked against their constructors by the registries (see
`paddlevideo.utils.registry`), and a whole config, components and consistency included, by
`paddlevideo.config_check.check_config`.
"""
import copy
import difflib
import logging
import os
import re
from typing import Literal

import yaml

from .typecheck import (Classes, Fraction, Name, NonNegative, Pixels, PositiveFloat, PositiveInt,
                        Ratio, Seed, Segments, Workers, problem)
from .yaml_bounds import BoundedComposer, YAMLLimitError

__all__ = ["AttrDict", "ConfigError", "get_config", "load_config", "apply_overrides",
           "validate_config", "suggest", "to_plain", "dump_config", "config_origins", "TOP_LEVEL_KEYS",
           "SECTION_KEYS", "RENAMED_KEYS", "MAX_CONFIG_FILES"]

logger = logging.getLogger("paddlevideo")


class ConfigError(ValueError):
    """A config problem, with where it is and what to do."""


def suggest(name, choices, n=3):
    """' Did you mean: a, b?' for the nearest valid choices, or a list of all when none is near."""
    choices = sorted(str(c) for c in choices)
    close = difflib.get_close_matches(str(name), choices, n=n, cutoff=0.5)
    if close:
        return " Did you mean: " + ", ".join(close) + "?"
    if len(choices) <= 25:
        return " Valid choices: " + ", ".join(choices) + "."
    return ""


class AttrDict(dict):
    """A dict with attribute access that knows where each of its keys was written.

    `_lines[key]` is the key's origin: 'file.yaml:12', 'override -o KEY=VALUE', or a bare line
    number of this node's own `_file`; `_lines['__self__']` is the node's own.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        object.__setattr__(self, "_file", None)
        object.__setattr__(self, "_path", "")
        object.__setattr__(self, "_lines", {})

    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None

    def __setattr__(self, key, value):
        self[key] = value

    def __deepcopy__(self, memo):
        new = AttrDict({k: copy.deepcopy(v, memo) for k, v in self.items()})
        object.__setattr__(new, "_file", self._file)
        object.__setattr__(new, "_path", self._path)
        object.__setattr__(new, "_lines", dict(self._lines))
        return new

    def key_path(self, key=None):
        if key is None:
            return self._path or "<top level>"
        return f"{self._path}.{key}" if self._path else str(key)

    def origin(self, key=None):
        """'file.yaml:12' or 'override -o ...' for a key (the node itself when key is None)."""
        line = self._lines.get("__self__" if key is None else key)
        if isinstance(line, int):
            return f"{self._file}:{line}" if self._file else f"line {line}"
        return line or self._file or "config"

    def where(self, key=None):
        """'file.yaml:12 (MODEL.backbone.depth)' for a key, or the node itself when key is None."""
        return f"{self.origin(key)} ({self.key_path(key)})"


class _ValueLoader(BoundedComposer, yaml.SafeLoader):
    """SafeLoader that also reads `1e-4` and `2e-05` as numbers, as YAML 1.2 and users do
    (PyYAML's YAML 1.1 rules need a dot, `1.0e-4`, and would give the string '1e-4'), and
    refuses documents nested too deep or with aliases that expand too far (see yaml_bounds)."""


_ValueLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"))


class _LineLoader(_ValueLoader):
    """The value loader, building AttrDicts that record the file:line of every key."""


def _construct_mapping(loader, node):
    loader.flatten_mapping(node)
    mapping = AttrDict()
    lines = {"__self__": f"{loader.name}:{node.start_mark.line + 1}"}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in mapping:
            raise ConfigError(f"{loader.name}:{key_node.start_mark.line + 1}: key '{key}' is "
                              f"written twice in the same mapping; keep one.")
        mapping[key] = loader.construct_object(value_node, deep=True)
        lines[key] = f"{loader.name}:{key_node.start_mark.line + 1}"
    object.__setattr__(mapping, "_file", loader.name)
    object.__setattr__(mapping, "_lines", lines)
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _annotate(node, file, path):
    """Give every AttrDict under `node` its file and dotted path (values set by an override)."""
    if isinstance(node, AttrDict):
        object.__setattr__(node, "_file", file)
        object.__setattr__(node, "_path", path)
        for key, value in node.items():
            _annotate(value, file, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for i, item in enumerate(node):
            _annotate(item, file, f"{path}[{i}]")


def _set_paths(node, path):
    """Give every AttrDict under `node` its dotted path, keeping the files its keys came from."""
    if isinstance(node, AttrDict):
        object.__setattr__(node, "_path", path)
        for key, value in node.items():
            _set_paths(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for i, item in enumerate(node):
            _set_paths(item, f"{path}[{i}]")


def _unshare(node, seen):
    """Copy every mapping or list met a second time (a YAML alias), so each place is its own."""
    if isinstance(node, (dict, list)):
        if id(node) in seen:
            return copy.deepcopy(node)
        seen.add(id(node))
        if isinstance(node, dict):
            for key, value in node.items():
                dict.__setitem__(node, key, _unshare(value, seen))
        else:
            node[:] = [_unshare(v, seen) for v in node]
    return node


def _to_attrdict(node):
    if isinstance(node, dict) and not isinstance(node, AttrDict):
        return AttrDict({k: _to_attrdict(v) for k, v in node.items()})
    if isinstance(node, AttrDict):
        for k, v in node.items():
            dict.__setitem__(node, k, _to_attrdict(v))
        return node
    if isinstance(node, list):
        return [_to_attrdict(v) for v in node]
    return node


def to_plain(node):
    """The config as plain dicts and lists (for saving or printing)."""
    if isinstance(node, dict):
        return {k: to_plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [to_plain(v) for v in node]
    return node


def _parse(path):
    """One YAML file as an AttrDict tree whose keys know their file:line (no `_base_` resolved)."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except IsADirectoryError:
        raise ConfigError(f"{path} is a folder; give a YAML config file.") from None
    loader = _LineLoader(text)
    loader.name = str(path)
    try:
        cfg = loader.get_single_data()
    except YAMLLimitError as e:
        raise ConfigError(str(e)) from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    finally:
        loader.dispose()
    if cfg is None:
        cfg = AttrDict()
        object.__setattr__(cfg, "_file", str(path))
    if not isinstance(cfg, AttrDict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections (MODEL, DATASET, ...).")
    cfg = _unshare(cfg, set())
    _set_paths(cfg, "")
    return cfg


def _replaces(child):
    """Whether the mapping `child` asks to replace, not merge into, the base's (`_delete_: true`)."""
    flag = child.get("_delete_", False)
    if not isinstance(flag, bool):
        raise ConfigError(f"{child.where('_delete_')}: _delete_ must be true or false; got {flag!r}.")
    return flag


def _merge(base, child):
    """`child` written over `base`: mappings merge key by key, anything else replaces."""
    if not (isinstance(base, AttrDict) and isinstance(child, AttrDict)) or _replaces(child):
        return child
    merged = AttrDict()
    lines = {}
    for key, value in base.items():
        dict.__setitem__(merged, key, value)
        lines[key] = base.origin(key)
    for key, value in child.items():
        if key == "_delete_":
            continue
        dict.__setitem__(merged, key, _merge(merged[key], value) if key in merged else value)
        lines[key] = child.origin(key)
    lines["__self__"] = child.origin()
    object.__setattr__(merged, "_file", child._file)
    object.__setattr__(merged, "_path", child._path)
    object.__setattr__(merged, "_lines", lines)
    return merged


def _drop_delete_markers(node):
    """Remove the `_delete_` keys once merging is done (checking each is a boolean)."""
    if isinstance(node, AttrDict):
        if "_delete_" in node:
            _replaces(node)
            dict.__delitem__(node, "_delete_")
        for value in node.values():
            _drop_delete_markers(value)
    elif isinstance(node, list):
        for item in node:
            _drop_delete_markers(item)


MAX_CONFIG_FILES = 64          # files one config may read through _base_ (a shipped one, 1 to 5)


def _resolve(path, chain, reads):
    """The config at `path` with its `_base_` files merged in; `chain` is the files above it,
    `reads` the count of files read so far for this config (a list of one int, shared)."""
    real = os.path.realpath(path)
    if real in [r for r, _ in chain]:
        loop = " -> ".join([p for _, p in chain] + [path])
        raise ConfigError(f"{path}: its _base_ files lead back to it ({loop}); remove one of "
                          f"these _base_ entries.")
    reads[0] += 1
    if reads[0] > MAX_CONFIG_FILES:
        raise ConfigError(f"{path}: reading it would make the config's _base_ files more than "
                          f"{MAX_CONFIG_FILES} reads in all (bases that list the same file "
                          f"again and again multiply); merge some bases.")
    cfg = _parse(path)
    if "_base_" not in cfg:
        return cfg
    where = cfg.where("_base_")
    bases = cfg.pop("_base_")
    if isinstance(bases, str):
        bases = [bases]
    if not isinstance(bases, list) or not bases or not all(isinstance(b, str) and b for b in bases):
        raise ConfigError(f"{where}: _base_ must be a config path or a list of them (relative "
                          f"to this file's folder); got {bases!r}.")
    merged = None
    for base in bases:
        base_path = os.path.normpath(os.path.join(os.path.dirname(path), base))
        if not os.path.isfile(base_path):
            raise ConfigError(f"{where}: base config not found: {base_path} (_base_ paths are "
                              f"relative to the folder of {path}).")
        resolved = _resolve(base_path, chain + [(real, path)], reads)
        merged = resolved if merged is None else _merge(merged, resolved)
    return _merge(merged, cfg)


def load_config(path):
    """Read a YAML config file, with its `_base_` files merged in, into an AttrDict tree that
    remembers where every key was written."""
    cfg = _resolve(str(path), [], [0])
    _drop_delete_markers(cfg)
    _set_paths(cfg, "")
    return cfg


def dump_config(cfg):
    """The resolved config as YAML text (bases merged, overrides applied)."""
    return yaml.safe_dump(to_plain(cfg), sort_keys=False, allow_unicode=True, width=100)


def config_origins(cfg):
    """[(dotted key, value, origin)] for every value of the resolved config: the file:line (or the
    -o) that wrote it. Mappings are walked key by key; a list is one value, as it is replaced whole."""
    rows = []
    for key, value in cfg.items():
        if isinstance(value, AttrDict) and value:
            rows.extend(config_origins(value))
        else:
            rows.append((cfg.key_path(key), to_plain(value), cfg.origin(key)))
    return rows


_INDEX = re.compile(r"\[(\d+)\]")


def _split_key(key):
    """'A.b[0].c' or 'A.b.0.c' -> ['A', 'b', 0, 'c']."""
    parts = []
    for part in _INDEX.sub(r".\1", key).split("."):
        if part == "":
            raise ConfigError(f"override key '{key}' has an empty part; write it as A.B.C=value.")
        parts.append(int(part) if part.isdigit() else part)
    return parts


def _load_value(raw, item):
    """An override's value as YAML, its errors naming the override."""
    loader = _ValueLoader(raw)
    loader.name = f"override -o {item}"
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def apply_overrides(cfg, overrides):
    """Apply `A.B.C=value` strings; values are parsed as YAML (never eval'd).

    An override may set a key the file does not have (the schema check that follows still rejects
    unknown ones), but every parent on the way must exist, and list items are addressed by index.
    """
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"override '{item}' has no '='; write it as A.B.C=value.")
        key, _, raw = item.partition("=")
        key = key.strip()
        try:
            value = _to_attrdict(_load_value(raw, item)) if raw.strip() else None
        except YAMLLimitError as e:
            raise ConfigError(str(e)) from None
        except yaml.YAMLError as e:
            raise ConfigError(f"override '{item}': the value is not valid YAML: {e}") from None
        parts = _split_key(key)
        node = cfg
        for depth, part in enumerate(parts[:-1]):
            done = ".".join(str(p) for p in parts[:depth])
            if isinstance(node, list):
                if not isinstance(part, int) or part >= len(node):
                    raise ConfigError(f"override '{item}': '{done}' is a list of {len(node)} items; "
                                      f"address an item by index 0..{len(node) - 1}.")
                node = node[part]
            elif isinstance(node, dict):
                if part not in node:
                    raise ConfigError(f"override '{item}': there is no key '{part}' under "
                                      f"'{done or '<top level>'}'." + suggest(part, node.keys()))
                if node[part] is None:          # e.g. '- RandomFlip:' with no parameters
                    node[part] = AttrDict()
                    _annotate(node[part], getattr(node, "_file", None), node.key_path(part)
                              if isinstance(node, AttrDict) else str(part))
                node = node[part]
            else:
                raise ConfigError(f"override '{item}': '{done}' is a value, not a section.")
        last = parts[-1]
        if isinstance(node, list):
            if not isinstance(last, int) or last >= len(node):
                raise ConfigError(f"override '{item}': index {last} is outside the list of "
                                  f"{len(node)} items.")
            node[last] = value
        elif isinstance(node, dict):
            if isinstance(value, AttrDict):
                _annotate(value, f"override -o {item}", node.key_path(last))
            node[last] = value
            node._lines[last] = f"override -o {item}"
        else:
            raise ConfigError(f"override '{item}': its parent is a value, not a section.")
    return cfg


_LEVELS = Literal["DEBUG", "INFO", "WARNING", "ERROR", "debug", "info", "warning", "error"]

# The fixed sections: each key they may hold and the values it takes, bounds included (see
# utils/typecheck.py). Components (backbone, head, datasets, pipeline ops, metrics,
# learning-rate schedules) are checked against their constructors by the registries instead.
TOP_LEVEL_KEYS = {
    "MODEL": dict, "DATASET": dict, "PIPELINE": dict, "OPTIMIZER": dict | None,
    "METRIC": dict | None, "INFERENCE": dict | None,
    "model_name": Name, "epochs": PositiveInt, "log_interval": PositiveInt,
    "save_interval": PositiveInt, "val_interval": PositiveInt, "output_dir": str | None,
    "resume_epoch": PositiveInt | None, "log_level": _LEVELS, "seed": Seed,
    "max_bad_ratio": Ratio | None, "amp": bool, "amp_level": Literal["O1", "O2"],
    "amp_dtype": Literal["float16", "bfloat16"], "sync_bn": bool, "keep_checkpoints": PositiveInt,
}
SECTION_KEYS = {
    "MODEL": {"framework": str, "backbone": dict, "head": dict},
    "DATASET": {"batch_size": PositiveInt, "num_workers": Workers, "train": dict, "valid": dict,
                "test": dict, "valid_batch_size": PositiveInt, "test_batch_size": PositiveInt,
                "valid_num_workers": Workers, "test_num_workers": Workers, "shuffle": bool,
                "drop_last": bool, "max_bad_ratio": Ratio | None, "label_list": str | None},
    "PIPELINE": {"train": dict, "valid": dict, "test": dict},
    "PIPELINE.*": {"decode": dict | str, "sample": dict | str, "transform": list},
    "OPTIMIZER": {"name": Literal["Momentum", "SGD", "Adam"], "momentum": Fraction,
                  "learning_rate": PositiveFloat | dict, "weight_decay": NonNegative | dict | None,
                  "grad_clip": PositiveFloat | dict | None, "use_nesterov": bool,
                  "fc_lr_mult": NonNegative, "fc_bias_lr_mult": NonNegative,
                  "no_weight_decay_on_bn": bool, "beta1": Fraction, "beta2": Fraction},
    "OPTIMIZER.weight_decay": {"name": Literal["L2", "L2Decay"], "value": NonNegative},
    "OPTIMIZER.grad_clip": {"name": Literal["ClipGradByGlobalNorm"], "value": PositiveFloat},
    "INFERENCE": {"name": str, "num_seg": Segments, "target_size": Pixels, "seg_len": Segments,
                  "short_size": Pixels, "top_k": Classes, "label_list": str | None},
}
# Keys that moved: old place -> new place. The old place still loads, with a warning.
RENAMED_KEYS = {"INFERENCE.label_list": "DATASET.label_list"}


def _check_section(node, schema, section):
    """Every key of `node` known to `schema`, every value of the type it names."""
    for key, value in node.items():
        if key not in schema:
            raise ConfigError(f"{node.where(key)}: unknown key '{key}' in {section}."
                              + suggest(key, schema))
        wrong = problem(value, schema[key])
        if wrong:
            raise ConfigError(f"{node.where(key)}: {node.key_path(key)} {wrong}.")


def _nodes(cfg, section):
    """The mappings at a dotted section path ('PIPELINE.*' for each mode)."""
    nodes = [cfg]
    for part in section.split("."):
        nxt = []
        for node in nodes:
            if part == "*":
                nxt.extend(node.values())
            elif part in node:
                nxt.append(node[part])
        nodes = [n for n in nxt if isinstance(n, AttrDict)]
    return nodes


def validate_config(cfg):
    """Check the keys and values of the fixed sections; raise ConfigError naming the first wrong
    one with where it was written."""
    _check_section(cfg, TOP_LEVEL_KEYS, "the top level")
    for section, schema in SECTION_KEYS.items():
        for node in _nodes(cfg, section):
            _check_section(node, schema, node.key_path())
    return cfg


def _move_renamed_keys(cfg):
    """Give each old key's value to its new place, saying so once (see RENAMED_KEYS)."""
    for old, new in RENAMED_KEYS.items():
        (old_section, old_key), (new_section, new_key) = old.split("."), new.split(".")
        node = cfg.get(old_section)
        if not isinstance(node, AttrDict) or old_key not in node:
            continue
        target = cfg.get(new_section)
        if target is None:
            target = cfg[new_section] = AttrDict()
            _annotate(target, node._file, new_section)
        if new_key in target and target[new_key] != node[old_key]:
            raise ConfigError(f"{node.where(old_key)}: {old} is the old place of {new}, which "
                              f"says otherwise ({target.where(new_key)}); keep only {new}.")
        if new_key not in target:
            target[new_key] = node[old_key]
            target._lines[new_key] = node.origin(old_key)
        logger.warning(f"{node.where(old_key)}: {old} is now {new}; it is used as {new}. "
                       f"Move it there to silence this warning.")


def get_config(path, overrides=None, validate=True):
    """Load a config file (bases merged), apply `-o` overrides, and check the fixed sections.

    The components and the consistency between sections are checked by
    `paddlevideo.config_check.load_and_check_config`, which every tool calls.
    """
    cfg = load_config(path)
    apply_overrides(cfg, overrides)
    if validate:
        validate_config(cfg)
        _move_renamed_keys(cfg)
    cfg.setdefault("model_name", "model")
    return cfg
