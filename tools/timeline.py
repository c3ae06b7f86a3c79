"""tools/timeline.py: a thin shell over paddlevideo.deploy.vis_cli.timeline_main (see --help and
docs/visualise.md)."""
import os
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

from paddlevideo.deploy.vis_cli import timeline_main  # noqa: E402  (the path must be set first)

if __name__ == "__main__":
    sys.exit(timeline_main())
