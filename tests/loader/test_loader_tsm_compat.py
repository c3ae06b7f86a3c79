"""PaddleVideo's TSM test pipeline on the real video: indices, geometry and values."""
import os

import numpy as np

from paddlevideo.loader import Compose


def test_tsm_test_pipeline_on_example_avi(videos_dir, tsm_test_cfg):
    from PIL import Image
    path = os.path.join(videos_dir, "example.avi")
    out = Compose(tsm_test_cfg)({"filename": path})
    assert out["frames_idx"].tolist() == [8, 24, 40, 57, 73, 90, 106, 122]
    imgs = out["imgs"]
    assert imgs.shape == (8, 3, 224, 224) and imgs.dtype == np.float32
    # PaddleVideo's way: PIL bilinear to 341x256, crop at (58, 16), /255, -mean, /std
    raw = Compose({"decode": tsm_test_cfg["decode"], "sample": tsm_test_cfg["sample"]})(
        {"filename": path})["imgs"]
    ref = np.stack([np.asarray(Image.fromarray(f).resize((341, 256), Image.BILINEAR))
                    [16:240, 58:282] for f in raw]).astype(np.float32).transpose(0, 3, 1, 2)
    mean = np.array([0.485, 0.456, 0.406], np.float32).reshape(3, 1, 1)
    std = np.array([0.229, 0.224, 0.225], np.float32).reshape(3, 1, 1)
    ref = (ref / 255.0 - mean) / std
    diff = np.abs(imgs - ref)
    assert diff.mean() < 0.01 and diff.max() < 0.05     # <= 2/255 levels over std 0.225
