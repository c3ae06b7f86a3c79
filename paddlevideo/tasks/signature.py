"""What a training run is: every value that makes its network, written into each checkpoint and
compared when the run is resumed, so a resume never continues another model under the old name.

The signature is resolved, not copied from the config: each MODEL component (recognizer,
backbone, head) is looked up in its registry and every constructor argument is recorded, the
config's value or else the constructor's default. A run that leaves `shift_mode` at its default
and one that sets `shift_mode: none` therefore differ in their signatures. Left out are the
arguments that do not change the trained network: initialisation that the checkpoint's tensors
replace (`backbone.pretrained`, `head.std`) and the memory layout (`backbone.data_format`). The
input the network is trained on (frames per clip and crop size of PIPELINE.train) and the
optimizer's name are recorded too.

Checkpoints record `signature_version: 2` beside these keys and are compared key by key on the
union of both sides: a key one side lacks is a difference. Older checkpoints (no version) recorded
the backbone's config keys, the head's name and class count and the optimizer: their backbone's
unrecorded arguments were at their defaults then, and are compared as such; what they never
recorded (the head's other arguments, the recognizer, the input) is compared with nothing, and
`compare_signature` names it so the run can say so.
"""
import inspect
import json

from ..modeling import BACKBONES, HEADS, RECOGNIZERS
from ..utils.checkpoint import NOT_RECORDED as ABSENT
from ..utils.config import to_plain
from ..utils.registry import constructor_defaults

__all__ = ["run_signature", "compare_signature", "SIGNATURE_VERSION", "VERSION_KEY", "ABSENT"]

SIGNATURE_VERSION = 2
VERSION_KEY = "signature_version"
PREFIXES = ("MODEL.", "PIPELINE.", "OPTIMIZER.")   # the meta keys that belong to a signature

# Constructor arguments that do not change the trained network (see the module doc).
_IGNORED = {"backbone": ("pretrained", "data_format"), "head": ("std",),
            "framework": ("backbone", "head")}
_COMPONENTS = (("framework", RECOGNIZERS), ("backbone", BACKBONES), ("head", HEADS))


def _plain(value):
    """A value a checkpoint's meta can hold and compare: numbers, booleans and strings as they
    are, anything else (None, lists, mappings) as canonical JSON."""
    if isinstance(value, (bool, int, float, str)):
        return value
    return json.dumps(to_plain(value), sort_keys=True)


def _resolved(cls, given, ignored):
    """{argument: value} of every constructor argument of `cls`, the given or the default one."""
    values = {}
    for name, default in constructor_defaults(cls).items():
        if name in ignored:
            continue
        if name in given:
            values[name] = _plain(given[name])
        elif default is not inspect.Parameter.empty:
            values[name] = _plain(default)
    return values


def _model_signature(model_cfg):
    signature = {}
    for section, registry in _COMPONENTS:
        if section == "framework":
            name, given = model_cfg.get("framework"), {}
        else:
            part = model_cfg.get(section) or {}
            name, given = part.get("name"), {k: v for k, v in part.items() if k != "name"}
        if not isinstance(name, str) or name not in registry:
            continue                   # the config check refuses it before a run gets here
        if section == "framework":
            signature["MODEL.framework"] = name
        else:
            signature[f"MODEL.{section}.name"] = name
        for key, value in _resolved(registry.get(name), given, _IGNORED[section]).items():
            signature[f"MODEL.{section}.{key}"] = value
    return signature


def _input_signature(dataset):
    """The frames per clip and the crop size (`HxW`) of the training samples, where the
    training pipeline fixes them."""
    signature = {}
    num_seg = getattr(dataset, "num_seg", None)
    if num_seg is not None:
        signature["PIPELINE.train.num_seg"] = int(num_seg)
    pipeline = getattr(dataset, "pipeline", None)
    size = getattr(pipeline, "crop_size", None) if pipeline is not None else None
    if size is None:
        size = getattr(dataset, "crop_size", None)
    if size is not None:
        height, width = (int(v) for v in size)
        signature["PIPELINE.train.crop_size"] = f"{height}x{width}"
    return signature


def run_signature(cfg, train_dataset=None):
    """{key: value} of what a checkpoint must share with this run to be resumed (see the module
    doc), written into every checkpoint's meta with VERSION_KEY."""
    signature = _model_signature(cfg.get("MODEL") or {})
    if train_dataset is not None:
        signature.update(_input_signature(train_dataset))
    signature["OPTIMIZER.name"] = str((cfg.get("OPTIMIZER") or {}).get("name", "Momentum"))
    return signature


def _older_defaults(recorded):
    """The backbone arguments an older checkpoint did not record: its config did not set them,
    so they were at the defaults of the backbone it names."""
    name = recorded.get("MODEL.backbone.name")
    if not isinstance(name, str) or name not in BACKBONES:
        return {}
    return {f"MODEL.backbone.{key}": value for key, value in
            _resolved(BACKBONES.get(name), {}, _IGNORED["backbone"]).items()}


def compare_signature(meta, expected):
    """({key: (checkpoint's value, this run's)} for every difference, [keys not compared]).

    A checkpoint with VERSION_KEY is compared on the union of keys (ABSENT stands for a key one
    side lacks); an older one on what it recorded, plus its backbone's defaults (module doc);
    the keys it cannot speak for are returned as not compared. A checkpoint that recorded
    nothing is compared with nothing here (its tensors are still checked)."""
    recorded = {k: v for k, v in meta.items() if isinstance(k, str) and k.startswith(PREFIXES)}
    if meta.get(VERSION_KEY) is not None:
        keys = sorted(set(recorded) | set(expected))
        differences = {k: (recorded.get(k, ABSENT), expected.get(k, ABSENT)) for k in keys
                       if recorded.get(k, ABSENT) != expected.get(k, ABSENT)}
        return differences, []
    theirs = dict(_older_defaults(recorded), **recorded)
    differences = {k: (theirs[k], v) for k, v in expected.items() if k in theirs and theirs[k] != v}
    return differences, [k for k in expected if k not in theirs]
