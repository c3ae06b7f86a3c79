"""TSN vs TSM on the embedded demo set: the paper's central comparison on a 2-core CPU.

Trains each variant with the same budget (its demo config) and several seeds, through
`tools/main.py` exactly as a user would, then scores each run's best checkpoint on the test list:
top-1 over the 10 classes, and accuracy within time-reversed twins (for a video of class c, is
p(c) > p(twin of c)? Twins hold the same frames in opposite order, so a model blind to order
scores 50% there). Writes a table (Markdown + JSON) and a plot of validation top-1 per epoch.

    python scripts/reproduce_demo.py [--seeds 0 1 2] [--variants tsn tsm ...] [--out output/reproduce_demo]
                                     [-o KEY=VALUE ...]   (overrides for every run, e.g. epochs=20)

A finished run is reused when the script is run again with the same settings; a run folder that
holds other settings is an error, not silently mixed into the table.
"""
import argparse
import glob
import json
import os
import re
import subprocess
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

# name -> (label, config, overrides)
VARIANTS = {
    "tsn": ("TSN (no shift)", "configs/recognition/tsn/tsn_demo.yaml", []),
    "tsm": ("TSM, residual shift", "configs/recognition/tsm/tsm_demo.yaml", []),
    "tsm_inplace": ("TSM, in-place shift", "configs/recognition/tsm/tsm_demo.yaml",
                    ["MODEL.backbone.shift_place=inplace"]),
    "online": ("Online TSM (unidirectional)", "configs/recognition/tsm/tsm_online_demo.yaml", []),
}
EVAL_LINE = re.compile(r"\[EVAL\] epoch:\s*(\d+)\s+top1: ([0-9.]+)")
COLOURS = {"tsn": "tab:red", "tsm": "tab:blue", "tsm_inplace": "tab:green",
           "online": "tab:purple"}


def train(variant, seed, out_dir, extra=()):
    """Run tools/main.py for one variant and seed unless a finished run is there."""
    _, config, overrides = VARIANTS[variant]
    overrides = overrides + list(extra) + [f"output_dir={out_dir}"]
    from paddlevideo.utils.config import get_config
    cfg = get_config(os.path.join(REPO, config), overrides)
    settings = {"config": config, "overrides": overrides, "seed": seed}
    settings_file = os.path.join(out_dir, "settings.json")
    if os.path.exists(settings_file):
        with open(settings_file) as f:
            found = json.load(f)
        if found != settings:
            raise SystemExit(f"{out_dir} holds a run with other settings ({found}, now {settings}): "
                             f"pass another --out, or delete that folder to train it again")
    else:
        with open(settings_file, "w") as f:
            json.dump(settings, f)
    best = os.path.join(out_dir, f"{cfg.model_name}_best.pdparams")
    last = os.path.join(out_dir, f"{cfg.model_name}_epoch_{int(cfg.epochs):05d}.pdparams")
    if os.path.exists(best) and os.path.exists(last):
        print(f"reusing {out_dir}")
        return cfg, best, 0.0
    cmd = [sys.executable, "tools/main.py", "-c", config, "--validate", "--resume", "--seed", str(seed)]
    for o in overrides:
        cmd += ["-o", o]
    print("$", " ".join(cmd), flush=True)
    start = time.time()
    with open(os.path.join(out_dir, "reproduce_stdout.log"), "w") as log:
        subprocess.run(cmd, cwd=REPO, check=True, stdout=log, stderr=subprocess.STDOUT)
    return cfg, best, time.time() - start


def validation_curve(out_dir):
    """[(epoch, top1)] from the run's log files (the last value for an epoch wins)."""
    curve = {}
    for path in sorted(glob.glob(os.path.join(out_dir, "*.log"))):
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                m = EVAL_LINE.search(line)
                if m:
                    curve[int(m.group(1))] = float(m.group(2))
    return sorted(curve.items())


def test_probabilities(cfg, weights):
    """Class probabilities and labels of every test video, from the best checkpoint."""
    import paddle
    from paddlevideo.loader import build_dataloader, build_dataset
    from paddlevideo.modeling import build_model, load_weights
    model = build_model(cfg.MODEL, load_pretrained=False)
    load_weights(model, weights, require_head=True)
    model.eval()
    dataset = build_dataset(cfg, "test")
    loader = build_dataloader(dataset, batch_size=16, num_workers=0, shuffle=False, drop_last=False)
    probs, labels = [], []
    with paddle.no_grad():
        for imgs, batch_labels, _, failed in loader:
            if len(failed):
                raise RuntimeError(f"test videos failed to load: {[dataset.path(int(i)) for i in failed]}")
            probs.append(model.test_step([imgs]).numpy())
            labels.append(batch_labels.numpy())
    return np.concatenate(probs), np.concatenate(labels)


def scores(probs, labels):
    """Top-1, and accuracy within twins (classes 2k and 2k+1 are each other's reversal)."""
    top1 = float(np.mean(probs.argmax(1) == labels))
    rows = np.arange(len(labels))
    twin = labels ^ 1
    within = float(np.mean(probs[rows, labels] > probs[rows, twin]))
    return top1, within


def spread(values):
    """'mean ± sample std (min-max)' in percent; the std is 0 for a single run."""
    values = 100 * np.asarray(values, dtype=float)
    std = values.std(ddof=1) if len(values) > 1 else 0.0
    return f"{values.mean():.1f} ± {std:.1f} ({values.min():.0f}-{values.max():.0f})"


def plot(curves, path):
    """Validation top-1 per epoch, mean over seeds (the range of seeds shaded), one line per
    variant, with chance marked; matplotlib's Agg canvas (no window)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 4.6), dpi=100)
    FigureCanvasAgg(figure)
    ax = figure.subplots()
    for variant, runs in curves.items():
        epochs = sorted({e for run in runs for e, _ in run})
        per_epoch = [[dict(run)[e] for run in runs if e in dict(run)] for e in epochs]
        mean = [np.mean(v) for v in per_epoch]
        colour = COLOURS.get(variant)
        ax.plot(epochs, mean, "-o", markersize=3, color=colour,
                label=f"{VARIANTS[variant][0]} ({len(runs)} seed{'s' if len(runs) > 1 else ''})")
        if len(runs) > 1:
            ax.fill_between(epochs, [min(v) for v in per_epoch], [max(v) for v in per_epoch],
                            color=colour, alpha=0.12, linewidth=0)
    ax.axhline(0.1, color="grey", linestyle="--", linewidth=1)
    ax.text(1, 0.11, "chance (10 classes)", color="grey", fontsize=8)
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation top-1")
    ax.set_ylim(0, 1)
    ax.set_title("Demo set: validation top-1 per epoch, mean over seeds (shaded: min-max)")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    figure.tight_layout()
    figure.savefig(path)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--out", default="output/reproduce_demo")
    parser.add_argument("-o", "--override", action="append", default=[], metavar="KEY=VALUE",
                        help="config override for every run (repeatable), e.g. -o epochs=20")
    args = parser.parse_args()
    os.chdir(REPO)
    from paddlevideo.utils.config import get_config
    for variant in args.variants:
        cfg = get_config(VARIANTS[variant][1], VARIANTS[variant][2] + args.override)
        missing = [cfg.DATASET[m].file_path for m in ("train", "valid", "test")
                   if not os.path.exists(cfg.DATASET[m].file_path)]
        if missing:
            raise SystemExit(f"no demo set ({', '.join(missing)} missing): run "
                             f"`python data/make_demo.py` first")
    results, curves = {}, {}
    for seed in args.seeds:                 # seeds outer: a partial run covers every variant
        for variant in args.variants:
            out_dir = os.path.join(args.out, variant, f"seed{seed}")
            os.makedirs(out_dir, exist_ok=True)
            cfg, best, seconds = train(variant, seed, out_dir, args.override)
            top1, within = scores(*test_probabilities(cfg, best))
            curve = validation_curve(out_dir)
            results.setdefault(variant, []).append(
                {"seed": seed, "top1": top1, "twin_accuracy": within, "train_seconds": round(seconds, 1),
                 "val_curve": curve})
            curves.setdefault(variant, []).append(curve)
            print(f"{variant:<12} seed {seed}: test top-1 {top1:.3f}, within twins {within:.3f}", flush=True)

    lines = ["| model | shift | test top-1: mean ± std (min-max) | within twins: mean ± std (min-max) "
             "| runs |", "|---|---|---|---|---|"]
    shift = {"tsn": "none", "tsm": "bidirectional, residual", "tsm_inplace": "bidirectional, in-place",
             "online": "unidirectional, residual"}
    for variant, runs in results.items():
        t = np.array([r["top1"] for r in runs])
        w = np.array([r["twin_accuracy"] for r in runs])
        lines.append(f"| {VARIANTS[variant][0]} | {shift[variant]} | {spread(t)} | {spread(w)} | "
                     f"{len(runs)} |")
    command = "bash scripts/reproduce_demo.sh" + "".join(
        f" {flag} {' '.join(map(str, value))}" for flag, value, default in
        (("--seeds", args.seeds, [0, 1, 2]), ("--variants", args.variants, list(VARIANTS)))
        if value != default) + "".join(f" -o {o}" for o in args.override)
    header = (f"`{command}` ({time.strftime('%Y-%m-%d')}; chance: 10.0 top-1, 50.0 within twins; "
              f"std is the sample standard deviation over seeds)")
    table = header + "\n\n" + "\n".join(lines) + "\n"
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write(table)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump({"command": command, "date": time.strftime("%Y-%m-%d"), "results": results}, f, indent=1)
    plot(curves, os.path.join(args.out, "val_accuracy.png"))
    print("\n" + table)
    print(f"wrote {args.out}/results.md, results.json and val_accuracy.png")


if __name__ == "__main__":
    main()
