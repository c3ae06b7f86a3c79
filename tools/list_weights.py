#!/usr/bin/env python
"""List the registered weights names (-w, -p, pretrained:) with what is known about each.

    python tools/list_weights.py            # the table
    python tools/list_weights.py NAME ...   # everything about NAME: URL, format, protocol, sha256
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def build_parser():
    parser = argparse.ArgumentParser(prog="list_weights.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", metavar="NAME", help="registered names to describe")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    if argv is None:                       # run as a program: Paddle's noise off the terminal
        from paddlevideo.utils import quiet
        quiet.install()
    from paddlevideo.modeling.zoo import PRETRAINED, describe
    unknown = [n for n in args.names if n not in PRETRAINED]
    if unknown:
        print(f"error: not registered: {', '.join(unknown)} (python tools/list_weights.py lists "
              f"the names)", file=sys.stderr)
        return 1
    print("\n".join(describe(args.names)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
