#!/usr/bin/env python
"""Jester (20BN hand gestures, 27 classes): the official CSV files to frame lists and a label list.

    python data/jester.py --labels jester-v1-labels.csv --train jester-v1-train.csv \\
        --val jester-v1-validation.csv --frames 20bn-jester-v1 --out data/jester

Jester ships frames, one folder per clip: 20bn-jester-v1/<id>/00001.jpg, 00002.jpg, ...
(configs: suffix '{:05}.jpg'). The CSVs are ';'-separated: the labels file one class name a line,
the train/validation files `id;class name`. Writes train.list / val.list (`/abs/20bn-jester-v1/<id>
NUM_FRAMES LABEL`; --relative: `<id> NUM_FRAMES LABEL`) and label_list.txt (`INDEX Name`, the
names sorted alphabetically: the class order of the original TSM online demo's Jester network,
so its released weights and models trained from these lists mean the same classes by index; it
is data/jester_label_list.txt). Clips whose folder is missing or
empty are counted and written to <name>_missing.txt. Do not train Jester with RandomFlip:
"Swiping Left" flipped is "Swiping Right".
"""
import argparse
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from prep_utils import (RELATIVE_HELP, ROOT, list_path, progress, write_lines,  # noqa: E402
                        write_missing)

FRAME_NAME = re.compile(r"^\d{5}\.jpg$")


def _read_rows(path):
    if not os.path.isfile(path):
        raise SystemExit(f"error: file not found: {path}")
    with open(path, encoding="utf-8-sig") as f:
        return [(n, line.strip()) for n, line in enumerate(f, 1) if line.strip()]


def read_labels(path):
    """Class names (jester-v1-labels.csv: one a line), sorted: the demo network's order."""
    names = []
    for n, text in _read_rows(path):
        if ";" in text:
            raise SystemExit(f"error: {path}:{n}: expected one class name a line, got {text!r} "
                             f"(is this the train/validation CSV?)")
        if text in names:
            raise SystemExit(f"error: {path}:{n}: class {text!r} is listed twice")
        names.append(text)
    if not names:
        raise SystemExit(f"error: {path}: no class names")
    return sorted(names)


def count_frames(folder):
    """Frames 00001.jpg ... of a clip folder; 0 when absent or empty."""
    if not os.path.isdir(folder):
        return 0
    return sum(1 for name in os.listdir(folder) if FRAME_NAME.match(name))


def convert(path, labels, frames, relative=False, quiet=False):
    """(list lines, missing lines) for one `id;class` CSV."""
    index = {name: i for i, name in enumerate(labels)}
    rows = _read_rows(path)
    lines, missing = [], []
    bar = progress(len(rows), os.path.basename(path), quiet)
    for n, text in rows:
        bar.update()
        parts = text.split(";")
        if len(parts) != 2 or not parts[0].strip():
            raise SystemExit(f"error: {path}:{n}: expected `id;class name`, got {text!r} (the "
                             f"test CSV has no labels)")
        clip, name = parts[0].strip(), parts[1].strip()
        if name not in index:
            raise SystemExit(f"error: {path}:{n}: class {name!r} is not in the labels file")
        if os.sep in clip or "/" in clip or clip in (".", ".."):
            raise SystemExit(f"error: {path}:{n}: clip id {clip!r} is not a plain folder name")
        folder = os.path.join(frames, clip)
        count = count_frames(folder)
        if count == 0:
            missing.append(f"{clip} {name}")
            continue
        lines.append(f"{list_path(folder, frames, relative)} {count} {index[name]}")
    bar.close()
    return lines, missing


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--labels", required=True, help="jester-v1-labels.csv")
    ap.add_argument("--train", default=None, help="jester-v1-train.csv")
    ap.add_argument("--val", default=None, help="jester-v1-validation.csv")
    ap.add_argument("--frames", required=True, help="the folder of <id>/ frame folders")
    ap.add_argument("--out", default=os.path.join(ROOT, "data", "jester"),
                    help="folder for the lists (default: data/jester of this repository)")
    ap.add_argument("--relative", action="store_true", help=RELATIVE_HELP)
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    a = ap.parse_args(argv)
    if not (a.train or a.val):
        ap.error("give --train and/or --val")
    if not os.path.isdir(a.frames):
        raise SystemExit(f"error: --frames {a.frames} is not a folder; give the folder of the "
                         f"<id>/ frame folders (20bn-jester-v1)")
    labels = read_labels(a.labels)
    write_lines(os.path.join(a.out, "label_list.txt"), [f"{i} {n}" for i, n in enumerate(labels)])
    for name, path in (("train", a.train), ("val", a.val)):
        if not path:
            continue
        lines, missing = convert(path, labels, a.frames, a.relative, a.quiet)
        if not lines:
            raise SystemExit(f"error: none of the {len(missing)} clips of {path} has frames in "
                             f"{a.frames}/<id>/00001.jpg ...; check --frames")
        list_file = write_lines(os.path.join(a.out, f"{name}.list"), lines)
        listed = write_missing(os.path.join(a.out, f"{name}_missing.txt"), missing)
        print(f"{list_file}: {len(lines)} clips" +
              (f", {len(missing)} missing{listed}" if missing else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
