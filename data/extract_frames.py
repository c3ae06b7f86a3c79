#!/usr/bin/env python
"""Videos to frame folders, in parallel and resumable, with a frame list whose counts are verified.

    python data/extract_frames.py --list data/ucf101/ucf101_train_split_1_videos.txt \
        --prefix UCF-101 --out data/ucf101/frames --frame-list data/ucf101/train_frames.txt -j 2

Each video `a/b.avi` becomes the folder OUT/a/b with `img_00001.jpg` ... (template --suffix,
numbering from --start-index). A folder is written under a temporary name and renamed when
complete, so an interrupted run resumes where it stopped and never leaves a half folder behind.
The frame list (`a/b NUM_FRAMES LABEL`, relative to OUT) gets the number of files actually in the
folder, checked to run without gaps from the start index. Videos that fail are written with their
reasons to FRAME_LIST.failed.txt and left out of the list.
"""
import argparse
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from prep_utils import join, parallel_map, read_list, write_lines  # noqa: E402


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


def extract_one(job):
    """Extract one video; returns (rel_dir, count, label, error)."""
    import cv2
    src, rel_dir, label, out, suffix, start, short, quality = job
    final = os.path.join(out, rel_dir)
    if os.path.isdir(final):                       # done in an earlier run
        try:
            return rel_dir, count_frames(final, suffix, start), label, ""
        except ValueError as e:
            return rel_dir, 0, label, str(e)
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
            h, w = frame.shape[:2]
            s = short / min(h, w)
            if s != 1:
                frame = cv2.resize(frame, (int(round(w * s)), int(round(h * s))),
                                   interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
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


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--list", required=True, help="video list (`path LABEL`)")
    ap.add_argument("--prefix", default="", help="folder the list's relative paths start from")
    ap.add_argument("--out", required=True, help="root folder for the frame folders")
    ap.add_argument("--frame-list", required=True, help="frame list to write (`dir NUM LABEL`)")
    ap.add_argument("--suffix", default="img_{:05}.jpg", help="frame-name template (img_{:05}.jpg)")
    ap.add_argument("--start-index", type=int, default=1, help="number of the first frame (1)")
    ap.add_argument("--short-size", type=int, default=0, help="resize the short side (0: keep)")
    ap.add_argument("--quality", type=int, default=95, help="JPEG quality (95)")
    ap.add_argument("-j", "--workers", type=int, default=os.cpu_count() or 1, help="processes")
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args(argv)
    jobs = []
    for n, path, fields, _ in read_list(a.list):
        rel_dir = os.path.splitext(path if not os.path.isabs(path) else os.path.basename(path))[0]
        jobs.append((join(a.prefix, path), rel_dir, fields[-1], a.out, a.suffix, a.start_index,
                     a.short_size, a.quality))
    results = parallel_map(extract_one, jobs, a.workers, "extracting", a.quiet)
    good = [f"{d} {c} {lab}" for d, c, lab, err in results if not err]
    bad = [f"{d}\t{err}" for d, c, lab, err in results if err]
    write_lines(a.frame_list, good)
    if bad:
        write_lines(a.frame_list + ".failed.txt", bad)
    print(f"{len(good)} videos extracted to {a.out}, list {a.frame_list}; {len(bad)} failed"
          + (f" (see {a.frame_list}.failed.txt)" if bad else ""))
    return 0 if not bad else 1


if __name__ == "__main__":
    sys.exit(main())
