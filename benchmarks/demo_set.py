"""The demo set the benchmarks make for themselves in a temporary folder when they need one: the
full one (data/make_demo.py's defaults), or --smoke's tiny one (8 training videos of 40x40, 16
frames, 4 classes; made in well under a second)."""
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = {"per_class": 2, "val_per_class": 1, "test_per_class": 1, "size": 40, "frames": 16,
        "pairs": [0, 1]}


def make_demo_set(out, tiny=False):
    """Write the demo set (tiny with `tiny`) into `out`; returns `out`."""
    sys.path.insert(0, os.path.join(REPO, "data"))
    import make_demo
    make_demo.make_demo(out, quiet=True, **(TINY if tiny else {}))
    return out
