"""Pretrained weights as data, and the one loader that puts any of them into a model.

A weights source is a local path, an http(s) URL, or a name registered in `PRETRAINED` (the
table is data, in `zoo.py`; `ImageNet` resolves from the model's depth). Paddle files in three
key styles load, and PyTorch TSM/ImageNet checkpoints are converted on load (`torch_tsm.py`):
- full-model keys, as PaddleVideo's TSM checkpoints and ours store them (`backbone.conv._conv.weight`,
  `head.fc.weight`);
- backbone-relative keys, as PaddleVideo's ImageNet file stores them (`conv._conv.weight`,
  `res2a.conv0._conv.weight`);
- PaddleClas's older static names (`conv1_weights`, `bn_conv1_scale`, `res2a_branch2a_weights`, ...).
Files are read with the safe reader (`utils/safe_load.py`): a file that asks to run code is refused.
Every load reports how many keys matched, were missing, unexpected, or had another shape. A missing
or mismatched backbone key is an error and a file that matches nothing fails loudly. The head:
testing, export and prediction (`require_head=True`) need the file's head for the model's classes,
anything else is an error; training may start a fresh head (fine-tuning Kinetics-400 -> UCF101 is
one line) and says so once, with both class counts.
"""
import glob
import hashlib
import logging
import os
import re
from dataclasses import dataclass, field

import numpy as np
import paddle

from ..utils.download import DownloadError, cache_dir, download
from ..utils.safe_load import SafeLoadError, load_state, load_torch, torch_format
from .backbones.resnet_tsm import STAGES
from .torch_tsm import FOLD_DIV, ConversionError, convert_torch_checkpoint
from .zoo import PRETRAINED, WeightsSpec, alias_target, describe  # noqa: F401 (re-exported)

__all__ = ["WeightsSpec", "PRETRAINED", "WeightsError", "WeightsDownloadError", "LoadReport",
           "resolve_weights", "read_weights", "load_weights", "convert_keys", "describe"]

logger = logging.getLogger("paddlevideo")


class WeightsError(ValueError):
    """Weights that cannot go into the model as asked; the message says which keys and why."""


class WeightsDownloadError(WeightsError, DownloadError):
    """Weights that could not be downloaded: the message names the URL and where to put the
    file by hand. Both a WeightsError and a DownloadError, so every tool prints it as one line."""


def _checkpoints_in(folder):
    """The .pdparams files in `folder`: `*_best` first, then the latest epochs."""
    found = glob.glob(os.path.join(glob.escape(folder), "*.pdparams"))
    return sorted(found, key=lambda p: (not p.endswith("_best.pdparams"), -os.path.getmtime(p), p))


def resolve_weights(source, depth=None):
    """A local file for `source` (path, URL or registered name), downloading if needed.

    depth: the model's ResNet depth, which the `ImageNet` name needs.
    """
    source = str(source)
    try:
        if source in PRETRAINED:
            spec = PRETRAINED[source]
            if spec.by_depth:
                target = alias_target(spec, depth)
                if target is None:
                    raise WeightsError(f"weights '{source}' stand for {spec.description}; "
                                       f"none is registered for depth {depth} (only for "
                                       f"{', '.join(str(d) for d, _ in spec.by_depth)}).")
                logger.info("%s for ResNet-%s: %s", source, depth, target)
                spec = PRETRAINED[target]
            return download(spec.url, sha256=spec.sha256, size=spec.size)
        if source.startswith(("http://", "https://")):
            # A folder per URL, so two URLs ending in the same file name never share a cache entry.
            folder = "url-" + hashlib.sha256(source.encode()).hexdigest()[:12]
            name = os.path.basename(source.split("?")[0])
            return download(source, dest=cache_dir("weights", folder, name))
    except DownloadError as e:
        raise WeightsDownloadError(f"weights '{source}': {e}") from None
    if os.path.isfile(source):
        return source
    if os.path.isdir(source):
        inside = _checkpoints_in(source)
        if inside:
            raise WeightsError(f"weights '{source}' is a folder; pass the checkpoint inside it, "
                               f"e.g. {inside[0]} (it holds {_few(inside, 4)}).")
        raise WeightsError(f"weights '{source}' is a folder with no .pdparams checkpoint in it; "
                           f"pass a checkpoint file, e.g. output/<model_name>/<model_name>_best"
                           f".pdparams.")
    if os.path.isfile(source + ".pdparams"):
        return source + ".pdparams"
    raise WeightsError(f"weights '{source}' not found: it is neither a file, a URL, nor a "
                       f"registered name ({', '.join(PRETRAINED)}).")


def read_weights(path):
    """(state dict, conversion) of a weights file, read without running code: a Paddle file's
    state dict as is (conversion None), or a PyTorch TSM/ImageNet checkpoint converted to our
    key names (conversion: what `torch_tsm.convert_torch_checkpoint` did). Arrays are numpy."""
    try:
        if torch_format(path) is not None:
            conversion = convert_torch_checkpoint(load_torch(path), path)
            return conversion.state, conversion
        state = load_state(path, return_numpy=True)
    except (SafeLoadError, ConversionError, OSError) as e:
        raise WeightsError(str(e)) from None
    if not isinstance(state, dict):
        raise WeightsError(f"{path} holds a {type(state).__name__}, not a state dict.")
    not_names = [k for k in state if not isinstance(k, str)]
    if not_names:
        raise WeightsError(f"{path} is not a state dict: its keys must be tensor names, but "
                           f"{len(not_names)} are not (e.g. {not_names[0]!r:.40}, a "
                           f"{type(not_names[0]).__name__}).")
    tensors = {k: v for k, v in state.items() if isinstance(v, np.ndarray)}
    if not tensors:
        raise WeightsError(f"{path} holds no tensors (keys: {_few(list(state), 4)}); is it a "
                           f"weights file?")
    return tensors, None


_STATIC_UNITS = {"2a": "conv0", "2b": "conv1", "2c": "conv2", "1": "short"}
_STATIC_BN = {"scale": "weight", "offset": "bias", "mean": "_mean", "variance": "_variance"}
_STATIC_CONV = re.compile(r"^res(\w+?)_branch(2a|2b|2c|1)_weights$")
_STATIC_NORM = re.compile(r"^bn(\w+?)_branch(2a|2b|2c|1)_(scale|offset|mean|variance)$")
_STATIC_STEM_NORM = re.compile(r"^bn_conv1_(scale|offset|mean|variance)$")


def _static_to_dygraph(key):
    """PaddleClas static name -> backbone-relative name, or None if it is not a backbone tensor."""
    if key == "conv1_weights":
        return "conv._conv.weight"
    m = _STATIC_STEM_NORM.match(key)
    if m:
        return f"conv._batch_norm.{_STATIC_BN[m.group(1)]}"
    m = _STATIC_CONV.match(key)
    if m:
        return f"res{m.group(1)}.{_STATIC_UNITS[m.group(2)]}._conv.weight"
    m = _STATIC_NORM.match(key)
    if m:
        return f"res{m.group(1)}.{_STATIC_UNITS[m.group(2)]}._batch_norm.{_STATIC_BN[m.group(3)]}"
    return None


def convert_keys(state, model_keys):
    """Rename a loaded state dict's keys to the model's naming, whatever style it was saved in."""
    wants_prefix = any(k.startswith("backbone.") for k in model_keys)
    keys = list(state)
    if any(k.startswith(("backbone.", "head.")) for k in keys):
        converted = dict(state)                      # full-model keys
        if not wants_prefix:                        # loading into a bare backbone
            converted = {k[len("backbone."):] if k.startswith("backbone.") else k: v
                         for k, v in state.items()}
        return converted
    if "conv1_weights" in state or any(_STATIC_CONV.match(k) for k in keys):
        renamed = {}
        for k, v in state.items():
            new = _static_to_dygraph(k)
            renamed[new if new is not None else k] = v
        state = renamed
    prefix = "backbone." if wants_prefix else ""
    return {(prefix + k if _BACKBONE_NAME.match(k) else k): v for k, v in state.items()}


# A backbone-relative tensor name: the stem `conv.` or a residual block `res2a.`, `res4b12.`, ...
_BACKBONE_NAME = re.compile(r"^(conv|res\d[a-z]\d*)\.")


@dataclass
class LoadReport:
    source: str
    matched: list = field(default_factory=list)
    missing: list = field(default_factory=list)
    unexpected: list = field(default_factory=list)
    mismatched: list = field(default_factory=list)   # (key, file shape, model shape)

    def __str__(self):
        text = (f"loaded {self.source}: {len(self.matched)} matched, {len(self.missing)} missing, "
                f"{len(self.unexpected)} unexpected, {len(self.mismatched)} with another shape")
        for what, keys in (("missing", self.missing), ("unexpected", self.unexpected)):
            if keys:
                text += f"\n  {what}: {_few(keys)}"
        if self.mismatched:
            text += "\n  other shape (skipped): " + _few(
                [f"{k} {list(a)} in file vs {list(b)} in model" for k, a, b in self.mismatched])
        return text


def _few(items, n=6):
    items = list(items)
    more = f" ... and {len(items) - n} more" if len(items) > n else ""
    return ", ".join(items[:n]) + more


def _is_head(key):
    return key.startswith("head.")


def _class_count(state):
    """Classes of the head's fc in a (converted) state dict ([in, classes] in Paddle), or None."""
    weight = state.get("head.fc.weight")
    return int(weight.shape[-1]) if weight is not None and len(weight.shape) == 2 else None


def _check_head(path, source, report, state, model_state, require_head):
    """require_head: any head mismatch is an error naming both class counts; otherwise say once
    that the head starts fresh (fine-tuning, or weights without a head)."""
    wrong = [k for k, _, _ in report.mismatched if _is_head(k)]
    missing = [k for k in report.missing if _is_head(k)]
    if not wrong and not missing:
        return
    ours, theirs = _class_count(model_state), _class_count(state)
    if require_head:
        if theirs is not None and theirs != ours:
            raise WeightsError(
                f"{path}: its head has {theirs} classes but the model's has {ours} "
                f"(MODEL.head.num_classes). Testing, exporting, predicting or converting needs the "
                f"checkpoint trained for the config's classes: pass that one, or set "
                f"MODEL.head.num_classes: {theirs} (and the matching label list) if this file is "
                f"the model you mean.")
        raise WeightsError(
            f"{path} has no weights for the model's {ours}-class head ({_few(missing or wrong)}): "
            f"testing, exporting or predicting needs a full checkpoint (e.g. "
            f"output/<model_name>/<model_name>_best.pdparams); backbone-only weights are for "
            f"training (pretrained: or -w).")
    if theirs is not None and theirs != ours:
        logger.info("%s: the head starts fresh for %s classes (the file's head has %s classes): "
                    "fine-tuning from its backbone.", source, ours, theirs)
    else:
        logger.info("%s has no head weights: the model's %s-class head starts fresh.", source,
                    ours)


def _shift_layout(backbone):
    """(shifted blocks, shift settings) of our backbone, or None if unknown: (stage, index)
    pairs for ResNet-TSM, the backbone's own `shift_layout()` where it has one (MobileNetV2)."""
    if callable(getattr(backbone, "shift_layout", None)):
        return backbone.shift_layout()
    blocks, depth = getattr(backbone, "blocks", None), getattr(backbone, "depth", None)
    if blocks is None or depth not in STAGES:
        return None
    shifted, settings, i = [], set(), 0
    for stage, count in enumerate(STAGES[depth][1]):
        for index in range(count):
            shift = getattr(blocks[i], "shift", None)
            i += 1
            if shift is not None:
                shifted.append((stage, index))
                settings.add((shift.mode, float(shift.shift_ratio),
                              getattr(blocks[i - 1], "shift_place", "residual")))
    return tuple(shifted), settings


def _check_shift_layout(path, conversion, backbone, require_head):
    """The converted network shifts where and as the source did, or it is not the source's
    network: an error when testing/exporting (require_head), a warning when training."""
    layout = _shift_layout(backbone)
    if conversion.shifted is None or layout is None:
        return                                      # ImageNet weights: trained without a shift
    ours, settings = layout
    theirs = conversion.shifted
    problem = None
    if theirs and not ours:
        problem = (f"it was trained with the temporal shift in {len(theirs)} blocks but the "
                   f"model shifts none (a TSN config): use a TSM config (ResNetTSM, shift_mode: "
                   f"bidirectional)")
    elif ours and not theirs:
        problem = (f"it was trained without the temporal shift (a TSN checkpoint) but the model "
                   f"shifts {len(ours)} blocks: use a TSN config (backbone ResNet, or shift_mode: "
                   f"none)")
    elif set(ours) != set(theirs):
        problem = (f"it shifts {len(theirs)} blocks ({_blocks(theirs)}) but the model shifts "
                   f"{len(ours)} ({_blocks(ours)})")
    elif theirs and settings != {(conversion.shift_mode, 1.0 / FOLD_DIV, "residual")}:
        mode, ratio, place = sorted(settings)[0]
        problem = (f"it was trained with the {conversion.shift_mode} residual shift of "
                   f"1/{FOLD_DIV} of the channels but the model has shift_mode: {mode}, "
                   f"shift_ratio: {ratio}, shift_place: {place}: set {conversion.shift_mode}, "
                   f"{1.0 / FOLD_DIV}, residual")
    if problem is None:
        return
    if require_head:
        raise WeightsError(f"{path}: {problem}; otherwise its answers would not be the "
                           f"original network's.")
    logger.warning("%s: %s; training starts from its weights anyway.", path, problem)


def _check_arch(path, conversion, backbone):
    """A MobileNetV2 file needs a MobileNetV2 backbone and a ResNet file a ResNet one; say so
    rather than report hundreds of unmatched keys."""
    ours = "mobilenetv2" if type(backbone).__name__.startswith("MobileNetV2") else "resnet"
    if conversion.arch != ours:
        theirs = "MobileNetV2" if conversion.arch == "mobilenetv2" else "ResNet"
        want = ("MobileNetV2TSM (e.g. configs/recognition/tsm/tsm_mobilenetv2_*.yaml)"
                if conversion.arch == "mobilenetv2" else "ResNetTSM or ResNet")
        raise WeightsError(f"{path} holds a {theirs} but the model's backbone is "
                           f"{type(backbone).__name__}: use a config whose backbone is {want}.")


def _blocks(blocks):
    names = [f"features.{b}" if isinstance(b, int) else f"layer{b[0] + 1}.{b[1]}" for b in blocks]
    return ", ".join(names[:4]) + (" ..." if len(names) > 4 else "")


def _note_protocol(source, backbone):
    """Say when a registered checkpoint's published accuracy was measured on other frames."""
    spec = PRETRAINED.get(str(source))
    num_seg = getattr(backbone, "num_seg", None)
    if spec is not None and spec.segments and num_seg and spec.segments != num_seg:
        logger.info("%s was tested with %s frames per clip (published top-1 %s); the model "
                    "takes %s.", source, spec.segments, spec.top1, num_seg)


def load_weights(model, source, require_head=False):
    """Load `source` into `model` (a recognizer, or a bare backbone); return the LoadReport.

    require_head: the file must hold the model's head for the same classes (testing, export,
    prediction); otherwise a head it lacks, or one of another class count, starts fresh
    (training).
    """
    backbone = getattr(model, "backbone", model)
    path = resolve_weights(source, getattr(backbone, "depth", None))
    state, conversion = read_weights(path)
    if conversion is not None:
        logger.info(conversion.summary(path))
        _check_arch(path, conversion, backbone)
        _check_shift_layout(path, conversion, backbone, require_head)
    _note_protocol(source, backbone)
    model_state = model.state_dict()
    state = convert_keys(state, list(model_state))
    report = LoadReport(source=str(source))
    to_load = {}
    for key, value in state.items():
        if key not in model_state:
            report.unexpected.append(key)
            continue
        file_shape, model_shape = tuple(value.shape), tuple(model_state[key].shape)
        if file_shape != model_shape:
            report.mismatched.append((key, file_shape, model_shape))
            continue
        to_load[key] = value
        report.matched.append(key)
    report.missing = [k for k in model_state if k not in state]

    if not report.matched:
        raise WeightsError(f"{path} matches none of the model's {len(model_state)} tensors "
                           f"(its keys look like {_few(list(state), 3)}; the model's look like "
                           f"{_few(list(model_state), 3)}). Is it weights for this model?")
    bad_shape = [m for m in report.mismatched if not _is_head(m[0])]
    if bad_shape:
        raise WeightsError(f"{path}: backbone tensors have another shape (another depth or "
                           f"input?): {_few([f'{k} {list(a)} vs {list(b)}' for k, a, b in bad_shape])}")
    extra_backbone = [k for k in report.unexpected if k.startswith("backbone.")
                      or _BACKBONE_NAME.match(k)]
    if extra_backbone:
        raise WeightsError(f"{path} holds {len(extra_backbone)} backbone tensors the model does "
                           f"not have: {_few(extra_backbone)}. Is it for a deeper ResNet? Check "
                           f"the depth in the config.")
    missing_backbone = [k for k in report.missing if not _is_head(k)]
    if missing_backbone:
        raise WeightsError(f"{path} lacks {len(missing_backbone)} backbone tensors of the model: "
                           f"{_few(missing_backbone)}. Check the depth in the config.")
    _check_head(path, source, report, state, model_state, require_head)

    for key, value in to_load.items():
        target = model_state[key]
        if value.dtype == np.uint16 and target.dtype != paddle.bfloat16:
            value = (value.astype(np.uint32) << 16).view(np.float32)   # Paddle's bfloat16 arrays
        if value.dtype.kind == "f" and value.dtype != np.float32 and target.dtype == paddle.float32:
            value = value.astype(np.float32)          # e.g. a float16 or float64 file
        target.set_value(value)
    # our residual stream carries the original's with shift folds 0 and 1 swapped (torch_tsm.py):
    # recorded so features can be given in the original network's channel order
    backbone.stream_fold_swap = bool(conversion is not None and conversion.permuted)
    logger.info(str(report))
    return report
