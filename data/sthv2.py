#!/usr/bin/env python
"""Something-Something V2: the official JSON files to video lists and a label list.

    python data/sthv2.py --labels something-something-v2-labels.json \\
        --train something-something-v2-train.json --val something-something-v2-validation.json \\
        --videos 20bn-something-something-v2 --out data/sthv2

Writes train.list / val.list (`/abs/20bn-something-something-v2/<id>.webm LABEL`; --relative:
`<id>.webm`, for data_prefix: the video folder) and label_list.txt (`INDEX Template without
brackets`, indices from the labels JSON). A sample's class is its template with the brackets
removed ("Holding [something] next to [something]" -> "Holding something next to something").
Clips not on disk are counted and written to <name>_missing.txt. Do not train these with
RandomFlip: left/right is part of many classes.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from prep_utils import (RELATIVE_HELP, ROOT, list_path, progress, write_lines,  # noqa: E402
                        write_missing)


def template_class(template):
    return template.replace("[", "").replace("]", "")


def read_json(path):
    if not os.path.isfile(path):
        raise SystemExit(f"error: file not found: {path}")
    with open(path, encoding="utf-8") as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as e:
            raise SystemExit(f"error: {path}: not valid JSON ({e})") from None


def read_labels(path):
    raw = read_json(path)
    if not isinstance(raw, dict):
        raise SystemExit(f"error: {path}: expected a mapping {{class name: index}} "
                         f"(something-something-v2-labels.json)")
    try:
        labels = {name: int(idx) for name, idx in raw.items()}
    except (TypeError, ValueError):
        raise SystemExit(f"error: {path}: every index must be an integer") from None
    if sorted(labels.values()) != list(range(len(labels))):
        raise SystemExit(f"error: {path}: the indices are not 0..{len(labels) - 1} without gaps")
    return labels


def convert(path, labels, videos, ext=".webm", relative=False, quiet=False):
    """(list lines, missing lines) for one annotation JSON."""
    items = read_json(path)
    if not isinstance(items, list):
        raise SystemExit(f"error: {path}: expected a list of {{id, template, ...}} items")
    lines, missing = [], []
    bar = progress(len(items), os.path.basename(path), quiet)
    for k, item in enumerate(items):
        bar.update()
        if not isinstance(item, dict) or "template" not in item or "id" not in item:
            raise SystemExit(f"error: {path}: item {k} has no 'id' or 'template' (the test JSON "
                             f"has no labels): {item}")
        name = template_class(item["template"])
        if name not in labels:
            raise SystemExit(f"error: {path}: item {k} (id {item['id']}): class {name!r} is not in "
                             f"the labels JSON")
        video = os.path.join(videos, f"{item['id']}{ext}")
        if not os.path.isfile(video):
            missing.append(f"{item['id']}{ext} {name}")
            continue
        lines.append(f"{list_path(video, videos, relative)} {labels[name]}")
    bar.close()
    return lines, missing


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--labels", required=True, help="something-something-v2-labels.json")
    ap.add_argument("--train", default=None, help="something-something-v2-train.json")
    ap.add_argument("--val", default=None, help="something-something-v2-validation.json")
    ap.add_argument("--videos", required=True, help="the folder of <id>.webm")
    ap.add_argument("--ext", default=".webm", help="video file extension (default .webm)")
    ap.add_argument("--out", default=os.path.join(ROOT, "data", "sthv2"),
                    help="folder for the lists (default: data/sthv2 of this repository)")
    ap.add_argument("--relative", action="store_true", help=RELATIVE_HELP)
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    a = ap.parse_args(argv)
    if not (a.train or a.val):
        ap.error("give --train and/or --val")
    if not os.path.isdir(a.videos):
        raise SystemExit(f"error: --videos {a.videos} is not a folder; give the folder of <id>.webm")
    labels = read_labels(a.labels)
    write_lines(os.path.join(a.out, "label_list.txt"),
                [f"{i} {n}" for n, i in sorted(labels.items(), key=lambda x: x[1])])
    for name, path in (("train", a.train), ("val", a.val)):
        if not path:
            continue
        lines, missing = convert(path, labels, a.videos, a.ext, a.relative, a.quiet)
        if not lines:
            raise SystemExit(f"error: none of the {len(missing)} clips of {path} is in {a.videos} "
                             f"as <id>{a.ext}; check --videos and --ext")
        list_file = write_lines(os.path.join(a.out, f"{name}.list"), lines)
        listed = write_missing(os.path.join(a.out, f"{name}_missing.txt"), missing)
        print(f"{list_file}: {len(lines)} clips" +
              (f", {len(missing)} missing{listed}" if missing else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
