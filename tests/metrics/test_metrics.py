"""Metrics: scores, duplicates counted once, failures left out, predictions and confusion PNG."""
import json

import cv2
import numpy as np
import pytest

from paddlevideo.metrics import (METRICS, build_metric, most_confused_classes,
                                 worst_pairs, write_confusion_png)
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


def test_predictions_jsonl(tmp_path):
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


def confusions(k, pairs, per_class=20, seed=0, noise=1):
    """A k-class count matrix: per_class videos per class, the given (true, pred, count)
    confusions, and up to `noise` stray errors per class elsewhere."""
    rng = np.random.default_rng(seed)
    m = np.zeros((k, k), dtype=np.int64)
    np.fill_diagonal(m, per_class)
    for true, pred, count in pairs:
        m[true, true] -= count
        m[true, pred] += count
    for c in range(k):
        for _ in range(int(rng.integers(0, noise + 1))):
            other = int(rng.integers(0, k))
            if other != c and m[c, c] > 0:
                m[c, c] -= 1
                m[c, other] += 1
    return m


def test_worst_pairs_are_the_largest_confusions_in_order():
    m = np.array([[5, 3, 0], [1, 8, 1], [0, 3, 7]])
    # 0->1 and 2->1 both 3 videos; 0->1 is 3/8 of class 0, 2->1 is 3/10 of class 2
    assert worst_pairs(m) == [(0, 1, 3, 3 / 8), (2, 1, 3, 3 / 10), (1, 0, 1, 0.1), (1, 2, 1, 0.1)]
    assert worst_pairs(np.eye(3, dtype=int) * 4) == []


def test_most_confused_classes_hold_the_largest_confusions():
    k = 400
    planted = [(10 + 2 * i, 11 + 2 * i, 15 - i // 2) for i in range(15)]    # 15 pairs, 3-15 videos
    m = confusions(k, planted)
    shown = most_confused_classes(m, 30)
    assert set(shown) == {c for t, p, _ in planted for c in (t, p)}
    assert shown[:2] == [10, 11]                       # the worst pair first, side by side
    inside = m[np.ix_(shown, shown)].sum() - np.trace(m[np.ix_(shown, shown)])
    assert inside >= sum(c for _, _, c in planted)     # every planted confusion is in the picture
    # a perfect classifier has no confusions: the first classes fill the picture
    assert most_confused_classes(np.eye(50, dtype=int), 30) == list(range(30))
    assert sorted(most_confused_classes(m[:5, :5], 30)) == [0, 1, 2, 3, 4]   # all there are


@pytest.mark.parametrize("k", [2, 400])
def test_confusion_png_is_written_readable_and_bounded(tmp_path, k):
    names = [f"class_with_a_long_descriptive_name_{i:03d}" for i in range(k)]
    planted = [(0, 1, 7), (k - 1, 0, 5)] if k > 2 else [(0, 1, 7)]
    m = confusions(k, planted, noise=0 if k == 2 else 2)
    path = tmp_path / f"cm{k}.png"
    shown = write_confusion_png(m, str(path), names, title="demo")
    image = cv2.imread(str(path))
    assert image is not None and image.shape[2] == 3
    height, width = image.shape[:2]
    cells = len(shown) + (1 if k > 30 else 0)            # + the "(other classes)" column
    assert width >= cells * 30 and height >= len(shown) * 30, (width, height)   # >= 30 px a cell
    assert width <= 2200 and height <= 2200, (width, height)
    assert shown == (list(range(k)) if k <= 30 else most_confused_classes(m, 30))
    assert len(shown) == min(k, 30) and {0, 1} <= set(shown)


def test_label_outside_the_model_classes_is_a_clear_error():
    m = build_metric(AttrDict(name="CenterCropMetric"), num_classes=2)
    m.update([0], probs_for([0], k=2), [5])
    with pytest.raises(ConfigError, match="outside the model's 2 classes"):
        m.accumulate()
