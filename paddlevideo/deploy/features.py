"""Clip features for downstream models: one pooled backbone vector per clip or per window.

    run = feature_runner(model, num_seg=8, target_size=224)          # exported and checked
    vectors = run(clips)                                              # [N, C] float32
    write_features("out/features", vectors, rows)                     # .npy (+ .parquet)

The vector is modeling.features.ClipFeatures' (the head's pool and consensus, before dropout and
fc; the original network's channel order for converted PyTorch checkpoints). The exported path
saves that layer as its own inference program (BatchNorm folded, as the logits program is), so
the exported logits program stays as it is; the program is checked against the dygraph layer
before use and runs through the same InferenceEngine as predictions.
"""
import json
import os

import numpy as np

from .errors import DeployError

__all__ = ["feature_runner", "write_features", "parquet_available", "FEATURE_TOLERANCE"]

FEATURE_TOLERANCE = 1e-5    # max |exported - dygraph| / max |dygraph| accepted for a feature


def feature_runner(model, num_seg, target_size, engine="paddle", **engine_kwargs):
    """A callable clips [N, T, 3, S, S] -> features [N, C]. engine: 'dygraph' (the model
    itself) or an exported engine ('paddle', 'onnxruntime' is not offered: the features program
    has no ONNX check), with InferenceEngine's kwargs. The exported program must agree with the
    dygraph layer within FEATURE_TOLERANCE on a random batch, or DeployError."""
    from ..modeling.features import ClipFeatures, clip_features
    if engine == "dygraph":
        return lambda clips: clip_features(model, clips)
    if engine != "paddle":
        raise DeployError(f"--engine must be dygraph or paddle, got '{engine}'.")
    from .runtime import InferenceEngine, logit_difference
    net = ClipFeatures(model)
    net.eval()
    exported = InferenceEngine.from_model(net, num_seg, target_size, backend="paddle",
                                          **engine_kwargs)
    probe = np.random.RandomState(0).standard_normal(
        (2, num_seg, 3, target_size, target_size)).astype("float32")
    diff, scale = logit_difference(exported(probe), clip_features(model, probe))
    if not diff <= FEATURE_TOLERANCE * scale:
        raise DeployError(f"the exported features program differs from the dygraph model by "
                          f"{diff:.3g} (scale {scale:.3g}, allowed {FEATURE_TOLERANCE:g} x "
                          f"scale); use --engine dygraph.")
    return exported


def parquet_available():
    import importlib.util
    return importlib.util.find_spec("pyarrow") is not None


def write_features(stem, vectors, rows):
    """Write STEM.npy (float32 [N, C]) and STEM.json (one record per row: file, and for windows
    start/end seconds and frames), plus STEM.parquet (the rows' fields and a `feature` list
    column) when pyarrow is installed. Returns the paths written."""
    vectors = np.asarray(vectors, np.float32)
    if len(rows) != len(vectors):
        raise DeployError(f"{len(rows)} rows for {len(vectors)} feature vectors.")
    try:
        os.makedirs(os.path.dirname(os.path.abspath(stem)), exist_ok=True)
        np.save(stem + ".npy", vectors)
        with open(stem + ".json", "w", encoding="utf-8") as f:
            json.dump({"shape": list(vectors.shape), "rows": rows}, f, ensure_ascii=False,
                      indent=1)
    except OSError as e:
        raise DeployError(f"cannot write {stem}.npy/.json: {e.strerror or e}") from None
    written = [stem + ".npy", stem + ".json"]
    if parquet_available():
        import pyarrow as pa
        import pyarrow.parquet as pq
        columns = {key: [r.get(key) for r in rows] for key in rows[0]} if rows else {}
        columns["feature"] = [v.tolist() for v in vectors]
        pq.write_table(pa.table(columns), stem + ".parquet")
        written.append(stem + ".parquet")
    return written
