"""Deployment: export checked inference models, predict with class names, run online TSM.

    from paddlevideo.deploy import export_from_config, InferenceEngine, VideoPredictor
    engine = InferenceEngine("output/export")        # numpy clips in, logits out

Modules, each importing only those listed before it: `errors`, `labels`, `optimize`, `runtime`
(the inference runtime: sessions, precision, input spec, checks), `inputs` (what predict reads),
`export`, `onnx_export`, `quant`, `predictor`, `api` (Predictor), `serve` (the HTTP server), `online`,
`cli`. Importing this package loads
none of them; a name below is loaded from its module when first used, so `main.py --test`
(which needs only `runtime`) does not load the rest.
"""
import importlib

_WHERE = {
    "DeployError": "errors", "first_line": "errors",
    "load_label_list": "labels", "default_labels": "labels", "config_label_list": "labels",
    "InferenceEngine": "runtime", "resolve_model": "runtime", "read_infer_config": "runtime",
    "cpu_has_bf16": "runtime", "default_cpu_precision": "runtime", "softmax": "runtime",
    "collect_inputs": "inputs", "ClipMaker": "inputs",
    "export_model": "export", "export_from_config": "export",
    "export_onnx": "onnx_export", "quantize_onnx": "quant",
    "VideoPredictor": "predictor", "Predictor": "api",
    "OnlineTSM": "online", "export_online": "online", "OnlineStepEngine": "online",
    "OnlineRecognizer": "online",
    "frame_preprocessor": "online", "open_stream": "online",
}

__all__ = sorted(_WHERE)


def __getattr__(name):
    if name in _WHERE:
        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
