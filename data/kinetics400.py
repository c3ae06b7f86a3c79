#!/usr/bin/env python
"""Kinetics-400: the official CSV annotations to the video lists the Kinetics-400 configs read.

    python data/kinetics400.py --csv kinetics400/train.csv --videos k400/train      # data/k400/train.list
    python data/kinetics400.py --csv kinetics400/validate.csv --videos k400/val     # data/k400/val.list

The CSV header is `label,youtube_id,time_start,time_end,split[,is_cc]`. Clips are looked up under
--videos (one folder per label or flat, any of .mp4/.mkv/.webm/.avi) as
`<youtube_id>_<start:06d>_<end:06d>.<ext>` or `<youtube_id>.<ext>`. A share of Kinetics is no
longer downloadable, so clips not on disk are tolerated: counted and written to
<name>_missing.txt. Writes <name>.list (`/abs/path/clip.mp4 LABEL`; --relative: relative to
--videos); <name> is train for train.csv, val for validate.csv, else the CSV's name.

Class indices come from the shipped data/kinetics400_label_list.txt (`1 air_drumming`: the CSV's
name with underscores for spaces, alphabetical), the indices of PaddleVideo's and TSM's released
Kinetics-400 checkpoints, so their predictions mean what the list says. --label-list takes
another `INDEX NAME` list; --classes-from-csv numbers the CSV's own classes alphabetically (a
subset such as Mini-Kinetics) and writes OUT/label_list.txt for the other splits to reuse.
"""
import argparse
import csv
import difflib
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from prep_utils import (RELATIVE_HELP, ROOT, list_path, progress, write_lines,  # noqa: E402
                        write_missing)

EXTS = (".mp4", ".mkv", ".webm", ".avi")
SHIPPED_LABELS = os.path.join(ROOT, "data", "kinetics400_label_list.txt")


def label_name(label):
    """The label list's form of a CSV class name: 'air drumming' -> 'air_drumming'."""
    return label.strip().strip('"').replace(" ", "_")


def read_label_list(path):
    """{name: index} from an `INDEX NAME` list."""
    if not os.path.isfile(path):
        raise SystemExit(f"error: label list not found: {path}")
    names = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                idx, _, name = line.strip().partition(" ")
                if not idx.isdigit() or not name.strip():
                    raise SystemExit(f"error: {path}:{n}: expected `INDEX NAME`, got "
                                     f"{line.strip()!r}")
                names[name.strip()] = int(idx)
    return names


def index_disk(root):
    """{file name without extension: path} of the videos under root."""
    found = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            stem, ext = os.path.splitext(name)
            if ext.lower() in EXTS:
                found.setdefault(stem, os.path.join(dirpath, name))
    return found


def read_csv(path):
    if not os.path.isfile(path):
        raise SystemExit(f"error: CSV not found: {path}")
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        need = {"label", "youtube_id", "time_start", "time_end"}
        if not reader.fieldnames or not need <= set(reader.fieldnames):
            raise SystemExit(f"error: {path}: expected the header label,youtube_id,time_start,"
                             f"time_end,split; found {reader.fieldnames} (the test CSV has no "
                             f"labels and cannot make a training or validation list)")
        return [(n, row) for n, row in enumerate(reader, 2)]


def convert(csv_path, videos, labels, relative=False, quiet=False):
    """(list lines, missing lines) for one CSV."""
    rows = read_csv(csv_path)
    disk = index_disk(videos)
    lines, missing = [], []
    bar = progress(len(rows), os.path.basename(csv_path), quiet)
    for n, row in rows:
        bar.update()
        name = label_name(row["label"])
        if name not in labels:
            close = difflib.get_close_matches(name, list(labels), n=1)
            raise SystemExit(f"error: {csv_path}:{n}: class {row['label']!r} ({name!r}) is not in "
                             f"the label list" + (f"; did you mean {close[0]!r}?" if close else "")
                             + " Use the list of the checkpoint you evaluate, or --classes-from-csv")
        yid = row["youtube_id"]
        stem = f"{yid}_{int(float(row['time_start'])):06d}_{int(float(row['time_end'])):06d}"
        path = disk.get(stem) or disk.get(yid)
        if path is None:
            missing.append(f"{os.path.basename(csv_path)}:{n} {stem} {name}")
        else:
            lines.append(f"{list_path(path, videos, relative)} {labels[name]}")
    bar.close()
    return lines, missing


def default_name(csv_path):
    stem = os.path.splitext(os.path.basename(csv_path))[0]
    return {"train": "train", "validate": "val", "val": "val"}.get(stem, stem)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--csv", required=True, help="an official annotation CSV (train or validate)")
    ap.add_argument("--videos", required=True, help="folder holding this split's clips")
    ap.add_argument("--out", default=os.path.join(ROOT, "data", "k400"),
                    help="folder for the lists (default: data/k400 of this repository, where the "
                         "configs look)")
    ap.add_argument("--name", default=None, help="list name (default: train for train.csv, val "
                    "for validate.csv)")
    ap.add_argument("--label-list", default=SHIPPED_LABELS, help="`INDEX NAME` list giving the "
                    "class indices (default: data/kinetics400_label_list.txt, the released "
                    "checkpoints' indices)")
    ap.add_argument("--classes-from-csv", action="store_true",
                    help="number this CSV's classes alphabetically instead, and write them to "
                         "OUT/label_list.txt (pass that as --label-list for the other split)")
    ap.add_argument("--relative", action="store_true", help=RELATIVE_HELP)
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    a = ap.parse_args(argv)
    name = a.name or default_name(a.csv)
    if not os.path.isdir(a.videos):
        raise SystemExit(f"error: --videos {a.videos} is not a folder")
    if a.classes_from_csv:
        names = sorted({label_name(r["label"]) for _, r in read_csv(a.csv)})
        labels = {n: i for i, n in enumerate(names)}
        label_path = write_lines(os.path.join(a.out, "label_list.txt"),
                                 [f"{i} {n}" for i, n in enumerate(names)])
        print(f"wrote {label_path} ({len(labels)} classes from {a.csv})")
    else:
        labels = read_label_list(a.label_list)
    lines, missing = convert(a.csv, a.videos, labels, a.relative, a.quiet)
    if not lines:
        raise SystemExit(f"error: none of the {len(missing)} clips of {a.csv} is under {a.videos} "
                         f"(looked for <youtube_id>_<start:06d>_<end:06d>.mp4 or <youtube_id>.mp4, "
                         f"also .mkv/.webm/.avi); check --videos")
    list_file = write_lines(os.path.join(a.out, f"{name}.list"), lines)
    listed = write_missing(os.path.join(a.out, f"{name}_missing.txt"), missing)
    total = len(lines) + len(missing)
    print(f"{list_file}: {len(lines)} of {total} clips found; {len(missing)} missing{listed}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
