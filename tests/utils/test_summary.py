"""Model cost: TSM-R50 8x224 has the paper's size and cost, and the shift adds no FLOPs."""
import os
import subprocess
import sys


from paddlevideo.modeling import build_model
from paddlevideo.utils.config import AttrDict
from paddlevideo.utils.summary import model_cost
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def cfg(depth, num_classes, shift_mode="bidirectional", num_seg=8):
    return AttrDict(framework="Recognizer2D",
                    backbone=AttrDict(name="ResNetTSM", depth=depth, num_seg=num_seg, shift_mode=shift_mode),
                    head=AttrDict(name="TSMHead", num_classes=num_classes,
                                  in_channels=512 if depth < 50 else 2048))


def test_tsm_r50_8x224_matches_the_paper():
    cost = model_cost(build_model(cfg(50, 400)), 8, 224)
    assert cost.trainable == 24_327_632 and cost.total == 24_380_752
    assert 32.5e9 < cost.macs < 33.2e9                        # paper: 33 G per clip


def test_shift_costs_nothing_and_cost_scales_with_frames():
    tsm = model_cost(build_model(cfg(18, 10, num_seg=4)), 4, 64)
    tsn = model_cost(build_model(cfg(18, 10, shift_mode="none", num_seg=4)), 4, 64)
    assert (tsm.macs, tsm.trainable) == (tsn.macs, tsn.trainable)
    eight = model_cost(build_model(cfg(18, 10, num_seg=8)), 8, 64)
    fc = 512 * 10                                             # the fc runs once per clip
    assert eight.macs - fc == 2 * (tsm.macs - fc)


def test_summary_tool_prints_the_table(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text("MODEL:\n  framework: Recognizer2D\n  backbone: {name: ResNetTSM, depth: 18, num_seg: 4}\n"
                    "  head: {name: TSMHead, num_classes: 10, in_channels: 512}\n"
                    "INFERENCE: {target_size: 64}\nmodel_name: TSM\n")
    out = subprocess.run([sys.executable, "tools/summary.py", "-c", str(path)], cwd=REPO,
                         capture_output=True, text=True, check=True).stdout
    assert "1 clip x 4 frames x 3 x 64 x 64" in out
    assert "parameters             11.18 M" in out
