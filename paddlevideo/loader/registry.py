"""Registries of datasets and pipeline ops, filled by the modules that define them."""
from ..utils.registry import Registry

DATASETS = Registry("dataset")
PIPELINES = Registry("pipeline op")
