#!/usr/bin/env python
"""Train or test a video classifier: `python tools/main.py -c CONFIG [--validate | --test -w W]`.

A thin shell over paddlevideo.tasks.cli (see `--help` and docs/training.md).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from paddlevideo.tasks.cli import main  # noqa: E402  (the path must be set first)

if __name__ == "__main__":
    sys.exit(main())
