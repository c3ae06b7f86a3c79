"""PyTorch MobileNetV2 (TSM) checkpoints -> our MobileNetV2TSM state dict, exactly their network.

Four kinds of file, told apart by their key names:
- the original TSM code's offline network (`ops/models.py` over `archs/mobilenet_v2.py`):
  `module.base_model.features.3.conv.0.net.weight` (`.net`: a shifted conv), ...,
  `module.new_fc.weight`; bidirectional shift (the Kinetics file);
- the original online gesture demo (`online_demo/mobilenet_v2_tsm.py`, the released
  `mobilenetv2_jester_online.pth.tar`): a bare state dict `features.2.conv.0.weight`, ...,
  `classifier.weight`; its 10 residual blocks always shift, unidirectionally. The same layout
  with a 1000-class classifier is the original code's ImageNet initialisation (no shift);
- mmaction2's MobileNetV2TSM: `backbone.conv1.conv.weight`,
  `backbone.layer2.1.conv.0.net.conv.weight` (`.net`: shifted),
  `backbone.layer2.1.conv.1.bn.running_mean`, ..., `backbone.conv2.conv.weight`,
  `cls_head.fc_cls.weight`; bidirectional;
- torchvision's ImageNet MobileNetV2: `features.1.conv.0.0.weight`, ..., `classifier.1.weight`.

Block numbering: features.i (i = 1..17) is our `ir{i}`; mmaction2's layerL.j is the same blocks
counted per stage (layer1.0 = ir1, layer2.0 = ir2, layer2.1 = ir3, ...). Conv units: expand,
depthwise, project (block 1 has no expand).

The bidirectional shift direction is converted as for ResNet (`torch_tsm.swap_shift_folds`): the
original moves channel fold 0 from frame t+1, Paddle's fused shift from t-1, so every residual
stream that feeds a shifted block carries its folds 0 and 1 swapped: the project conv (and BN) of
each block writing the stream is permuted on its outputs, the expand conv of each block reading it
on its inputs. The unidirectional demo shifts fold 0 from t-1 exactly as we do: no permutation.
"""
import re

import numpy as np

from .backbones.mobilenet_v2_tsm import BLOCKS, SETTINGS
from .torch_folds import fold_swap

__all__ = ["is_mobilenet_checkpoint", "convert_mobilenet", "swap_mobilenet_folds"]

_PARAM = r"(weight|bias|running_mean|running_var|num_batches_tracked)"
_BN = {"weight": "weight", "bias": "bias", "running_mean": "_mean", "running_var": "_variance",
       "num_batches_tracked": None}
RESIDUAL = tuple(i for i, (c_in, c_out, stride, _) in enumerate(BLOCKS, start=1)
                 if stride == 1 and c_in == c_out)        # 3, 5, 6, 8, 9, 10, 12, 13, 15, 16
LAST = len(BLOCKS) + 1                                     # features.18: the 1x1 conv to 1280

# mmaction2's stages (layer1 ... layer7) -> the index of each one's first block
_STAGE_START = {stage: 1 + sum(r for _, _, r, _ in SETTINGS[:stage - 1])
                for stage in range(1, len(SETTINGS) + 1)}

# position of a conv/BN in a block's Sequential -> (unit, is BN), per source layout
_ORIGINAL_SEQ = {True: {0: ("expand", False), 1: ("expand", True), 3: ("depthwise", False),
                        4: ("depthwise", True), 6: ("project", False), 7: ("project", True)},
                 False: {0: ("depthwise", False), 1: ("depthwise", True), 3: ("project", False),
                         4: ("project", True)}}
_MODULE_SEQ = {True: {0: "expand", 1: "depthwise", 2: "project"},
               False: {0: "depthwise", 1: "project"}}
_TORCHVISION_SEQ = {True: {"0.0": ("expand", False), "0.1": ("expand", True),
                           "1.0": ("depthwise", False), "1.1": ("depthwise", True),
                           "2": ("project", False), "3": ("project", True)},
                    False: {"0.0": ("depthwise", False), "0.1": ("depthwise", True),
                            "1": ("project", False), "2": ("project", True)}}

_ORIG_STEM = re.compile(rf"^(?:base_model\.)?features\.(0|{LAST})\.([01])\.{_PARAM}$")
_ORIG_BLOCK = re.compile(rf"^(?:base_model\.)?features\.(\d+)\.conv\.(\d+)\.(net\.)?{_PARAM}$")
_TV_BLOCK = re.compile(rf"^features\.(\d+)\.conv\.(\d\.\d|\d)\.{_PARAM}$")
_MM_STEM = re.compile(rf"^backbone\.(conv1|conv2)\.(conv|bn)\.{_PARAM}$")
_MM_BLOCK = re.compile(rf"^backbone\.layer(\d)\.(\d+)\.conv\.(\d)\.(net\.)?(conv|bn)\.{_PARAM}$")
_FC = {"new_fc": "mit-han-lab", "classifier": "mit-han-lab-online",
       "cls_head.fc_cls": "mmaction2", "classifier.1": "torchvision"}
_FC_KEY = re.compile(r"^(new_fc|classifier\.1|classifier|cls_head\.fc_cls)\.(weight|bias)$")


def is_mobilenet_checkpoint(state, arch=None):
    """True for a state dict (`module.` stripped) of any of the four MobileNetV2 layouts."""
    if arch is not None and "mobilenet" in str(arch).lower():
        return True
    return any(k.startswith(("features.", "base_model.features.", "backbone.layer1.0.conv.0."))
               for k in state)


def source_of(state):
    """'mit-han-lab' (offline), 'mit-han-lab-online' (the demo, or ImageNet if 1000 classes),
    'mmaction2' or 'torchvision', from the key names."""
    if any(k.startswith("backbone.") for k in state):
        return "mmaction2"
    if any(k.startswith("base_model.") for k in state):
        return "mit-han-lab"
    if "classifier.1.weight" in state or any(_TV_BLOCK.match(k) and ".conv.0.0." in k
                                              for k in state):
        return "torchvision"
    return "mit-han-lab-online"


def _unit(index, position, layout):
    """(our unit name, is BN) of a block's conv at `position` in `layout`, or None."""
    expands = BLOCKS[index - 1][3] != 1 if 1 <= index <= len(BLOCKS) else None
    if expands is None:
        return None
    found = layout[expands].get(position)
    if found is None:
        return None
    if isinstance(found, str):
        return f"ir{index}.{found}", None
    return f"ir{index}.{found[0]}", found[1]


def _parse_key(key, source):
    """(our unit, kind 'conv'|'bn'|'fc', torch param, shifted) or None for an unknown key."""
    m = _FC_KEY.match(key)
    if m:
        return ("head.fc", "fc", m.group(2), False) if _FC[m.group(1)] == source else None
    if source == "mmaction2":
        m = _MM_STEM.match(key)
        if m:
            unit = "conv" if m.group(1) == "conv1" else "conv_last"
            return unit, m.group(2), m.group(3), False
        m = _MM_BLOCK.match(key)
        if m and int(m.group(1)) in _STAGE_START:
            index = _STAGE_START[int(m.group(1))] + int(m.group(2))
            found = _unit(index, int(m.group(3)), _MODULE_SEQ)
            if found:
                return found[0], m.group(5), m.group(6), bool(m.group(4))
        return None
    m = _ORIG_STEM.match(key)
    if m:
        unit = "conv" if m.group(1) == "0" else "conv_last"
        return unit, "bn" if m.group(2) == "1" else "conv", m.group(3), False
    if source == "torchvision":
        m = _TV_BLOCK.match(key)
        found = m and _unit(int(m.group(1)), m.group(2), _TORCHVISION_SEQ)
        return (found[0], "bn" if found[1] else "conv", m.group(3), False) if found else None
    m = _ORIG_BLOCK.match(key)
    found = m and _unit(int(m.group(1)), int(m.group(2)), _ORIGINAL_SEQ)
    if found:
        return found[0], "bn" if found[1] else "conv", m.group(4), bool(m.group(3))
    return None


def convert_mobilenet(state, path, conversion, error, permute=True):
    """Fill `conversion` (a torch_tsm.Conversion) from a MobileNetV2 state dict; `error` is the
    exception class to raise. Keys come out full-model (`backbone.ir3.expand._conv.weight`)."""
    source = source_of(state)
    conversion.source, conversion.arch = source, "mobilenetv2"
    stem = {"mmaction2": "backbone.conv1.conv.weight",
            "mit-han-lab": "base_model.features.0.0.weight"}
    stem_w = state.get(stem.get(source, "features.0.0.weight"))
    if stem_w is not None and stem_w.ndim == 4 and stem_w.shape[1] != 3:
        raise error(f"{path} is not an RGB model: its first conv takes {stem_w.shape[1]} input "
                    f"channels; only the RGB modality converts.")
    shifted, unknown = set(), []
    for key, value in state.items():
        parsed = _parse_key(key, source)
        if parsed is None:
            unknown.append(key)
            continue
        unit, kind, param, is_shifted = parsed
        if value.dtype.kind == "f":
            value = value.astype(np.float32)
        if is_shifted:
            shifted.add(int(unit[2:].split(".")[0]))
        if kind == "fc":
            conversion.state[f"{unit}.{param}"] = value.T.copy() if param == "weight" else value
            if param == "bias":
                conversion.classes = int(value.shape[0])
        elif kind == "bn":
            target = _BN[param]
            if target is None:
                conversion.dropped.append(key)
            else:
                conversion.state[f"backbone.{unit}._batch_norm.{target}"] = value
        else:
            conversion.state[f"backbone.{unit}._conv.weight"] = value
    if unknown:
        raise error(f"{path}: {len(unknown)} keys do not map onto a MobileNetV2 (width 1.0) TSM: "
                    f"{', '.join(unknown[:4])}{' ...' if len(unknown) > 4 else ''}")
    _check_ranks(conversion.state, path, error)
    if source == "torchvision" or (source == "mit-han-lab-online" and conversion.classes == 1000):
        conversion.source = "torchvision" if source == "torchvision" else "mit-han-lab-imagenet"
        conversion.state = {k: v for k, v in conversion.state.items() if not k.startswith("head.")}
        conversion.classes, conversion.shifted = None, None       # ImageNet: no shift, no head
        return conversion
    if source == "mit-han-lab-online":
        conversion.shifted, conversion.shift_mode = RESIDUAL, "unidirectional"
        return conversion
    conversion.shifted, conversion.shift_mode = tuple(sorted(shifted)), "bidirectional"
    if shifted and permute:
        try:
            conversion.permuted, conversion.streams = swap_mobilenet_folds(conversion.state,
                                                                           shifted)
        except KeyError as e:
            raise error(f"{path} shifts blocks {sorted(shifted)} but lacks {e.args[0]}, which the "
                        f"shift direction's conversion needs; the file is incomplete.") from None
    return conversion


def _check_ranks(state, path, error):
    """Conv weights 4-D, BatchNorm vectors 1-D, the fc 2-D/1-D: a file with other shapes is not
    this network, and must not reach the permutation (which indexes by these axes)."""
    for key, value in state.items():
        want = 4 if key.endswith("_conv.weight") else 2 if key == "head.fc.weight" else 1
        if value.ndim != want or 0 in value.shape:
            raise error(f"{path}: tensor for {key} has shape {list(value.shape)}, not a "
                        f"{want}-D tensor as a MobileNetV2 has there; the file is damaged or not "
                        f"a MobileNetV2.")


def swap_mobilenet_folds(state, shifted, prefix="backbone."):
    """Swap channel folds 0 and 1 of every stream feeding a shifted block (see the module
    docstring). Returns (tensors permuted, streams)."""
    # permuted_out[i]: the output of block i (0: the stem) carries swapped folds
    permuted_out = [False] * (len(BLOCKS) + 1)
    for i in shifted:
        permuted_out[i - 1] = True
    changed = True
    while changed:                               # a residual block's output is its input's basis
        changed = False
        for i in RESIDUAL:
            if permuted_out[i] != permuted_out[i - 1]:
                permuted_out[i] = permuted_out[i - 1] = True
                changed = True
    done, streams = 0, 0
    for i in range(1, len(BLOCKS) + 1):
        block = f"{prefix}ir{i}"
        if permuted_out[i - 1]:
            weight = state[f"{block}.expand._conv.weight"]
            state[f"{block}.expand._conv.weight"] = weight[:, fold_swap(weight.shape[1])]
            done += 1
        if permuted_out[i]:
            index = fold_swap(state[f"{block}.project._conv.weight"].shape[0])
            state[f"{block}.project._conv.weight"] = state[f"{block}.project._conv.weight"][index]
            for p in ("weight", "bias", "_mean", "_variance"):
                key = f"{block}.project._batch_norm.{p}"
                state[key] = state[key][index]
            done += 5
            streams += int(i not in RESIDUAL)
    return done, streams
