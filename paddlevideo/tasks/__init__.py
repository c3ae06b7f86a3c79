"""Tasks: training and testing loops that glue model, data, solver and metrics together.

Import `paddlevideo.tasks.train` / `.test` for the loops. The CPU thread set-up that must run
before paddle is imported is `paddlevideo.utils.env`.
"""
__all__ = ["train_model", "test_model"]


def train_model(*args, **kwargs):
    from .train import train_model as run
    return run(*args, **kwargs)


def test_model(*args, **kwargs):
    from .test import test_model as run
    return run(*args, **kwargs)
