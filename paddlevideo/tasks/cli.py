"""The `tools/main.py` command line: PaddleVideo's flags, clear errors, exit codes.

The whole config is checked (paddlevideo.config_check) before anything is built or read: a wrong
key or value, or sections that disagree, stop with `error: <file:line (KEY)>: <what is allowed>`.

Exit codes: 0 done, 1 a problem with the config, data, weights or a checkpoint (one readable
message, no traceback), 3 training diverged (NaN/Inf loss), 128+N stopped by signal N after
saving a resumable checkpoint.
"""
import argparse
import sys

from ..utils import quiet
from ..utils.env import configure_cpu_threads

__all__ = ["main", "build_parser", "print_config_main"]


def build_parser():
    parser = argparse.ArgumentParser(
        prog="main.py", description="Train or test a TSM/TSN video classifier (PaddleVideo's "
        "flags). Distributed: python -m paddle.distributed.launch --gpus 0,1 tools/main.py ...")
    parser.add_argument("-c", "--config", required=True, help="YAML config file")
    parser.add_argument("-o", "--override", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key, e.g. -o DATASET.batch_size=8 (repeatable)")
    parser.add_argument("--validate", action="store_true", help="validate during training and "
                        "keep <model_name>_best.pdparams")
    parser.add_argument("--test", action="store_true", help="evaluate -w WEIGHTS on the test list")
    parser.add_argument("-w", "--weights", help="weights to test, or to start training from "
                        "(fine-tuning; a head of another class count is skipped)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: config "
                        "'seed' or 1234)")
    parser.add_argument("--max_iters", type=int, default=None, help="at most this many steps "
                        "per epoch")
    parser.add_argument("--amp", action="store_true", help="automatic mixed precision")
    parser.add_argument("--amp_level", choices=["O1", "O2"], default=None, help="AMP level "
                        "(default O1)")
    parser.add_argument("--amp_dtype", choices=["float16", "bfloat16"], default=None,
                        help="AMP dtype (default float16; AMP needs a GPU)")
    parser.add_argument("--resume", action="store_true", help="continue from the furthest "
                        "checkpoint in output_dir (epoch or interrupted)")
    parser.add_argument("--test_engine", choices=["auto", "inference", "dygraph"], default="auto",
                        help="--test engine: Paddle Inference (default on CPU) or dygraph")
    return parser


def _check_flags(args):
    """The numeric flags hold to the ranges their config keys have (`--seed` is `seed`)."""
    from ..utils.config import ConfigError
    from ..utils.typecheck import PositiveInt, Seed, problem
    for flag, value, kind in (("--seed", args.seed, Seed), ("--max_iters", args.max_iters,
                                                              PositiveInt)):
        wrong = value is not None and problem(value, kind)
        if wrong:
            raise ConfigError(f"{flag} {wrong}.")


def main(argv=None):
    args = build_parser().parse_args(argv)
    configure_cpu_threads()            # before paddle is imported
    if argv is None:                   # run as a program: Paddle's noise off the terminal
        quiet.install()
    from ..loader import ListError, LoaderError, TooManyBadFiles
    from ..modeling.weights import WeightsError
    from ..utils.checkpoint import CheckpointError
    from ..config_check import load_and_check_config
    from ..utils.config import ConfigError
    from ..utils.download import DownloadError
    from .common import TaskError
    from .train import TrainingDiverged, TrainingInterrupted

    try:
        _check_flags(args)
        cfg = load_and_check_config(args.config, args.override)
        if args.test:
            from .test import test_model
            test_model(cfg, args.weights, engine=args.test_engine)
        else:
            from .train import train_model
            train_model(cfg, weights=args.weights, validate=args.validate, amp=args.amp,
                        amp_level=args.amp_level, amp_dtype=args.amp_dtype,
                        max_iters=args.max_iters, seed=args.seed, resume=args.resume)
    except TrainingInterrupted as e:
        print(f"stopped: {e}", file=sys.stderr)
        return 128 + int(e.signum)
    except TrainingDiverged as e:
        print(f"error: {e}", file=sys.stderr)
        return 3
    except (ConfigError, TaskError, WeightsError, CheckpointError, DownloadError, ListError,
            TooManyBadFiles, LoaderError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


def print_config_main(argv=None):
    """tools/print_config.py: the config as a run would use it (bases merged, -o applied, the
    whole check passed), as YAML, or with --origins each value with the file:line that set it."""
    parser = argparse.ArgumentParser(
        prog="print_config.py", description="Print a config resolved: its _base_ files merged, "
        "the -o overrides applied, and checked as tools/main.py checks it.")
    parser.add_argument("-c", "--config", required=True, help="YAML config file")
    parser.add_argument("-o", "--override", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key (repeatable), as in tools/main.py")
    parser.add_argument("--origins", action="store_true", help="one line per value with the "
                        "file:line (or -o) that set it, instead of YAML")
    args = parser.parse_args(argv)
    configure_cpu_threads()            # before paddle is imported
    if argv is None:
        quiet.install()
    from ..config_check import load_and_check_config
    from ..utils.config import ConfigError, config_origins, dump_config
    try:
        cfg = load_and_check_config(args.config, args.override)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if args.origins:
        import yaml
        rows = [(f"{key}: " + yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=10 ** 6)
                 .replace("\n...\n", "").strip(), origin) for key, value, origin in config_origins(cfg)]
        width = min(60, max(len(text) for text, _ in rows))
        for text, origin in rows:
            print(f"{text:<{width}}  # {origin}")
    else:
        print(dump_config(cfg), end="")
    return 0
