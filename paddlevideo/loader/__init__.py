"""Data side of the toolkit: datasets, pipeline ops, decoders and the DataLoader.

    from paddlevideo.loader import build_dataset, build_dataloader, Compose, FailureTracker
"""
from . import datasets, pipelines  # noqa: F401  (registers DATASETS and PIPELINES)
from .builder import (DistributedEvalBatchSampler, DistributedTrainBatchSampler, LoaderPass,
                      ShuffledBatchSampler, VideoLoader, build_dataloader, build_dataset)
from .datasets import FrameDataset, ListError, SampleError, VideoDataset
from .decoders import DecodeError, open_video
from .failures import DEFAULT_MAX_BAD_RATIO, FailureTracker, TooManyBadFiles
from .guard import LoaderError
from .pipelines import Compose
from .registry import DATASETS, PIPELINES

__all__ = ["build_dataset", "build_dataloader", "Compose", "FailureTracker", "TooManyBadFiles", "LoaderError",
           "DEFAULT_MAX_BAD_RATIO", "VideoDataset", "FrameDataset", "ListError", "SampleError",
           "DecodeError", "open_video", "VideoLoader", "LoaderPass", "ShuffledBatchSampler",
           "DistributedTrainBatchSampler", "DistributedEvalBatchSampler", "DATASETS", "PIPELINES"]
