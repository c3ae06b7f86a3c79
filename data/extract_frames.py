#!/usr/bin/env python
"""Videos to frame folders, in parallel and resumable, with the frame list the frames configs read.

    python data/extract_frames.py --list data/ucf101/ucf101_train_split_1_videos.txt \\
        --prefix UCF-101 --out data/ucf101/frames \\
        --frame-list data/ucf101/ucf101_train_split_1_rawframes.txt -j 2

Each video becomes a folder of `img_00001.jpg` ... (template --suffix, numbered from
--start-index) under OUT, named after the video's path under --prefix without the extension
(UCF-101/Class/v_X.avi -> OUT/Class/v_X). When the list's paths are absolute and --prefix is not
given, the folder the list's videos share takes its place. A folder is written under a temporary
name and renamed when complete, so an interrupted run resumes where it stopped and never leaves a
half folder behind. The frame list (`/abs/OUT/Class/v_X NUM_FRAMES LABEL`; --relative: relative
to OUT, for data_prefix: OUT) gets the number of files actually in the folder, checked to run
without gaps from the start index. Videos that fail are written with their reasons to
FRAME_LIST.failed.txt, left out of the list, and make the exit status 1.
--short-size resizes with the pipeline's filter (PIL's bilinear, antialiased when shrinking).
"""
import argparse
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from prep_utils import (RELATIVE_HELP, join, list_path, parallel_map, read_list,  # noqa: E402
                        write_lines)


def count_frames(folder, suffix, start):
    """Number of consecutive frames from `start`; raises ValueError if other numbered files exist."""
    names = set(os.listdir(folder))
    n = 0
    while suffix.format(start + n) in names:
        n += 1
    extra = len([x for x in names if not x.startswith(".")]) - n
    if extra:
        raise ValueError(f"{folder}: {n} consecutive frames from {start}, but {extra} other file(s)")
    return n


def short_side_size(w, h, short):
    """(width, height) with the short side at `short`, the other side scaled and rounded."""
    s = short / min(w, h)
    return int(round(w * s)), int(round(h * s))


def extract_one(job):
    """Extract one video; returns (rel_dir, count, label, error)."""
    import cv2
    from paddlevideo.loader.pipelines.resample import resize_frames
    src, rel_dir, label, out, suffix, start, short, quality = job
    final = os.path.join(out, rel_dir)
    if os.path.isdir(final):                       # done in an earlier run
        try:
            return rel_dir, count_frames(final, suffix, start), label, ""
        except ValueError as e:
            return rel_dir, 0, label, str(e)
    if os.path.isdir(src):
        return rel_dir, 0, label, f"{src}: is a folder, not a video (a frame list already?)"
    if not os.path.isfile(src):
        return rel_dir, 0, label, f"{src}: file not found"
    tmp = final + ".part"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    cap = cv2.VideoCapture(src)
    if not cap.isOpened():
        shutil.rmtree(tmp, ignore_errors=True)
        return rel_dir, 0, label, f"{src}: OpenCV cannot open it as a video"
    n = 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        if short:
            ow, oh = short_side_size(frame.shape[1], frame.shape[0], short)
            frame = resize_frames(frame[None], ow, oh)[0]
        if not cv2.imwrite(os.path.join(tmp, suffix.format(start + n)), frame,
                           [cv2.IMWRITE_JPEG_QUALITY, quality]):
            shutil.rmtree(tmp, ignore_errors=True)
            return rel_dir, 0, label, f"{src}: cannot write frame {n} to {tmp}"
        n += 1
    cap.release()
    if n == 0:
        shutil.rmtree(tmp, ignore_errors=True)
        return rel_dir, 0, label, f"{src}: no frame could be decoded"
    os.makedirs(os.path.dirname(final) or ".", exist_ok=True)
    os.rename(tmp, final)
    return rel_dir, count_frames(final, suffix, start), label, ""


def folder_names(paths, prefix):
    """Frame-folder names (relative, no extension) for the videos `paths` (as joined to prefix)."""
    full = [os.path.abspath(p) for p in paths]
    if prefix:
        root = os.path.abspath(prefix)
    else:
        root = os.path.commonpath([os.path.dirname(p) for p in full]) if full else ""
    names = []
    for p in full:
        rel = os.path.relpath(p, root) if root else os.path.basename(p)
        if rel == os.pardir or rel.startswith(os.pardir + os.sep):   # not under the root
            rel = os.path.basename(p)
        names.append(os.path.splitext(rel)[0].replace(os.sep, "/"))
    return names


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--list", required=True, help="video list (`path LABEL`)")
    ap.add_argument("--prefix", default="", help="the video folder: relative paths of the list start "
                    "there, and frame folders are named after the videos' paths under it")
    ap.add_argument("--out", required=True, help="root folder for the frame folders")
    ap.add_argument("--frame-list", required=True, help="frame list to write (`dir NUM LABEL`)")
    ap.add_argument("--suffix", default="img_{:05}.jpg", help="frame-name template (img_{:05}.jpg)")
    ap.add_argument("--start-index", type=int, default=1, help="number of the first frame (1)")
    ap.add_argument("--short-size", type=int, default=0, help="resize the short side (0: keep)")
    ap.add_argument("--quality", type=int, default=95, help="JPEG quality (95)")
    ap.add_argument("--relative", action="store_true", help=RELATIVE_HELP)
    ap.add_argument("-j", "--workers", type=int, default=os.cpu_count() or 1, help="processes")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    a = ap.parse_args(argv)
    rows = read_list(a.list)
    bad_rows = [n for n, _, fields, _ in rows if len(fields) != 1]
    if bad_rows:
        raise SystemExit(f"error: {a.list}:{bad_rows[0]}: this is a frame list (`dir NUM_FRAMES "
                         f"LABEL`); --list takes a video list (`path LABEL`)")
    paths = [join(a.prefix, path) for _, path, _, _ in rows]
    names = folder_names(paths, a.prefix)
    seen = set()
    dup = next((x for x in names if x in seen or seen.add(x)), None)
    if dup is not None:
        raise SystemExit(f"error: two videos of {a.list} would share the frame folder {dup!r}; "
                         f"give --prefix, the folder the videos' paths start from")
    jobs = [(src, name, fields[-1], a.out, a.suffix, a.start_index, a.short_size, a.quality)
            for src, name, (_, _, fields, _) in zip(paths, names, rows)]
    import paddlevideo.loader.pipelines.resample  # noqa: F401  (once, before the workers fork)
    results = parallel_map(extract_one, jobs, a.workers, "extracting", a.quiet)
    good = [f"{list_path(os.path.join(a.out, d), a.out, a.relative)} {c} {lab}"
            for d, c, lab, err in results if not err]
    bad = [f"{d}\t{err}" for d, c, lab, err in results if err]
    write_lines(a.frame_list, good)
    failed_path = a.frame_list + ".failed.txt"
    if bad:
        write_lines(failed_path, bad)
    elif os.path.isfile(failed_path):
        os.remove(failed_path)
    print(f"{len(good)} videos extracted to {a.out}, list {a.frame_list}; {len(bad)} failed"
          + (f" (see {failed_path})" if bad else ""))
    return 0 if not bad else 1


if __name__ == "__main__":
    sys.exit(main())
