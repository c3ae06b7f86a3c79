#!/usr/bin/env python
"""Print a config as a run uses it: `python tools/print_config.py -c CONFIG [-o KEY=VALUE] [--origins]`.

A thin shell over paddlevideo.tasks.cli.print_config_main (see `--help` and docs/config.md).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from paddlevideo.tasks.cli import print_config_main  # noqa: E402  (the path must be set first)

if __name__ == "__main__":
    sys.exit(print_config_main())
