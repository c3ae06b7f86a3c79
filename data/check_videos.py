#!/usr/bin/env python
"""Find the files of a list that do not load: a parallel decode check with reasons and a clean list.

    python data/check_videos.py --list data/k400/train.list --prefix k400/train -j 2
    python data/check_videos.py --list frames.txt --prefix frames --all-frames

For each line the file is opened with the chosen backend and the frames a test pass would use
(--num-seg segment centres) plus the last frame are decoded (--all-frames: every frame; frame lists:
every file is checked to exist). Writes LIST.bad.txt (`LINE<TAB>path<TAB>reason`) and LIST.clean
(the good lines, unchanged), and prints a summary. Exit status 1 when any file is bad.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from prep_utils import join, parallel_map, read_list, write_lines  # noqa: E402


def check_one(job):
    """'' if the file loads, else the reason."""
    from paddlevideo.loader.decoders import DecodeError, FrameFolderReader, open_video
    from paddlevideo.loader.pipelines.sample import segment_indices
    path, fields, backend, num_seg, all_frames, suffix, start, min_frames = job
    try:
        if fields:                                 # frame folder: fields = [NUM_FRAMES]
            reader = FrameFolderReader(path, fields[0], suffix, start)
            for i in range(reader.num_frames):
                if not os.path.isfile(reader.file(i)):
                    return f"frame {i} ({reader.file(i)}) is missing; the list says {fields[0]}"
            if os.path.isfile(reader.file(reader.num_frames)):
                return f"the folder has more than the {fields[0]} frames the list says"
        else:
            reader = open_video(path, backend)
        n = reader.num_frames
        if n < min_frames:
            return f"only {n} frame(s), fewer than --min-frames {min_frames}"
        idx = list(range(n)) if all_frames else sorted(set(
            segment_indices(n, num_seg, train=False, select_left=True).tolist() + [n - 1]))
        for k in range(0, len(idx), 64):
            frames = reader.read(idx[k:k + 64])
            if frames.shape[1] < 2 or frames.shape[2] < 2:
                return f"frames are {frames.shape[2]}x{frames.shape[1]} pixels"
        reader.close()
    except DecodeError as e:
        msg = str(e)
        return msg[len(path) + 2:] if msg.startswith(path + ": ") else msg
    except Exception as e:
        return f"{type(e).__name__}: {e}"
    return ""


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--list", required=True, help="video list (`path LABEL`) or frame list")
    ap.add_argument("--prefix", default="", help="folder the list's relative paths start from")
    ap.add_argument("--backend", default="decord", choices=["decord", "cv2", "pyav"],
                    help="video decoder (decord)")
    ap.add_argument("--num-seg", type=int, default=8, help="segments whose frames are read (8)")
    ap.add_argument("--all-frames", action="store_true", help="decode every frame (slow, thorough)")
    ap.add_argument("--min-frames", type=int, default=1, help="fewer frames than this is bad (1)")
    ap.add_argument("--suffix", default="img_{:05}.jpg", help="frame-name template (frame lists)")
    ap.add_argument("--start-index", type=int, default=1, help="first frame number (frame lists)")
    ap.add_argument("--bad", default=None, help="where to write bad files (LIST.bad.txt)")
    ap.add_argument("--clean", default=None, help="where to write the clean list (LIST.clean)")
    ap.add_argument("-j", "--workers", type=int, default=os.cpu_count() or 1, help="processes")
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args(argv)
    rows = read_list(a.list)
    jobs = [(join(a.prefix, p), fields[:-1] if len(fields) == 2 else [], a.backend, a.num_seg,
             a.all_frames, a.suffix, a.start_index, a.min_frames) for _, p, fields, _ in rows]
    reasons = parallel_map(check_one, jobs, a.workers, "checking", a.quiet)
    bad = [f"{n}\t{p}\t{r}" for (n, p, _, _), r in zip(rows, reasons) if r]
    clean = [text for (_, _, _, text), r in zip(rows, reasons) if not r]
    bad_path, clean_path = a.bad or a.list + ".bad.txt", a.clean or a.list + ".clean"
    write_lines(bad_path, bad)
    write_lines(clean_path, clean)
    print(f"{len(rows)} checked: {len(clean)} good, {len(bad)} bad. Bad files with reasons: "
          f"{bad_path}; clean list: {clean_path}")
    for line in bad[:10]:
        print("  " + line.replace("\t", "  "))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
