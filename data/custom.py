#!/usr/bin/env python
"""Your own videos, one folder per class, to a training list, a validation list and a label list.

    python data/custom.py --videos my_videos --out data/custom                  # 20 % of each class to val
    python data/custom.py --videos my_videos/train --val my_videos/val --out data/custom

--videos holds one folder per class (`my_videos/<class name>/<any name>.mp4`, nested folders
inside a class are fine); the classes are the folder names, numbered in sorted order into
OUT/label_list.txt (`0 class_a`). Without --val, every class's videos are shuffled with --seed and
--val-ratio of them (at least one when a class has two or more) go to val.list, the rest to
train.list; with --val, that folder (the same class folders) gives val.list. Paths are absolute
(--relative: relative to the video folder). Files are taken by extension (--exts); anything else
is listed as skipped. Check the videos decode with data/check_videos.py before training.
"""
import argparse
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from prep_utils import RELATIVE_HELP, ROOT, list_path, write_lines  # noqa: E402

EXTS = ".mp4,.avi,.mkv,.webm,.mov,.m4v,.mpg,.mpeg,.flv,.wmv"


def class_videos(root, exts):
    """({class: [video paths, sorted]}, [skipped files]) of a folder of class folders."""
    if not os.path.isdir(root):
        raise SystemExit(f"error: {root} is not a folder; give the folder of class folders")
    classes = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d))
                     and not d.startswith("."))
    if not classes:
        raise SystemExit(f"error: {root} has no class folders; put each class's videos in "
                         f"{root}/<class name>/")
    found, skipped = {}, []
    for c in classes:
        if any(ch.isspace() for ch in c):
            raise SystemExit(f"error: class folder {os.path.join(root, c)!r} has a space in its "
                             f"name; the label list is `INDEX NAME` per line, rename it (e.g. "
                             f"{'_'.join(c.split())!r})")
        files = []
        for dirpath, dirs, names in os.walk(os.path.join(root, c)):
            dirs.sort()
            for name in sorted(names):
                path = os.path.join(dirpath, name)
                (files if os.path.splitext(name)[1].lower() in exts else skipped).append(path)
        found[c] = files
    empty = [c for c, f in found.items() if not f]
    if empty:
        raise SystemExit(f"error: no videos ({', '.join(sorted(exts))}) in the class folder(s) "
                         f"{', '.join(os.path.join(root, c) for c in empty)}")
    return found, skipped


def split(videos, ratio, seed):
    """(train, val) per class: a seeded shuffle, round(ratio * n) to val (at least one of two)."""
    rng = random.Random(seed)
    train, val = {}, {}
    for c, files in videos.items():
        files = list(files)
        rng.shuffle(files)
        k = int(round(ratio * len(files)))
        if ratio > 0 and len(files) >= 2:
            k = min(max(k, 1), len(files) - 1)
        val[c], train[c] = sorted(files[:k]), sorted(files[k:])
    return train, val


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--videos", required=True, help="folder of class folders (the training videos, "
                    "or all of them without --val)")
    ap.add_argument("--val", default=None, help="folder of the same class folders with the "
                    "validation videos (default: split --videos by --val-ratio)")
    ap.add_argument("--val-ratio", type=float, default=0.2, help="share of each class for "
                    "validation without --val (0.2)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the split (0)")
    ap.add_argument("--out", default=os.path.join(ROOT, "data", "custom"),
                    help="folder for train.list, val.list, label_list.txt (default: data/custom)")
    ap.add_argument("--exts", default=EXTS, help=f"video extensions ({EXTS})")
    ap.add_argument("--relative", action="store_true", help=RELATIVE_HELP)
    a = ap.parse_args(argv)
    if not 0 <= a.val_ratio < 1:
        ap.error("--val-ratio must be in [0, 1)")
    exts = {e.strip().lower() if e.strip().startswith(".") else "." + e.strip().lower()
            for e in a.exts.split(",") if e.strip()}
    videos, skipped = class_videos(a.videos, exts)
    if a.val:
        val, more = class_videos(a.val, exts)
        skipped += more
        if sorted(val) != sorted(videos):
            raise SystemExit(f"error: the class folders differ: only in {a.videos}: "
                             f"{sorted(set(videos) - set(val))}, only in {a.val}: "
                             f"{sorted(set(val) - set(videos))}")
        train = videos
    else:
        train, val = split(videos, a.val_ratio, a.seed)
    classes = sorted(videos)
    label = {c: i for i, c in enumerate(classes)}

    def rows(per_class, root):
        return [f"{list_path(p, root, a.relative)} {label[c]}" for c in classes for p in per_class[c]]

    write_lines(os.path.join(a.out, "label_list.txt"), [f"{i} {c}" for i, c in enumerate(classes)])
    write_lines(os.path.join(a.out, "train.list"), rows(train, a.videos))
    write_lines(os.path.join(a.out, "val.list"), rows(val, a.val or a.videos))
    n_train, n_val = sum(map(len, train.values())), sum(map(len, val.values()))
    print(f"{len(classes)} classes; {n_train} training and {n_val} validation videos; lists in "
          f"{a.out} (train.list, val.list, label_list.txt)")
    if skipped:
        print(f"skipped {len(skipped)} file(s) that are not videos by extension, e.g. {skipped[0]}")
    if n_val == 0:
        print("warning: the validation list is empty (classes with one video, or --val-ratio 0); "
              "train without --validate", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
