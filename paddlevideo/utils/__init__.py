from .config import AttrDict, ConfigError, get_config, load_config, apply_overrides, validate_config
from .registry import Registry
