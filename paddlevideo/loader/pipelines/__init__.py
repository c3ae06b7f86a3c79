"""Pipeline ops (registered in PIPELINES under PaddleVideo's names) and Compose."""
from .augmentations import (CenterCrop, Image2Array, MultiScaleCrop, Normalization, RandomCrop,
                            RandomFlip, Scale, TenCrop, ThreeCrop)
from .compose import Compose
from .decode import FrameDecoder, VideoDecoder
from .sample import Sampler, segment_indices

__all__ = ["Compose", "VideoDecoder", "FrameDecoder", "Sampler", "segment_indices", "Scale",
           "MultiScaleCrop", "RandomCrop", "CenterCrop", "ThreeCrop", "TenCrop", "RandomFlip",
           "Image2Array", "Normalization"]
