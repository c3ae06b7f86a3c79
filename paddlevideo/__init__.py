"""A PaddlePaddle toolkit for video recognition with the Temporal Shift Module (TSM)."""
__version__ = "0.1.0"


def __getattr__(name):
    """`paddlevideo.load_model` (config_check.load_model) and `paddlevideo.explain`, loaded when
    first used so `import paddlevideo` stays light."""
    import importlib
    if name == "load_model":
        return importlib.import_module(".config_check", __name__).load_model
    if name == "explain":
        return importlib.import_module(".explain", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
