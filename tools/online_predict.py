"""Online (unidirectional) TSM on a video file, camera or stream, frame by frame.

    python tools/online_predict.py -i VIDEO|CAMERA_INDEX|URL --model_dir ONLINE_DIR
    python tools/online_predict.py -i VIDEO -c CONFIG -p WEIGHTS        # dygraph, no export
"""
import os
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

if __name__ == "__main__":
    from paddlevideo.deploy.cli import online_main
    sys.exit(online_main())
