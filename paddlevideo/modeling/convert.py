"""Write any weights we can read (a PyTorch TSM/ImageNet checkpoint, a registered name, a URL) as
a PaddleVideo-format `.pdparams` once, so later runs and PaddleVideo itself read it directly.

The file is written by loading the source into a model with the one loader (`load_weights`, so
every check and the exact conversion apply) and saving that model's state dict: full-model keys
(`backbone.res2a.conv0._conv.weight`, `head.fc.weight` [in, out]) when the source has a head,
backbone-relative keys (as PaddleVideo's `ResNet50_pretrain`) when it has none.
"""
import os


from ..utils.checkpoint import atomic_save
from ..utils.config import AttrDict
from .builder import build_backbone, build_model
from .weights import WeightsError, load_weights, read_weights, resolve_weights

__all__ = ["convert_weights_file"]


def _inferred_config(conversion, path):
    """MODEL config of the network a PyTorch checkpoint holds."""
    if conversion is None:
        raise WeightsError(f"{path} is a Paddle file: give the config it belongs to (-c) to "
                           f"check and re-save it.")
    shifts = bool(conversion.shifted)
    if conversion.arch == "mobilenetv2":
        backbone = AttrDict(name="MobileNetV2TSM", num_seg=8,
                            shift_mode=conversion.shift_mode if shifts else "none")
        in_channels = 1280
    else:
        backbone = AttrDict(name="ResNetTSM" if shifts else "ResNet", depth=conversion.depth,
                            num_seg=8)
        in_channels = 512 if conversion.depth < 50 else 2048
    if conversion.classes is None:
        return None, backbone
    head = AttrDict(name="TSMHead" if shifts else "TSNHead", num_classes=conversion.classes,
                    in_channels=in_channels)
    return AttrDict(framework="Recognizer2D", backbone=backbone, head=head), backbone


def convert_weights_file(source, out, model_cfg=None):
    """Convert `source` into `out` (.pdparams); returns (LoadReport, Conversion or None, the
    local file read, tensors written). model_cfg: the MODEL section to check against (else
    inferred from the file)."""
    if not str(out).endswith(".pdparams"):
        raise WeightsError(f"the output must be a .pdparams file, got '{out}'.")
    depth = None
    if model_cfg is not None:
        depth = (model_cfg.get("backbone") or {}).get("depth")
    path = resolve_weights(source, depth)
    _, conversion = read_weights(path)
    has_head = conversion is None or conversion.classes is not None
    if model_cfg is not None:
        model = build_model(model_cfg, load_pretrained=False)
    else:
        full, backbone = _inferred_config(conversion, path)
        model = (build_model(full, load_pretrained=False) if full is not None
                 else build_backbone(backbone))
    report = load_weights(model, path, require_head=has_head)
    state = model.state_dict()
    if not has_head:       # ImageNet weights: the backbone only, under backbone-relative keys
        state = {k[len("backbone."):] if k.startswith("backbone.") else k: v
                 for k, v in state.items() if not k.startswith("head.")}
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    atomic_save(state, out)
    return report, conversion, path, len(state)
