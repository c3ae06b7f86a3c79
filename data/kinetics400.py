#!/usr/bin/env python
"""Kinetics-400: the official CSV annotations to a video list and a label list.

    python data/kinetics400.py --csv kinetics400/train.csv --videos k400/train --out data/k400 --name train
    python data/kinetics400.py --csv kinetics400/validate.csv --videos k400/val --out data/k400 --name val

The CSV header is `label,youtube_id,time_start,time_end,split[,is_cc]`. Clips are looked up under
--videos (one folder per label or flat, any of .mp4/.mkv/.webm/.avi) as
`<youtube_id>_<start:06d>_<end:06d>.<ext>` or `<youtube_id>.<ext>`. Clips not on disk are
tolerated: counted and written to <name>_missing.txt. Writes <name>.list (`path LABEL`, paths
relative to --videos) and, unless it exists, label_list.txt (`0 abseiling`, spaces as underscores,
alphabetical, as PaddleVideo ships it). Give --label-list to reuse a list for the indices.
"""
import argparse
import csv
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from prep_utils import Progress, write_lines  # noqa: E402

EXTS = (".mp4", ".mkv", ".webm", ".avi")


def label_name(label):
    return label.strip().replace(" ", "_").replace('"', "")


def read_label_list(path):
    names = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                idx, _, name = line.strip().partition(" ")
                if not idx.isdigit() or not name:
                    raise SystemExit(f"{path}:{n}: expected `INDEX NAME`, got {line.strip()!r}")
                names[name] = int(idx)
    return names


def index_disk(root):
    found = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            stem, ext = os.path.splitext(name)
            if ext.lower() in EXTS:
                found.setdefault(stem, os.path.relpath(os.path.join(dirpath, name), root)
                                 .replace(os.sep, "/"))
    return found


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        need = {"label", "youtube_id", "time_start", "time_end"}
        if not reader.fieldnames or not need <= set(reader.fieldnames):
            raise SystemExit(f"{path}: expected the header label,youtube_id,time_start,time_end,split; "
                             f"found {reader.fieldnames}")
        return [(n, row) for n, row in enumerate(reader, 2)]


def convert(csv_path, videos, labels):
    """(list lines, missing lines) for one CSV."""
    rows = read_csv(csv_path)
    disk = index_disk(videos)
    lines, missing = [], []
    bar = Progress(len(rows), os.path.basename(csv_path))
    for n, row in rows:
        bar.update()
        name = label_name(row["label"])
        if name not in labels:
            raise SystemExit(f"{csv_path}:{n}: label {row['label']!r} is not in the label list")
        yid = row["youtube_id"]
        stem = f"{yid}_{int(float(row['time_start'])):06d}_{int(float(row['time_end'])):06d}"
        rel = disk.get(stem) or disk.get(yid)
        if rel is None:
            missing.append(f"{os.path.basename(csv_path)}:{n} {stem} {name}")
        else:
            lines.append(f"{rel} {labels[name]}")
    return lines, missing


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--csv", required=True, help="an official annotation CSV (train/validate/test)")
    ap.add_argument("--videos", required=True, help="folder holding this split's clips")
    ap.add_argument("--out", required=True, help="folder for the lists")
    ap.add_argument("--name", default=None, help="list name (default: the CSV's name)")
    ap.add_argument("--label-list", default=None, help="existing `INDEX NAME` list to take indices "
                    "from (default: out/label_list.txt if present, else made from this CSV)")
    a = ap.parse_args(argv)
    name = a.name or os.path.splitext(os.path.basename(a.csv))[0]
    label_path = a.label_list or os.path.join(a.out, "label_list.txt")
    if os.path.isfile(label_path):
        labels = read_label_list(label_path)
    else:
        names = sorted({label_name(r["label"]) for _, r in read_csv(a.csv)})
        labels = {n: i for i, n in enumerate(names)}
        write_lines(label_path, [f"{i} {n}" for n, i in sorted(labels.items(), key=lambda x: x[1])])
        print(f"wrote {label_path} ({len(labels)} classes)")
    lines, missing = convert(a.csv, a.videos, labels)
    write_lines(os.path.join(a.out, f"{name}.list"), lines)
    if missing:
        write_lines(os.path.join(a.out, f"{name}_missing.txt"), missing)
    total = len(lines) + len(missing)
    print(f"{name}: {len(lines)} of {total} clips found; {len(missing)} missing"
          + (f" (listed in {name}_missing.txt)" if missing else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
