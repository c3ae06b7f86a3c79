"""Online (unidirectional) TSM on a video file, camera or stream, frame by frame.

    python tools/online_predict.py -i VIDEO|CAMERA_INDEX|URL --model_dir ONLINE_DIR
    python tools/online_predict.py -i VIDEO -c CONFIG -w WEIGHTS [-o KEY=VALUE]   # dygraph

A thin shell over paddlevideo.deploy.cli.online_main (see `--help` and docs/deploy.md).
"""
import os
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

from paddlevideo.deploy.cli import online_main  # noqa: E402  (the path must be set first)

if __name__ == "__main__":
    sys.exit(online_main())
