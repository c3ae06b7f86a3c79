"""Training curves: the figures kept per epoch, continued by a resumed run, drawn as a PNG."""
import json

import cv2

from paddlevideo.utils.curves import CURVES_JSON, CURVES_PNG, TrainingCurves


def test_curves_are_saved_drawn_and_continued_after_a_resume(tmp_path):
    curves = TrainingCurves(str(tmp_path))
    for epoch in (1, 2, 3):
        for step in range(4):
            curves.add_lr(epoch - 1 + step / 4, 0.1 / epoch)
        validated = epoch != 2                                 # val_interval: 2 epochs of 3
        curves.add_epoch(epoch, 2.0 / epoch, 0.3 * epoch, 2.5 / epoch if validated else None,
                         0.25 * epoch if validated else None)
    curves.save()
    image = cv2.imread(str(tmp_path / CURVES_PNG))
    assert image is not None and image.shape[:2] == (380, 1300)
    assert (image < 200).any()                                  # something was drawn
    data = json.loads((tmp_path / CURVES_JSON).read_text())
    assert [r["val_loss"] for r in data["epochs"]] == [2.5, None, 2.5 / 3]
    # a run resumed after 1 epoch and 2 steps keeps what came before, and only that
    resumed = TrainingCurves(str(tmp_path))
    resumed.load(1, 1.5)
    assert [r["epoch"] for r in resumed.epochs] == [1]
    assert [p for p, _ in resumed.lr] == [0, 0.25, 0.5, 0.75, 1.0, 1.25]
    # a non-finite figure is left out of the picture, not written as NaN
    resumed.add_epoch(2, float("nan"), 0.5)
    assert resumed.epochs[-1]["train_loss"] is None
    assert not TrainingCurves(str(tmp_path / "rank1"), enabled=False).save()
