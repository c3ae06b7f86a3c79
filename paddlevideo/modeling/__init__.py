"""Models: the temporal shift, ResNet-TSM backbones, heads, recognizers and losses."""
from . import backbones, heads, losses, recognizers  # noqa: F401  (fill the registries)
from .builder import build_backbone, build_head, build_model
from .recognizers import OnlineTSM
from .registry import BACKBONES, HEADS, LOSSES, RECOGNIZERS
from .shift import TemporalShift, shift_folds, temporal_shift
from .weights import PRETRAINED, load_weights
