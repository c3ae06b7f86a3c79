"""Every shipped config loads, passes the schema, and builds its model, solver and metric."""
import glob
import os

import pytest

from paddlevideo.metrics import build_metric
from paddlevideo.modeling import PRETRAINED, build_model
from paddlevideo.solver import build_optimizer
from paddlevideo.utils.config import get_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = sorted(glob.glob(os.path.join(REPO, "configs", "recognition", "**", "*.yaml"),
                           recursive=True))
NAMES = [os.path.relpath(p, REPO) for p in CONFIGS]


def test_the_promised_configs_exist():
    names = {os.path.relpath(p, os.path.join(REPO, "configs", "recognition")) for p in CONFIGS}
    for kind in ("videos", "frames"):
        for data in ("k400", "ucf101"):
            assert f"tsm/tsm_{data}_{kind}.yaml" in names
            assert f"tsm/tsm_{data}_{kind}_nhwc.yaml" in names
    assert {"tsn/tsn_k400_videos.yaml", "tsm/tsm_online_k400_videos.yaml", "tsm/tsm_demo.yaml",
            "tsn/tsn_demo.yaml", "tsm/tsm_online_demo.yaml"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=NAMES)
def test_config_builds(path):
    from paddlevideo.loader import Compose
    cfg = get_config(path)
    backbone = cfg.MODEL.backbone
    pretrained = backbone.get("pretrained")
    if "demo" in path:
        assert pretrained is None and backbone.depth == 18
    elif "ucf101" in path:
        assert pretrained == "TSM_k400" and cfg.MODEL.head.num_classes == 101
    else:
        assert pretrained == "ResNet50_pretrain"
    assert pretrained is None or pretrained in PRETRAINED
    if path.endswith("_nhwc.yaml"):
        assert backbone.data_format == "NHWC"
    if "online" in path:
        assert backbone.shift_mode == "unidirectional"
    model = build_model(cfg.MODEL, load_pretrained=False)       # no network in tests
    optimizer, schedule = build_optimizer(cfg.OPTIMIZER, model, steps_per_epoch=10,
                                          epochs=cfg.epochs)
    assert schedule.get_lr() > 0
    build_metric(cfg.METRIC, cfg.MODEL.head.num_classes)
    for mode in ("train", "valid", "test"):
        pipeline = Compose(cfg.PIPELINE[mode])
        assert pipeline.num_seg == backbone.num_seg
        assert cfg.DATASET[mode].format in ("VideoDataset", "FrameDataset")
    assert cfg.model_name and cfg.epochs > 0
