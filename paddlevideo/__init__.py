"""A PaddlePaddle toolkit for video recognition with the Temporal Shift Module (TSM)."""
__version__ = "0.1.0"
