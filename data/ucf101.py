#!/usr/bin/env python
"""UCF101: the official ucfTrainTestlist to the video (and frame) lists the UCF101 configs read.

    python data/ucf101.py --videos UCF-101 --splits-dir ucfTrainTestlist --out data/ucf101
    python data/ucf101.py ... --frames data/ucf101/frames    # also frame lists (after extract_frames)

Writes, per split k: ucf101_train_split_k_videos.txt and ucf101_val_split_k_videos.txt
(`/abs/UCF-101/Class/v_Class_gGG_cCC.avi LABEL`, 0-based labels), with --frames the same as
`_rawframes.txt` (`/abs/frames/Class/v_Class_gGG_cCC NUM_FRAMES LABEL`), and
ucf101_label_list.txt (`0 ApplyEyeMakeup`). Paths are absolute, so the configs
(configs/recognition/tsm/tsm_ucf101_*.yaml, data_prefix '') read the lists from the repository
root wherever the videos are; --relative writes them relative to --videos / --frames instead.
Names are matched to the files on disk without regard to case, which resolves the official
release's HandStandPushups (lists) / HandstandPushups (disk) quirk. Clips of the split files that
are not on disk are written to missing_split_k.txt and make the exit status 1 (the split would
not be the official one) unless --allow-missing.
"""
import argparse
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from prep_utils import (RELATIVE_HELP, ROOT, list_path, progress, write_lines,  # noqa: E402
                        write_missing)

VIDEO_EXTS = (".avi", ".mp4", ".mkv", ".webm")


def read_classes(path):
    """{lower-case class name: (0-based label, name)} from classInd.txt (`1 ApplyEyeMakeup`)."""
    if not os.path.isfile(path):
        raise SystemExit(f"error: {path} not found; --splits-dir must be the official "
                         f"ucfTrainTestlist folder (classInd.txt, trainlist01.txt, ...)")
    classes = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) != 2 or not parts[0].isdigit():
                raise SystemExit(f"error: {path}:{n}: expected `INDEX ClassName`, got "
                                 f"{line.strip()!r}")
            classes[parts[1].lower()] = (int(parts[0]) - 1, parts[1])
    return classes


def index_disk(root):
    """{lower-case relative path without extension: real relative path} of the videos under root."""
    found = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            if os.path.splitext(name)[1].lower() in VIDEO_EXTS:
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


def convert_split(splits_dir, k, classes, disk, frames=None, quiet=False):
    """({'train': (video rows, frame rows), 'val': ...}, missing lines) for split k; a row is
    (relative path, [count,] label)."""
    out = {}
    missing = []
    for part, fname in (("train", f"trainlist0{k}.txt"), ("val", f"testlist0{k}.txt")):
        path = os.path.join(splits_dir, fname)
        if not os.path.isfile(path):
            raise SystemExit(f"error: {path} not found; --splits-dir must be the official "
                             f"ucfTrainTestlist folder.")
        videos, frame_rows = [], []
        with open(path, encoding="utf-8") as f:
            rows = [(n, line.split()) for n, line in enumerate(f, 1) if line.strip()]
        bar = progress(len(rows), f"split {k} {part}", quiet)
        for n, parts in rows:
            bar.update()
            rel = parts[0].replace("\\", "/")
            cls = rel.split("/")[0].lower()
            if cls not in classes:
                raise SystemExit(f"error: {path}:{n}: class folder {rel.split('/')[0]!r} is not in "
                                 f"classInd.txt")
            label = classes[cls][0]
            if len(parts) > 1 and int(parts[1]) - 1 != label:
                raise SystemExit(f"error: {path}:{n}: label {parts[1]} disagrees with classInd.txt "
                                 f"({label + 1} for {classes[cls][1]})")
            key = os.path.splitext(rel)[0].lower()
            if key not in disk:
                missing.append(f"{fname}:{n} {rel}")
                continue
            videos.append((disk[key], label))
            if frames is not None:
                if key not in frames:
                    missing.append(f"{fname}:{n} {rel} (no frame folder)")
                else:
                    folder, count = frames[key]
                    frame_rows.append((folder, count, label))
        bar.close()
        out[part] = (videos, frame_rows)
    return out, missing


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--videos", required=True, help="the UCF-101 folder (Class/v_Class_gGG_cCC.avi)")
    ap.add_argument("--splits-dir", required=True, help="the official ucfTrainTestlist folder")
    ap.add_argument("--out", default=os.path.join(ROOT, "data", "ucf101"),
                    help="folder for the lists (default: data/ucf101 of this repository, where "
                         "the configs look)")
    ap.add_argument("--frames", default=None, help="frame root (Class/v_.../img_00001.jpg) to also "
                    "write frame lists")
    ap.add_argument("--splits", default="1,2,3", help="splits to convert (default 1,2,3)")
    ap.add_argument("--relative", action="store_true", help=RELATIVE_HELP)
    ap.add_argument("--allow-missing", action="store_true",
                    help="exit 0 although clips of the split files are not on disk")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    a = ap.parse_args(argv)
    classes = read_classes(os.path.join(a.splits_dir, "classInd.txt"))
    if not os.path.isdir(a.videos):
        raise SystemExit(f"error: --videos {a.videos} is not a folder; give the UCF-101 folder "
                         f"(Class/v_Class_gGG_cCC.avi)")
    disk = index_disk(a.videos)
    if not disk:
        raise SystemExit(f"error: no videos ({', '.join(VIDEO_EXTS)}) under {a.videos}; give the "
                         f"UCF-101 folder (Class/v_Class_gGG_cCC.avi)")
    if a.frames and not os.path.isdir(a.frames):
        raise SystemExit(f"error: --frames {a.frames} is not a folder; extract the frames first "
                         f"(data/extract_frames.py) or leave --frames out")
    frames = index_frames(a.frames) if a.frames else None
    write_lines(os.path.join(a.out, "ucf101_label_list.txt"),
                [f"{i} {n}" for i, n in sorted(classes.values())])
    any_missing = False
    for k in [int(s) for s in re.split(r"[, ]+", a.splits) if s]:
        parts, missing = convert_split(a.splits_dir, k, classes, disk, frames, a.quiet)
        for part, (videos, frame_rows) in parts.items():
            write_lines(os.path.join(a.out, f"ucf101_{part}_split_{k}_videos.txt"),
                        [f"{list_path(os.path.join(a.videos, rel), a.videos, a.relative)} {label}"
                         for rel, label in videos])
            if frames is not None:
                write_lines(os.path.join(a.out, f"ucf101_{part}_split_{k}_rawframes.txt"),
                            [f"{list_path(os.path.join(a.frames, rel), a.frames, a.relative)} "
                             f"{count} {label}" for rel, count, label in frame_rows])
        listed = write_missing(os.path.join(a.out, f"missing_split_{k}.txt"), missing)
        any_missing = any_missing or bool(missing)
        print(f"split {k}: {len(parts['train'][0])} train, {len(parts['val'][0])} val videos; "
              f"{len(missing)} missing{listed}")
    print(f"lists in {a.out}" + ("" if a.relative else
                                 " (absolute paths: the tsm_ucf101 configs read them as they are)"))
    if any_missing and not a.allow_missing:
        print("error: clips of the official split files are missing, so these are not the official "
              "splits; complete the download, or pass --allow-missing to use the lists anyway",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
