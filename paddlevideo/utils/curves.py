"""Training curves: loss, top-1 and learning rate over the epochs, as a picture in output_dir.

`TrainingCurves` keeps the figures of a run in `training_curves.json` and redraws
`training_curves.png` after every epoch: train and validation loss, train and validation top-1,
and the learning rate at every logged step. A resumed run reads the JSON back and continues the
same curves. Drawn with matplotlib's Agg canvas directly (no pyplot: no window, no global state).
"""
import json
import math
import os

__all__ = ["TrainingCurves", "draw_curves", "CURVES_JSON", "CURVES_PNG"]

CURVES_JSON = "training_curves.json"
CURVES_PNG = "training_curves.png"


def _number(value):
    """A finite float, or None (JSON has no NaN; a missing point is simply not drawn)."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


class TrainingCurves:
    """The per-epoch figures of one run and the learning rate at logged steps.

    epochs: [{'epoch', 'train_loss', 'train_top1', 'val_loss', 'val_top1'}] (val_* None on
    epochs without validation); lr: [[epoch position (fractional, 0-based), rate]].
    """

    def __init__(self, output_dir, enabled=True):
        self.output_dir, self.enabled = output_dir, enabled
        self.epochs, self.lr = [], []

    def load(self, epochs_done, position):
        """Continue a resumed run: keep the recorded epochs up to `epochs_done` and the rates
        logged before epoch position `position`; start afresh when nothing was recorded."""
        path = os.path.join(self.output_dir, CURVES_JSON)
        if not self.enabled or not os.path.isfile(path):
            return
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
            epochs, lr = list(data["epochs"]), list(data["lr"])
        except (OSError, ValueError, KeyError, TypeError):
            return          # a damaged picture's data: the curves restart, training is unaffected
        self.epochs = [row for row in epochs if int(row["epoch"]) <= epochs_done]
        self.lr = [point for point in lr if float(point[0]) < position]

    def add_lr(self, position, rate):
        self.lr.append([round(float(position), 6), float(rate)])

    def add_epoch(self, epoch, train_loss, train_top1, val_loss=None, val_top1=None):
        self.epochs = [row for row in self.epochs if row["epoch"] != epoch]
        self.epochs.append({"epoch": int(epoch), "train_loss": _number(train_loss),
                            "train_top1": _number(train_top1), "val_loss": _number(val_loss),
                            "val_top1": _number(val_top1)})

    def save(self):
        """Write the JSON and redraw the PNG, each atomically; returns the PNG's path."""
        if not self.enabled:
            return None
        os.makedirs(self.output_dir, exist_ok=True)
        path = os.path.join(self.output_dir, CURVES_JSON)
        tmp = f"{path}.tmp-{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump({"epochs": self.epochs, "lr": self.lr}, f)
        os.replace(tmp, path)
        return draw_curves(self.epochs, self.lr, os.path.join(self.output_dir, CURVES_PNG))


def _series(rows, key):
    points = [(row["epoch"], row[key]) for row in rows if row.get(key) is not None]
    return [p[0] for p in points], [p[1] for p in points]


def draw_curves(epochs, lr, path):
    """Three panels side by side (loss, top-1, learning rate) against the epoch; returns path."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(13, 3.8), dpi=100)
    FigureCanvasAgg(figure)
    loss_ax, top1_ax, lr_ax = figure.subplots(1, 3)
    for ax, key, title in ((loss_ax, "loss", "loss"), (top1_ax, "top1", "top-1 accuracy")):
        for split, style in (("train", "-o"), ("val", "-s")):
            x, y = _series(epochs, f"{split}_{key}")
            if x:
                ax.plot(x, y, style, markersize=4, label=split)
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.grid(True, alpha=0.3)
        if ax.lines:
            ax.legend()
    top1_ax.set_ylim(0, 1)
    if lr:
        # rates are logged at 0-based positions; epoch e ends at position e, as in the other panels
        lr_ax.plot([p[0] for p in lr], [p[1] for p in lr], "-", color="tab:green")
    lr_ax.set_title("learning rate (logged steps)")
    lr_ax.set_xlabel("epoch")
    lr_ax.grid(True, alpha=0.3)
    lr_ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
    for ax in (loss_ax, top1_ax, lr_ax):
        ax.xaxis.get_major_locator().set_params(integer=True)
    figure.tight_layout()
    tmp = f"{path}.tmp-{os.getpid()}.png"
    try:
        figure.savefig(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path
