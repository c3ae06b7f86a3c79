#!/usr/bin/env python
"""Something-Something V2: the official JSON files to video lists and a label list.

    python data/sthv2.py --labels something-something-v2-labels.json \
        --train something-something-v2-train.json --val something-something-v2-validation.json \
        --videos 20bn-something-something-v2 --out data/sthv2

Writes train.list / val.list (`<id>.webm LABEL`, paths relative to --videos) and label_list.txt
(`INDEX Template without brackets`). A sample's class is its template with the brackets removed
("Holding [something] next to [something]" -> "Holding something next to something"). With
--videos, clips not on disk are counted and written to <name>_missing.txt. Do not train these with
RandomFlip: left/right is part of many classes.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from prep_utils import Progress, write_lines  # noqa: E402


def template_class(template):
    return template.replace("[", "").replace("]", "")


def read_labels(path):
    with open(path, encoding="utf-8") as f:
        raw = json.load(f)
    if not isinstance(raw, dict):
        raise SystemExit(f"{path}: expected a mapping {{class name: index}}")
    return {name: int(idx) for name, idx in raw.items()}


def convert(path, labels, videos=None, ext=".webm"):
    with open(path, encoding="utf-8") as f:
        items = json.load(f)
    lines, missing = [], []
    bar = Progress(len(items), os.path.basename(path))
    for k, item in enumerate(items):
        bar.update()
        if "template" not in item or "id" not in item:
            raise SystemExit(f"{path}: item {k} has no 'id' or 'template': {item}")
        name = template_class(item["template"])
        if name not in labels:
            raise SystemExit(f"{path}: item {k} (id {item['id']}): class {name!r} is not in the labels")
        rel = f"{item['id']}{ext}"
        if videos is not None and not os.path.isfile(os.path.join(videos, rel)):
            missing.append(f"{rel} {name}")
            continue
        lines.append(f"{rel} {labels[name]}")
    return lines, missing


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--labels", required=True, help="something-something-v2-labels.json")
    ap.add_argument("--train", default=None, help="something-something-v2-train.json")
    ap.add_argument("--val", default=None, help="something-something-v2-validation.json")
    ap.add_argument("--videos", default=None, help="folder of <id>.webm, to check the clips exist")
    ap.add_argument("--ext", default=".webm", help="video file extension (default .webm)")
    ap.add_argument("--out", required=True, help="folder for the lists")
    a = ap.parse_args(argv)
    labels = read_labels(a.labels)
    write_lines(os.path.join(a.out, "label_list.txt"),
                [f"{i} {n}" for n, i in sorted(labels.items(), key=lambda x: x[1])])
    for name, path in (("train", a.train), ("val", a.val)):
        if not path:
            continue
        lines, missing = convert(path, labels, a.videos, a.ext)
        write_lines(os.path.join(a.out, f"{name}.list"), lines)
        if missing:
            write_lines(os.path.join(a.out, f"{name}_missing.txt"), missing)
        print(f"{name}: {len(lines)} clips" + (f", {len(missing)} missing (see {name}_missing.txt)"
                                               if missing else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
