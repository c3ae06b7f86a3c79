"""YAML configs in PaddleVideo's schema, with line-aware errors and `-o` overrides.

A config is a tree of `AttrDict`s. Each node remembers the file it came from, its dotted path
(`PIPELINE.train.transform[0].MultiScaleCrop`) and the line of each key, so every error can say
where the bad key is. Unknown top-level keys and unknown keys of the fixed sections are errors;
the keys of a component (a backbone, a pipeline op, ...) are checked against the component's
constructor when the registry builds it (see `paddlevideo.utils.registry`).
"""
import copy
import difflib
import re

import yaml

__all__ = ["AttrDict", "ConfigError", "get_config", "load_config", "apply_overrides",
           "validate_config", "suggest", "to_plain"]


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
    """A dict with attribute access that knows where each of its keys was written."""

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

    def where(self, key=None):
        """'file.yaml:12 (MODEL.backbone.depth)' for a key, or the node itself when key is None."""
        line = self._lines.get(key) if key is not None else self._lines.get("__self__")
        if isinstance(line, str):           # set by an override
            origin = line
        elif self._file and line:
            origin = f"{self._file}:{line}"
        elif self._file:
            origin = self._file
        else:
            origin = "config"
        return f"{origin} ({self.key_path(key)})"


class _LineLoader(yaml.SafeLoader):
    """SafeLoader that builds AttrDicts and records the line of every key."""


def _construct_mapping(loader, node):
    loader.flatten_mapping(node)
    mapping = AttrDict()
    lines = {"__self__": node.start_mark.line + 1}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in mapping:
            raise ConfigError(f"{loader.name}:{key_node.start_mark.line + 1}: key '{key}' is "
                              f"written twice in the same mapping; keep one.")
        mapping[key] = loader.construct_object(value_node, deep=True)
        lines[key] = key_node.start_mark.line + 1
    object.__setattr__(mapping, "_lines", lines)
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _annotate(node, file, path):
    """Give every AttrDict under `node` its file and dotted path."""
    if isinstance(node, AttrDict):
        object.__setattr__(node, "_file", file)
        object.__setattr__(node, "_path", path)
        for key, value in node.items():
            _annotate(value, file, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for i, item in enumerate(node):
            _annotate(item, file, f"{path}[{i}]")


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


def load_config(path):
    """Read a YAML config file into an AttrDict tree that remembers lines."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    loader = _LineLoader(text)
    loader.name = str(path)
    try:
        cfg = loader.get_single_data()
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    finally:
        loader.dispose()
    if cfg is None:
        cfg = AttrDict()
    if not isinstance(cfg, AttrDict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections (MODEL, DATASET, ...).")
    _annotate(cfg, str(path), "")
    return cfg


_INDEX = re.compile(r"\[(\d+)\]")


def _split_key(key):
    """'A.b[0].c' or 'A.b.0.c' -> ['A', 'b', 0, 'c']."""
    parts = []
    for part in _INDEX.sub(r".\1", key).split("."):
        if part == "":
            raise ConfigError(f"override key '{key}' has an empty part; write it as A.B.C=value.")
        parts.append(int(part) if part.isdigit() else part)
    return parts


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
            value = _to_attrdict(yaml.safe_load(raw)) if raw.strip() else None
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


# Keys that the fixed sections may hold. Components (backbone, head, datasets, pipeline ops,
# metrics, learning-rate schedules) are checked by their registries instead.
TOP_LEVEL_KEYS = {
    "MODEL", "DATASET", "PIPELINE", "OPTIMIZER", "METRIC", "INFERENCE",
    "model_name", "epochs", "log_interval", "save_interval", "val_interval", "output_dir",
    "resume_epoch", "log_level", "seed", "max_bad_ratio", "amp", "amp_level", "amp_dtype",
    "sync_bn", "keep_checkpoints",
}
SECTION_KEYS = {
    "MODEL": {"framework", "backbone", "head"},
    "DATASET": {"batch_size", "num_workers", "train", "valid", "test", "valid_batch_size",
                "test_batch_size", "valid_num_workers", "test_num_workers", "shuffle",
                "drop_last", "max_bad_ratio", "label_list"},
    "PIPELINE": {"train", "valid", "test"},
    "PIPELINE.*": {"decode", "sample", "transform"},
    "OPTIMIZER": {"name", "momentum", "learning_rate", "weight_decay", "grad_clip", "use_nesterov",
                  "fc_lr_mult", "fc_bias_lr_mult", "no_weight_decay_on_bn", "beta1", "beta2"},
}


def _check_keys(node, allowed, section):
    for key in node:
        if key not in allowed:
            raise ConfigError(f"{node.where(key)}: unknown key '{key}' in {section}."
                              + suggest(key, allowed))


def validate_config(cfg):
    """Check the fixed sections' keys; raise ConfigError naming the first unknown one."""
    _check_keys(cfg, TOP_LEVEL_KEYS, "the top level")
    for section, allowed in SECTION_KEYS.items():
        if section.endswith(".*"):
            parent = cfg.get(section[:-2])
            children = parent.values() if isinstance(parent, AttrDict) else []
            for child in children:
                if isinstance(child, AttrDict):
                    _check_keys(child, allowed, child.key_path())
            continue
        node = cfg.get(section)
        if node is None:
            continue
        if not isinstance(node, AttrDict):
            raise ConfigError(f"{cfg.where(section)}: '{section}' must be a mapping.")
        _check_keys(node, allowed, section)
    return cfg


def get_config(path, overrides=None, validate=True):
    """Load a config file, apply `-o` overrides, and check its schema."""
    cfg = load_config(path)
    apply_overrides(cfg, overrides)
    if validate:
        validate_config(cfg)
    cfg.setdefault("model_name", "model")
    return cfg
