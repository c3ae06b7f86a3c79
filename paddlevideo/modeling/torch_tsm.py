"""PyTorch TSM checkpoints -> our ResNet-TSM state dict, exactly the original network.

Three kinds of PyTorch file are recognised from their key names:
- the original TSM code's (mit-han-lab/temporal-shift-module): `{'state_dict': ...}` with
  `module.base_model.layer1.0.conv1.net.weight` (`.net` marks a shifted block), ...,
  `module.new_fc.weight`;
- mmaction2's: `{'meta', 'state_dict'}` with `backbone.layer1.0.conv1.conv.net.weight`,
  `backbone.layer1.0.conv1.bn.running_mean`, ..., `cls_head.fc_cls.weight`;
- torchvision's ImageNet ResNets: `conv1.weight`, `layer1.0.conv1.weight`, ..., `fc.weight`.
All three are torchvision ResNets underneath (stride on the 3x3 conv, BatchNorm eps 1e-5), so the
mapping is by name: conv1/bn1 -> `conv`, `layerS.i.convK`/`bnK` -> `res{S+1}{x}.conv{K-1}`,
`downsample` -> `short`, the classifier -> `head.fc` (transposed: Paddle stores [in, out]).

The shift direction. The original code (and mmaction2) moves channel fold 0 (fold = C // 8)
from frame t+1 and fold 1 from frame t-1; Paddle's fused `temporal_shift` moves fold 0 from t-1
and fold 1 from t+1. Let P swap folds 0 and 1 of a C-channel tensor. Then Paddle's shift of P(x)
equals P(the original's shift of x). So if every residual stream of our network carries P of the
original's stream, our network computes exactly the original's function: permute the output
channels (and BatchNorm) of every conv that writes a stream (the stem conv, each block's last
conv, projection shortcuts), the input channels of every conv that reads one (each block's first
conv, projection shortcuts) and the classifier's input rows. This is a pure weight permutation:
the converted model is the same graph as a native one and runs as fast. Weights trained without
the shift (torchvision's ImageNet files, TSN checkpoints) need no permutation: no channel of
theirs is tied to a shift direction.

MobileNetV2 files (the original's offline and online networks, mmaction2's, torchvision's) go to
`torch_mobilenet.py`, which maps them onto MobileNetV2TSM with the same fold swap.

Refused by name, since our network is not theirs: temporal pooling, non-local blocks,
BN-Inception bases, ResNeXt's grouped convolutions, and other modalities than RGB
(optical flow: conv1 takes 2 channels per frame).
"""
import re
from dataclasses import dataclass, field

import numpy as np

from .backbones.resnet_tsm import STAGES, block_name
from .torch_folds import FOLD_DIV, fold_swap
from .torch_mobilenet import convert_mobilenet, is_mobilenet_checkpoint

__all__ = ["FOLD_DIV", "Conversion", "ConversionError", "convert_torch_checkpoint",
           "fold_swap", "swap_shift_folds", "SOURCE_NAMES"]


SOURCE_NAMES = {"mit-han-lab": "the original TSM code's checkpoint",
                "mmaction2": "mmaction2's TSM checkpoint",
                "torchvision": "torchvision's ImageNet ResNet",
                "mit-han-lab-online": "the original TSM online demo's checkpoint",
                "mit-han-lab-imagenet": "the original TSM code's ImageNet MobileNetV2"}

_BN = {"weight": "weight", "bias": "bias", "running_mean": "_mean", "running_var": "_variance",
       "num_batches_tracked": None}
_PARAM = r"(weight|bias|running_mean|running_var|num_batches_tracked)"

# key -> (unit, param, shifted); unit: ("stem",), ("block", S, i, K), ("short", S, i), ("fc",)
_PATTERNS = {
    "mit-han-lab": [
        (re.compile(r"^base_model\.conv1\.(weight)$"), "stem_conv"),
        (re.compile(rf"^base_model\.bn1\.{_PARAM}$"), "stem_bn"),
        (re.compile(r"^base_model\.layer(\d)\.(\d+)\.conv(\d)\.(net\.)?(weight)$"), "conv"),
        (re.compile(rf"^base_model\.layer(\d)\.(\d+)\.bn(\d)\.{_PARAM}$"), "bn"),
        (re.compile(r"^base_model\.layer(\d)\.(\d+)\.downsample\.0\.(weight)$"), "short_conv"),
        (re.compile(rf"^base_model\.layer(\d)\.(\d+)\.downsample\.1\.{_PARAM}$"), "short_bn"),
        (re.compile(r"^new_fc\.(weight|bias)$"), "fc"),
    ],
    "mmaction2": [
        (re.compile(r"^backbone\.conv1\.conv\.(weight)$"), "stem_conv"),
        (re.compile(rf"^backbone\.conv1\.bn\.{_PARAM}$"), "stem_bn"),
        (re.compile(r"^backbone\.layer(\d)\.(\d+)\.conv(\d)\.conv\.(net\.)?(weight)$"), "conv"),
        (re.compile(rf"^backbone\.layer(\d)\.(\d+)\.conv(\d)\.bn\.{_PARAM}$"), "bn"),
        (re.compile(r"^backbone\.layer(\d)\.(\d+)\.downsample\.conv\.(weight)$"), "short_conv"),
        (re.compile(rf"^backbone\.layer(\d)\.(\d+)\.downsample\.bn\.{_PARAM}$"), "short_bn"),
        (re.compile(r"^cls_head\.fc_cls\.(weight|bias)$"), "fc"),
    ],
    "torchvision": [
        (re.compile(r"^conv1\.(weight)$"), "stem_conv"),
        (re.compile(rf"^bn1\.{_PARAM}$"), "stem_bn"),
        (re.compile(r"^layer(\d)\.(\d+)\.conv(\d)\.()(weight)$"), "conv"),
        (re.compile(rf"^layer(\d)\.(\d+)\.bn(\d)\.{_PARAM}$"), "bn"),
        (re.compile(r"^layer(\d)\.(\d+)\.downsample\.0\.(weight)$"), "short_conv"),
        (re.compile(rf"^layer(\d)\.(\d+)\.downsample\.1\.{_PARAM}$"), "short_bn"),
        (re.compile(r"^fc\.(weight|bias)$"), "fc"),
    ],
}

# what we cannot convert, recognised from key names: (pattern, what it is)
_UNSUPPORTED = [
    (re.compile(r"inception|conv1_7x7"), "a BN-Inception base (only ResNet bases convert)"),
    (re.compile(r"non_local|(^|\.)nl\.|\.nl_block"), "non-local blocks (TSM NL)"),
    (re.compile(r"layer\d\.net\."), "temporal pooling (TSM with temporal_pool)"),
]


class ConversionError(ValueError):
    """A PyTorch checkpoint we cannot turn into our network; the message says why."""


@dataclass
class Conversion:
    """A converted checkpoint: our state dict and what was done to get it."""
    source: str                      # 'mit-han-lab', 'mmaction2' or 'torchvision'
    depth: int
    classes: int = None              # None: no classifier we keep (ImageNet files)
    shifted: tuple = None            # (stage, index) of the shifted blocks; None for ImageNet
    arch: str = "resnet"             # 'resnet' or 'mobilenetv2' (torch_mobilenet.py)
    shift_mode: str = "bidirectional"  # how the source shifts (the online demo: unidirectional)
    permuted: int = 0                # tensors whose channels were permuted
    streams: int = 0                 # residual streams whose folds were swapped
    dropped: list = field(default_factory=list)
    state: dict = field(default_factory=dict)

    def summary(self, path):
        kind = SOURCE_NAMES[self.source]
        net = f"ResNet-{self.depth}"
        if self.arch == "mobilenetv2":
            kind, net = kind.replace("ResNet", "MobileNetV2"), "MobileNetV2"
        parts = [f"{path}: {kind}, {net}"]
        if self.classes:
            parts.append(f"{self.classes} classes")
        if self.shifted is not None:
            total = 17 if self.arch == "mobilenetv2" else sum(STAGES[self.depth][1])
            parts.append(f"{self.shift_mode} shift in {len(self.shifted)} of {total} blocks")
        text = ", ".join(parts) + f"; mapped {len(self.state)} tensors"
        if self.dropped:
            text += f" (dropped {len(self.dropped)} BatchNorm step counters)"
        if self.permuted:
            text += (f"; swapped channel folds 0 and 1 of {self.streams} residual streams "
                     f"({self.permuted} tensors) so Paddle's shift direction gives the "
                     f"original's outputs")
        elif self.shift_mode == "unidirectional":
            text += "; its one-way shift already takes fold 0 from the past, as ours does"
        elif self.shifted is not None:
            text += "; no shift in the source, so no permutation"
        return text


def _state_dict_of(obj, path):
    state = obj.get("state_dict", obj) if isinstance(obj, dict) else None
    if not isinstance(state, dict) or not any(isinstance(v, np.ndarray) for v in state.values()):
        raise ConversionError(f"{path} is a PyTorch file without a state dict of tensors "
                              f"(keys: {sorted(map(str, obj))[:5] if isinstance(obj, dict) else type(obj)}).")
    not_names = [k for k in state if not isinstance(k, str)]
    if not_names:
        raise ConversionError(f"{path}: its state dict's keys must be tensor names, but "
                              f"{len(not_names)} are not (e.g. {not_names[0]!r:.40}, a "
                              f"{type(not_names[0]).__name__}).")
    bad = [k for k, v in state.items() if not isinstance(v, np.ndarray)]
    if bad:
        raise ConversionError(f"{path}: state dict entries that are not tensors: {bad[:3]}.")
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in state.items()}


def _source_of(keys, path):
    if any(k.startswith("base_model.") for k in keys) or "new_fc.weight" in keys:
        return "mit-han-lab"
    if any(k.startswith(("backbone.", "cls_head.")) for k in keys):
        return "mmaction2"
    if "conv1.weight" in keys and any(k.startswith("layer1.") for k in keys):
        return "torchvision"
    raise ConversionError(f"{path} is a PyTorch file, but its keys ({', '.join(list(keys)[:3])}, "
                          f"...) are neither the original TSM code's, mmaction2's nor "
                          f"torchvision's ResNet.")


def _refuse_unsupported(state, arch, path):
    for key in state:
        for pattern, what in _UNSUPPORTED:
            if pattern.search(key):
                raise ConversionError(f"{path} holds {what} (e.g. key '{key}'); only the plain "
                                      f"ResNet TSM/TSN converts.")
    if arch and not str(arch).lower().startswith("resnet"):
        raise ConversionError(f"{path} is for the '{arch}' base; only ResNet bases convert.")


def _parse(state, source, path):
    """{key: (unit, torch parameter name, is BatchNorm, shifted)}; unknown keys are an error."""
    parsed, unknown = {}, []
    for key in state:
        for pattern, kind in _PATTERNS[source]:
            m = pattern.match(key)
            if m:
                break
        else:
            unknown.append(key)
            continue
        g = m.groups()
        if kind in ("stem_conv", "stem_bn"):
            unit, param, shifted = ("stem",), g[0], False
        elif kind == "conv":
            unit, param, shifted = ("block", int(g[0]), int(g[1]), int(g[2])), g[4], bool(g[3])
        elif kind == "bn":
            unit, param, shifted = ("block", int(g[0]), int(g[1]), int(g[2])), g[3], False
        elif kind in ("short_conv", "short_bn"):
            unit, param, shifted = ("short", int(g[0]), int(g[1])), g[2], False
        else:
            unit, param, shifted = ("fc",), g[0], False
        parsed[key] = (unit, param, kind.endswith("bn"), shifted)
    if unknown:
        raise ConversionError(f"{path}: {len(unknown)} keys do not map onto a ResNet TSM: "
                              f"{', '.join(unknown[:4])}{' ...' if len(unknown) > 4 else ''}")
    return parsed


def _depth_of(parsed, path):
    counts = {}
    bottleneck = False
    for unit, _, _, _ in parsed.values():
        if unit[0] == "block":
            counts[unit[1]] = max(counts.get(unit[1], 0), unit[2] + 1)
            bottleneck |= unit[3] == 3
    layout = tuple(counts.get(s, 0) for s in (1, 2, 3, 4))
    for depth, (kind, blocks) in STAGES.items():
        if blocks == layout and (kind == "bottleneck") == bottleneck:
            return depth
    raise ConversionError(f"{path}: a ResNet with {layout} blocks per stage "
                          f"({'bottleneck' if bottleneck else 'basic'}) is none of depths "
                          f"{sorted(STAGES)}.")


def _our_name(unit, depth, bottleneck, prefix):
    if unit[0] == "stem":
        return f"{prefix}conv"
    if unit[0] == "fc":
        return "head.fc" if prefix else "fc"
    block = block_name(depth, unit[1] - 1, unit[2])
    if unit[0] == "short":
        return f"{prefix}{block}.short"
    return f"{prefix}{block}.conv{unit[3] - 1}"


def swap_shift_folds(state, depth, prefix="backbone."):
    """Permute our (Paddle-named) state in place so Paddle's shift direction reproduces the
    original's network (see the module docstring). Returns (tensors permuted, streams)."""
    kind, blocks = STAGES[depth]
    last = "conv2" if kind == "bottleneck" else "conv1"
    done, streams = 0, set()

    def unit_out(unit, index):
        nonlocal done
        state[f"{unit}._conv.weight"] = state[f"{unit}._conv.weight"][index]
        for p in ("weight", "bias", "_mean", "_variance"):
            state[f"{unit}._batch_norm.{p}"] = state[f"{unit}._batch_norm.{p}"][index]
        done += 5

    def unit_in(unit, index):
        nonlocal done
        state[f"{unit}._conv.weight"] = state[f"{unit}._conv.weight"][:, index]
        done += 1

    stem = f"{prefix}conv"
    unit_out(stem, fold_swap(state[f"{stem}._conv.weight"].shape[0]))
    streams.add(stem)
    for stage, count in enumerate(blocks):
        for i in range(count):
            block = prefix + block_name(depth, stage, i)
            c_in = state[f"{block}.conv0._conv.weight"].shape[1]
            c_out = state[f"{block}.{last}._conv.weight"].shape[0]
            unit_in(f"{block}.conv0", fold_swap(c_in))
            unit_out(f"{block}.{last}", fold_swap(c_out))
            if f"{block}.short._conv.weight" in state:
                unit_out(f"{block}.short", fold_swap(c_out))
                unit_in(f"{block}.short", fold_swap(c_in))
                streams.add(f"stage {stage}")
    if "head.fc.weight" in state:
        state["head.fc.weight"] = state["head.fc.weight"][fold_swap(state["head.fc.weight"].shape[0])]
        done += 1
    return done, len(streams)


def convert_torch_checkpoint(obj, path, permute=True):
    """A PyTorch checkpoint (as `utils.safe_load.load_torch` returns it) -> Conversion with our
    key names (full-model keys; backbone-relative for torchvision's ImageNet files).

    permute: swap the shift folds when the source shifts (False only to show, in tests, that
    the permutation is what makes the converted network exact).
    """
    state = _state_dict_of(obj, path)
    arch = obj.get("arch") if isinstance(obj, dict) else None
    if is_mobilenet_checkpoint(state, arch):
        return convert_mobilenet(state, path, Conversion(source="", depth=None),
                                 ConversionError, permute)
    _refuse_unsupported(state, arch, path)
    source = _source_of(state, path)
    stem = {"mit-han-lab": "base_model.conv1.weight", "mmaction2": "backbone.conv1.conv.weight",
            "torchvision": "conv1.weight"}[source]
    if stem in state and state[stem].ndim == 4 and state[stem].shape[1] != 3:
        channels = state[stem].shape[1]
        raise ConversionError(f"{path} is not an RGB model: its first conv takes {channels} "
                              f"input channels (optical flow takes 2 per frame); only the RGB "
                              f"modality converts.")
    parsed = _parse(state, source, path)
    depth = _depth_of(parsed, path)
    bottleneck = STAGES[depth][0] == "bottleneck"
    if bottleneck:
        for key, (unit, _, _, _) in parsed.items():
            w = state[key]
            if unit[0] == "block" and unit[3] == 2 and w.ndim == 4 and w.shape[0] != w.shape[1]:
                raise ConversionError(f"{path} has grouped 3x3 convolutions ({key} "
                                      f"{list(w.shape)}): a ResNeXt base, which does not "
                                      f"convert.")
    prefix = "" if source == "torchvision" else "backbone."
    conv = Conversion(source=source, depth=depth)
    shifted = set()
    for key, (unit, param, is_bn, is_shifted) in parsed.items():
        value = state[key]
        if value.dtype.kind == "f":
            value = value.astype(np.float32)
        name = _our_name(unit, depth, bottleneck, prefix)
        if is_shifted:
            shifted.add((unit[1] - 1, unit[2]))
        if unit[0] == "fc":
            if source == "torchvision":
                conv.state[f"{name}.{param}"] = value            # ImageNet classifier: unused
                continue
            conv.state[f"{name}.{param}"] = value.T.copy() if param == "weight" else value
            if param == "bias":
                conv.classes = int(value.shape[0])
        elif is_bn:
            target = _BN[param]
            if target is None:
                conv.dropped.append(key)
                continue
            conv.state[f"{name}._batch_norm.{target}"] = value
        else:
            conv.state[f"{name}._conv.weight"] = value
    if source != "torchvision":
        conv.shifted = tuple(sorted(shifted))
        if shifted and permute:
            conv.permuted, conv.streams = swap_shift_folds(conv.state, depth, prefix)
    return conv
