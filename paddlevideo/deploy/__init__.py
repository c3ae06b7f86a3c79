"""Deployment: export checked inference models, predict with class names, run online TSM.

    from paddlevideo.deploy import export_from_config, InferenceEngine, VideoPredictor
    engine = InferenceEngine.from_model(model, num_seg=8, target_size=224)   # numpy in, logits out
"""
from .engine import InferenceEngine, cpu_count, cpu_has_bf16, default_cpu_precision, resolve_model
from .errors import DeployError
from .export import export_from_config, export_model, read_infer_config, verify_export
from .labels import load_label_list
from .online import (OnlineRecognizer, OnlineStepEngine, OnlineTSM, export_online,
                     frame_preprocessor, open_stream)
from .predictor import VideoPredictor, collect_inputs

__all__ = ["InferenceEngine", "DeployError", "export_model", "export_from_config",
           "read_infer_config", "verify_export", "load_label_list", "OnlineTSM", "export_online",
           "OnlineStepEngine", "OnlineRecognizer", "frame_preprocessor",
           "open_stream", "VideoPredictor", "collect_inputs", "cpu_count", "cpu_has_bf16",
           "default_cpu_precision", "resolve_model"]
