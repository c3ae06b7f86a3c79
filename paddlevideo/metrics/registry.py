"""Registry of metrics, filled by the modules that define them."""
from ..utils.registry import Registry

METRICS = Registry("metric")
