"""Metrics: scores, duplicates counted once, failures left out, predictions and confusion PNG."""
import json

import cv2
import numpy as np
import pytest

from paddlevideo.metrics import METRICS, build_metric, confusion_matrix, write_confusion_png
from paddlevideo.utils.config import AttrDict, ConfigError


def probs_for(preds, k=6, second=None):
    p = np.full((len(preds), k), 0.01, dtype=np.float32)
    for row, c in enumerate(preds):
        p[row, c] = 0.9
        if second is not None:
            p[row, second[row]] = 0.05
    return p


def test_top1_top5_mean_class_accuracy_by_hand():
    m = build_metric(AttrDict(name="CenterCropMetric"), num_classes=6)
    labels = np.array([0, 0, 0, 0, 1, 2])
    preds = [0, 0, 0, 1, 1, 0]               # class 0: 3/4, class 1: 1/1, class 2: 0/1
    m.update(np.arange(6), probs_for(preds, second=[1, 1, 1, 0, 0, 2]), labels)
    r = m.accumulate()
    assert r["top1"] == pytest.approx(4 / 6)
    assert r["top5"] == pytest.approx(1.0)
    assert r["mean_class_acc"] == pytest.approx((3 / 4 + 1 + 0) / 3)
    assert r["evaluated"] == 6 and r["failed"] == 0
    assert r["confusion"][0].tolist() == [3, 1, 0, 0, 0, 0]
    assert r["confusion"].sum() == 6


def test_top5_counts_label_among_five_highest():
    m = build_metric(AttrDict(name="CenterCropMetric"), num_classes=7)
    p = np.array([[.30, .20, .15, .12, .10, .08, .05]], dtype=np.float32)
    m.update([0], p, [4])                   # 5th highest: in top-5, not top-1
    m.update([1], p, [6])                   # 7th: neither
    r = m.accumulate()
    assert (r["top1"], r["top5"]) == (0.0, 0.5)


def test_padding_duplicates_and_ranks_count_once_and_failures_are_excluded():
    a = build_metric(AttrDict(name="CenterCropMetric"), num_classes=3)
    b = build_metric(AttrDict(name="CenterCropMetric"), num_classes=3)
    a.update([0, 1], probs_for([0, 1], k=3), [0, 1])
    b.update([2, 0], probs_for([0, 0], k=3), [2, 0])    # 0 again: a padded repeat
    b.add_failed([3])
    a.merge([b.state()])
    r = a.accumulate()
    assert r["evaluated"] == 3 and r["failed"] == 1 and r["failed_ids"] == [3]
    assert r["top1"] == pytest.approx(2 / 3)


def test_multicrop_checks_the_views_and_describes_the_protocol():
    m = build_metric(AttrDict(name="MultiCropMetric", num_ensemble_views=10, num_spatial_crops=3),
                     num_classes=400)
    m.check_views(10, 3)
    assert m.protocol(8, 256, 256) == "8 segments x 10 clips x 3 crops, 256x256 input"
    with pytest.raises(ConfigError, match="10 clips x 3 crops.*1 clips x 3 crops"):
        m.check_views(1, 3)
    c = build_metric(AttrDict(name="CenterCropMetric"), num_classes=5)
    c.check_views(1, 1)
    assert c.protocol(8, 224, 224) == "8 segments x 1 clip x 1 crop, 224x224 input"
    assert {"CenterCropMetric", "MultiCropMetric"} <= set(METRICS.names())


def test_predictions_jsonl_and_confusion_png(tmp_path):
    m = build_metric(AttrDict(name="CenterCropMetric"), num_classes=3,
                     class_names=["run", "jump", "sit"])
    m.update([0, 1, 2], probs_for([0, 2, 2], k=3), [0, 1, 2])
    m.add_failed([5])
    path = tmp_path / "p.jsonl"
    m.write_predictions(str(path), lambda i: f"v{i}.mp4")
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["id"] for r in rows] == [0, 1, 2, 5]
    assert rows[1]["pred"] == 2 and rows[1]["pred_name"] == "sit" and rows[1]["label_name"] == "jump"
    assert rows[3] == {"id": 5, "path": "v5.mp4", "failed": True}
    png = write_confusion_png(m.accumulate()["confusion"], str(tmp_path / "cm.png"), m.class_names)
    image = cv2.imread(png)
    assert image is not None and image.shape[0] > 3 * 10 and image.shape[2] == 3
    big = write_confusion_png(confusion_matrix(np.arange(400), np.arange(400), 400),
                              str(tmp_path / "big.png"))
    assert cv2.imread(big).shape[1] <= 1100


def test_label_outside_the_model_classes_is_a_clear_error():
    m = build_metric(AttrDict(name="CenterCropMetric"), num_classes=2)
    m.update([0], probs_for([0], k=2), [5])
    with pytest.raises(ConfigError, match="outside the model's 2 classes"):
        m.accumulate()
