#!/usr/bin/env python
"""UCF101: the official ucfTrainTestlist to our video (and frame) lists for splits 1 to 3.

    python data/ucf101.py --videos UCF-101 --splits-dir ucfTrainTestlist --out data/ucf101
    python data/ucf101.py ... --frames data/ucf101/frames    # also frame lists (after extract_frames)

Writes, per split k: ucf101_train_split_k_videos.txt and ucf101_val_split_k_videos.txt
(`Class/v_Class_gGG_cCC.avi LABEL`, 0-based labels, paths relative to --videos), with --frames the
same as `_rawframes.txt` (`Class/v_... NUM_FRAMES LABEL`), and ucf101_label_list.txt (`0 ApplyEyeMakeup`).
Names are matched to the files on disk without regard to case, which resolves the official
release's HandStandPushups (lists) / HandstandPushups (disk) quirk; clips that are not on disk at
all are counted and written to missing_split_k.txt.
"""
import argparse
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from prep_utils import Progress, write_lines  # noqa: E402


def read_classes(path):
    """{lower-case class name: (0-based label, name)} from classInd.txt (`1 ApplyEyeMakeup`)."""
    classes = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) != 2 or not parts[0].isdigit():
                raise SystemExit(f"{path}:{n}: expected `INDEX ClassName`, got {line.strip()!r}")
            classes[parts[1].lower()] = (int(parts[0]) - 1, parts[1])
    return classes


def index_disk(root, exts=(".avi", ".mp4", ".mkv", ".webm")):
    """{lower-case relative path without extension: real relative path} of the videos under root."""
    found = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            stem, ext = os.path.splitext(name)
            if ext.lower() in exts:
                rel = os.path.relpath(os.path.join(dirpath, name), root).replace(os.sep, "/")
                found[os.path.splitext(rel)[0].lower()] = rel
    return found


def index_frames(root):
    """{lower-case relative folder: (real relative folder, number of files)} for frame folders."""
    found = {}
    for dirpath, dirs, files in os.walk(root):
        if files and not dirs:
            rel = os.path.relpath(dirpath, root).replace(os.sep, "/")
            found[rel.lower()] = (rel, len([f for f in files if not f.startswith(".")]))
    return found


def convert_split(splits_dir, k, classes, disk, frames=None):
    """(train, val, missing) lines for split k."""
    out = {}
    missing = []
    for part, fname in (("train", f"trainlist0{k}.txt"), ("val", f"testlist0{k}.txt")):
        path = os.path.join(splits_dir, fname)
        if not os.path.isfile(path):
            raise SystemExit(f"{path} not found; --splits-dir must be the official ucfTrainTestlist "
                             f"folder.")
        videos, frame_lines = [], []
        with open(path, encoding="utf-8") as f:
            rows = [(n, line.split()) for n, line in enumerate(f, 1) if line.strip()]
        bar = Progress(len(rows), f"split {k} {part}")
        for n, parts in rows:
            bar.update()
            rel = parts[0].replace("\\", "/")
            cls = rel.split("/")[0].lower()
            if cls not in classes:
                raise SystemExit(f"{path}:{n}: class folder {rel.split('/')[0]!r} is not in "
                                 f"classInd.txt")
            label = classes[cls][0]
            if len(parts) > 1 and int(parts[1]) - 1 != label:
                raise SystemExit(f"{path}:{n}: label {parts[1]} disagrees with classInd.txt "
                                 f"({label + 1} for {classes[cls][1]})")
            key = os.path.splitext(rel)[0].lower()
            if key not in disk:
                missing.append(f"{fname}:{n} {rel}")
                continue
            videos.append(f"{disk[key]} {label}")
            if frames is not None:
                if key not in frames:
                    missing.append(f"{fname}:{n} {rel} (no frame folder)")
                else:
                    folder, count = frames[key]
                    frame_lines.append(f"{folder} {count} {label}")
        out[part] = (videos, frame_lines)
    return out, missing


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--videos", required=True, help="the UCF-101 folder (Class/v_Class_gGG_cCC.avi)")
    ap.add_argument("--splits-dir", required=True, help="the official ucfTrainTestlist folder")
    ap.add_argument("--out", required=True, help="folder for the lists")
    ap.add_argument("--frames", default=None, help="frame root (Class/v_.../img_00001.jpg) to also "
                    "write frame lists")
    ap.add_argument("--splits", default="1,2,3", help="splits to convert (default 1,2,3)")
    a = ap.parse_args(argv)
    classes = read_classes(os.path.join(a.splits_dir, "classInd.txt"))
    disk = index_disk(a.videos)
    frames = index_frames(a.frames) if a.frames else None
    write_lines(os.path.join(a.out, "ucf101_label_list.txt"),
                [f"{i} {n}" for i, n in sorted(classes.values())])
    for k in [int(s) for s in re.split(r"[, ]+", a.splits) if s]:
        parts, missing = convert_split(a.splits_dir, k, classes, disk, frames)
        for part, (videos, frame_lines) in parts.items():
            write_lines(os.path.join(a.out, f"ucf101_{part}_split_{k}_videos.txt"), videos)
            if frames is not None:
                write_lines(os.path.join(a.out, f"ucf101_{part}_split_{k}_rawframes.txt"), frame_lines)
        if missing:
            write_lines(os.path.join(a.out, f"missing_split_{k}.txt"), missing)
        print(f"split {k}: {len(parts['train'][0])} train, {len(parts['val'][0])} val videos; "
              f"{len(missing)} missing" + (f" (see missing_split_{k}.txt)" if missing else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
