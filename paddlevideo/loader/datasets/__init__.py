"""Datasets registered in DATASETS: VideoDataset and FrameDataset."""
from .base import BaseDataset, Entry, ListError, SampleError
from .frame import FrameDataset
from .video import VideoDataset

__all__ = ["BaseDataset", "Entry", "ListError", "SampleError", "VideoDataset", "FrameDataset"]
