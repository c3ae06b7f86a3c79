"""A PaddlePaddle toolkit for video recognition with the Temporal Shift Module (TSM).

    from paddlevideo import Predictor
    print(Predictor(weights="TSM_k400").predict("video.mp4")[0]["topk"])

`Predictor` (paddlevideo.deploy.api) is loaded when first used, so `import paddlevideo` stays light.
"""
__version__ = "0.1.0"

__all__ = ["Predictor"]


def __getattr__(name):
    if name == "Predictor":
        from .deploy.api import Predictor
        return Predictor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
