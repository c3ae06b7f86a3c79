#!/usr/bin/env python
"""Convert weights once into a PaddleVideo-format .pdparams file.

    python tools/convert_weights.py SRC OUT.pdparams [-c CONFIG] [-o KEY=VALUE ...]

SRC: a PyTorch checkpoint of the original TSM code or mmaction2 (ResNet or MobileNetV2 TSM/TSN,
the online gesture demo's Jester file), a torchvision ImageNet ResNet or MobileNetV2, a registered
name (python tools/list_weights.py) or a URL. The network is read from the file (or checked
against -c CONFIG's MODEL); the shift direction is converted exactly (see docs/models.md). What
cannot be converted (non-local, temporal pooling, BN-Inception, optical flow) is refused with one
line. The file is read without running code.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def build_parser():
    parser = argparse.ArgumentParser(prog="convert_weights.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", metavar="SRC", help="PyTorch file, registered name or URL")
    parser.add_argument("out", metavar="OUT.pdparams", help="the PaddleVideo-format file to write")
    parser.add_argument("-c", "--config", default=None,
                        help="check against this config's MODEL (default: read it from the file)")
    parser.add_argument("-o", "--override", action="append", default=[], metavar="KEY=VALUE",
                        help="config override, e.g. -o MODEL.head.num_classes=174 (repeatable)")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    if argv is None:                       # run as a program: Paddle's noise off the terminal
        from paddlevideo.utils import quiet
        quiet.install()
    from paddlevideo.modeling.convert import convert_weights_file
    from paddlevideo.modeling.weights import WeightsError
    from paddlevideo.config_check import load_and_check_config
    from paddlevideo.utils.config import ConfigError
    from paddlevideo.utils.download import DownloadError
    try:
        model_cfg = None
        if args.config:
            model_cfg = load_and_check_config(args.config, args.override).MODEL
        elif args.override:
            raise ConfigError("-o needs -c CONFIG.")
        report, conversion, path, written = convert_weights_file(args.source, args.out, model_cfg)
    except (WeightsError, ConfigError, DownloadError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if conversion is not None:
        print(conversion.summary(path))
    print(report)
    use = ("-w " if conversion is None or conversion.classes else "pretrained: ") + args.out
    print(f"wrote {args.out} ({written} tensors, PaddleVideo format); use it as {use}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
