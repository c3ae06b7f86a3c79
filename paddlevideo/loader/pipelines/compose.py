"""Compose: the decode, sample and transform steps of one PIPELINE mode, run in order."""
import numpy as np

from ...utils.config import AttrDict, ConfigError
from ..registry import PIPELINES

__all__ = ["Compose"]


def _op_config(item, where):
    """A transform list item (`- Name: {params}` or `- Name:`) as {'name': Name, **params}."""
    if isinstance(item, str):
        return AttrDict(name=item)
    if not isinstance(item, dict) or len(item) != 1:
        raise ConfigError(f"{where}: each transform item must be one mapping `- OpName: {{params}}` "
                          f"(or `- OpName:` with no parameters), got {item!r}.")
    (name, params), = item.items()
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise ConfigError(f"{where}: the parameters of '{name}' must be a mapping, got {params!r}.")
    cfg = AttrDict(name=name, **params)
    if isinstance(params, AttrDict):            # keep the YAML lines for error messages
        object.__setattr__(cfg, "_file", params._file)
        object.__setattr__(cfg, "_path", params._path)
        object.__setattr__(cfg, "_lines", dict(params._lines, name=item._lines.get(name)
                                               if isinstance(item, AttrDict) else None))
    elif isinstance(item, AttrDict):
        object.__setattr__(cfg, "_file", item._file)
        object.__setattr__(cfg, "_path", item.key_path(name))
        object.__setattr__(cfg, "_lines", {"name": item._lines.get(name),
                                           "__self__": item._lines.get(name)})
    return cfg


class Compose:
    """Build and run a pipeline from PaddleVideo's YAML form.

    `pipeline_cfg` is one mode of the PIPELINE section: `{decode: {name: ...}, sample: {name: ...},
    transform: [- Op: {...}, ...]}` (any step may be absent), or a plain list of ops. Calling it on a
    results dict ({'filename': path} for videos, {'frame_dir', 'frames_len', 'suffix'} for frames)
    runs every op in order and returns the dict with `imgs` and `frames_idx`.
    """

    def __init__(self, pipeline_cfg):
        self.ops = []
        if pipeline_cfg is None:
            raise ConfigError("the pipeline config is empty; give decode, sample and transform.")
        if isinstance(pipeline_cfg, (list, tuple)):
            steps = [("transform", list(pipeline_cfg))]
        elif isinstance(pipeline_cfg, dict):
            unknown = set(pipeline_cfg) - {"decode", "sample", "transform"}
            if unknown:
                where = pipeline_cfg.where(sorted(unknown)[0]) if isinstance(pipeline_cfg, AttrDict) \
                    else "pipeline"
                raise ConfigError(f"{where}: a pipeline has only decode, sample and transform steps.")
            steps = [(k, pipeline_cfg[k]) for k in ("decode", "sample", "transform")
                     if pipeline_cfg.get(k) is not None]
        else:
            raise ConfigError(f"a pipeline config must be a mapping or a list, got {pipeline_cfg!r}.")
        for step, value in steps:
            if step == "transform":
                if not isinstance(value, list):
                    where = pipeline_cfg.where(step) if isinstance(pipeline_cfg, AttrDict) else step
                    raise ConfigError(f"{where}: 'transform' must be a list of `- OpName: {{...}}`.")
                for i, item in enumerate(value):
                    where = (f"{pipeline_cfg.where(step)}[{i}]" if isinstance(pipeline_cfg, AttrDict)
                             else f"transform[{i}]")
                    self.ops.append(PIPELINES.build(_op_config(item, where)))
            else:
                if isinstance(value, str):
                    value = AttrDict(name=value)
                self.ops.append(PIPELINES.build(value))

    @property
    def num_clips(self):
        return int(np.prod([getattr(op, "num_clips", 1) for op in self.ops]))

    @property
    def num_crops(self):
        return int(np.prod([getattr(op, "num_crops", 1) for op in self.ops]))

    @property
    def num_seg(self):
        segs = [op.num_seg for op in self.ops if hasattr(op, "num_seg")]
        return segs[-1] if segs else None

    @property
    def crop_size(self):
        """(height, width) of every output frame, fixed by the last crop op; None without one."""
        sizes = [(op.th, op.tw) for op in self.ops if hasattr(op, "th") and hasattr(op, "tw")]
        return sizes[-1] if sizes else None

    @property
    def num_views(self):
        return self.num_clips * self.num_crops

    def __call__(self, results):
        if "rng" not in results:
            results["rng"] = np.random.default_rng()
        for op in self.ops:
            results = op(results)
        return results

    def __repr__(self):
        return "Compose(" + ", ".join(type(op).__name__ for op in self.ops) + ")"
