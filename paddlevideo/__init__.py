"""A PaddlePaddle toolkit for video recognition with the Temporal Shift Module (TSM).

    from paddlevideo import Predictor
    print(Predictor(weights="TSM_k400").predict("video.mp4")[0]["topk"])

`Predictor` (paddlevideo.deploy.api) is loaded when first used, so `import paddlevideo` stays light.
"""
__version__ = "0.1.0"

__all__ = ["Predictor", "load_model", "explain"]


def __getattr__(name):
    """`Predictor` (deploy.api), `load_model` (config_check) and the `explain` module, loaded when
    first used so `import paddlevideo` stays light."""
    import importlib
    if name == "Predictor":
        return importlib.import_module(".deploy.api", __name__).Predictor
    if name == "load_model":
        return importlib.import_module(".config_check", __name__).load_model
    if name == "explain":
        return importlib.import_module(".explain", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
