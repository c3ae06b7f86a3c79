"""Print a model's parameters and multiply-adds per clip.

    python tools/summary.py -c configs/recognition/tsm/tsm_k400_videos.yaml
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-c", "--config", required=True, help="YAML config file")
    parser.add_argument("-o", "--override", action="append", default=[], help="A.B.C=value, repeatable")
    parser.add_argument("--size", type=int, help="input size (default: the config's test crop)")
    args = parser.parse_args(argv)
    if argv is None:                       # run as a program: Paddle's noise off the terminal
        from paddlevideo.utils import quiet
        quiet.install()
    from paddlevideo.config_check import load_and_check_config
    from paddlevideo.modeling import build_model
    from paddlevideo.utils.config import ConfigError
    from paddlevideo.utils.summary import input_size_from_config, model_cost
    try:
        cfg = load_and_check_config(args.config, args.override)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    model = build_model(cfg.MODEL, load_pretrained=False)
    backbone = cfg.MODEL.backbone
    cost = model_cost(model, model.num_seg, args.size or input_size_from_config(cfg))
    print(f"{cfg.model_name}: {backbone.name}-{backbone.get('depth', 50)} "
          f"({backbone.get('shift_mode', 'bidirectional') if backbone.name == 'ResNetTSM' else 'no shift'}), "
          f"{cfg.MODEL.head.num_classes} classes  [{args.config}]")
    for name, value in cost.rows():
        print(f"  {name:<22} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
