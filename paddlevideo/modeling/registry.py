"""Registries of model parts, filled by the modules that define them."""
from ..utils.registry import Registry

BACKBONES = Registry("backbone")
HEADS = Registry("head")
RECOGNIZERS = Registry("framework")
LOSSES = Registry("loss")
