"""Pretrained weights as data, and the one loader that puts any of them into a model.

A weights source is a local path, an http(s) URL, or a name registered in `PRETRAINED`.
Three key styles load:
- full-model keys, as PaddleVideo's TSM checkpoints and ours store them (`backbone.conv._conv.weight`,
  `head.fc.weight`);
- backbone-relative keys, as PaddleVideo's ImageNet file stores them (`conv._conv.weight`,
  `res2a.conv0._conv.weight`);
- PaddleClas's older static names (`conv1_weights`, `bn_conv1_scale`, `res2a_branch2a_weights`, ...).
Every load reports how many keys matched, were missing, unexpected, or had another shape. A missing
or mismatched backbone key is an error, a head of another class count is skipped with a warning
(so fine-tuning Kinetics-400 -> UCF101 is one line), and a file that matches nothing fails loudly.
"""
import hashlib
import logging
import os
import re
from dataclasses import dataclass, field

import paddle

from ..utils.download import cache_dir, download

__all__ = ["WeightsSpec", "PRETRAINED", "WeightsError", "LoadReport", "resolve_weights",
           "load_weights", "convert_keys"]

logger = logging.getLogger("paddlevideo")

_RELEASE = "https://videotag.bj.bcebos.com/PaddleVideo-release2.1/TSM/"


@dataclass(frozen=True)
class WeightsSpec:
    """A published weights file: where it lives and what is known about it."""
    name: str
    url: str
    description: str
    sha256: str = None       # verified after download when known
    size: int = None         # bytes, verified after download when known


PRETRAINED = {spec.name: spec for spec in [
    WeightsSpec("ResNet50_pretrain",
                "https://videotag.bj.bcebos.com/PaddleVideo/PretrainModel/ResNet50_pretrain.pdparams",
                "ImageNet ResNet-50 (PaddleVideo's TSM initialisation), backbone-relative keys"),
    WeightsSpec("TSM_k400", _RELEASE + "TSM_k400.pdparams",
                "PaddleVideo TSM-R50 on Kinetics-400, 71.06 top-1 (8x224, 1 clip x 1 centre crop)"),
    WeightsSpec("TSM_ucf101_nchw", _RELEASE + "TSM_ucf101_nchw.pdparams",
                "PaddleVideo TSM-R50 on UCF101 split 1, 94.42 top-1"),
    WeightsSpec("TSM_ucf101_amp_nchw", _RELEASE + "TSM_ucf101_amp_nchw.pdparams",
                "PaddleVideo TSM-R50 on UCF101 split 1 trained with AMP, 94.40 top-1"),
    WeightsSpec("TSM_ucf101_amp_nhwc", _RELEASE + "TSM_ucf101_amp_nhwc.pdparams",
                "PaddleVideo TSM-R50 on UCF101 split 1 trained with AMP and NHWC, 94.55 top-1"),
]}


class WeightsError(ValueError):
    """Weights that cannot go into the model as asked; the message says which keys and why."""


def resolve_weights(source):
    """A local file for `source` (path, URL or registered name), downloading if needed."""
    source = str(source)
    if source in PRETRAINED:
        spec = PRETRAINED[source]
        return download(spec.url, sha256=spec.sha256, size=spec.size)
    if source.startswith(("http://", "https://")):
        # A folder per URL, so two URLs ending in the same file name never share a cache entry.
        folder = "url-" + hashlib.sha256(source.encode()).hexdigest()[:12]
        name = os.path.basename(source.split("?")[0])
        return download(source, dest=cache_dir("weights", folder, name))
    if os.path.isfile(source):
        return source
    if os.path.isfile(source + ".pdparams"):
        return source + ".pdparams"
    raise WeightsError(f"weights '{source}' not found: it is neither a file, a URL, nor a "
                       f"registered name ({', '.join(PRETRAINED)}).")


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


def load_weights(model, source, require_head=False):
    """Load `source` into `model` (a recognizer, or a bare backbone); return the LoadReport.

    require_head: a missing head key is an error (testing a checkpoint) rather than keeping the
    head's initialisation (starting from ImageNet weights).
    """
    path = resolve_weights(source)
    try:
        state = paddle.load(path)
    except Exception as e:       # paddle raises several types for a file that is not a state dict
        raise WeightsError(f"{path} could not be read as Paddle weights ({e}). Is it a "
                           f".pdparams file?") from None
    if not isinstance(state, dict):
        raise WeightsError(f"{path} holds a {type(state).__name__}, not a state dict.")
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
    missing_head = [k for k in report.missing if _is_head(k)]
    if missing_head and require_head:
        raise WeightsError(f"{path} has no weights for the head ({_few(missing_head)}); "
                           f"a checkpoint to test must hold the whole model.")

    for key, value in to_load.items():
        model_state[key].set_value(value)
    logger.info(str(report))
    if report.mismatched:
        logger.warning("skipped the head of %s: its class count differs from the config's; the "
                       "head keeps its fresh initialisation (expected when fine-tuning).", source)
    return report
