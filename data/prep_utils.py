"""Helpers shared by the preparation tools in data/: progress, a parallel map, list I/O, how
paths are written into lists."""
import os
import sys
from multiprocessing import get_context

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:            # so `python data/tool.py` can import paddlevideo
    sys.path.insert(0, ROOT)

RELATIVE_HELP = ("write paths relative to the video (or frame) folder, PaddleVideo's form, for "
                 "configs whose data_prefix is that folder (default: absolute paths, which the "
                 "shipped configs read with data_prefix '')")


def progress(total, what, quiet=False):
    """A tqdm bar on stderr when it is a terminal; nothing in a log file or with `quiet`.

    Use as `bar = progress(n, 'checking'); bar.update(); bar.close()`."""
    from tqdm import tqdm
    return tqdm(total=total, desc=what, unit="file", dynamic_ncols=True, leave=False,
                disable=quiet or not sys.stderr.isatty())


def parallel_map(fn, items, workers=1, what="working", quiet=False):
    """[fn(x) for x in items] with progress, in `workers` processes when > 1 (order kept)."""
    items = list(items)
    bar = progress(len(items), what, quiet)
    out = []
    try:
        if workers <= 1 or len(items) <= 1:
            for x in items:
                out.append(fn(x))
                bar.update()
            return out
        with get_context("fork").Pool(workers) as pool:
            for r in pool.imap(fn, items, chunksize=1):
                out.append(r)
                bar.update()
        return out
    finally:
        bar.close()


def list_path(path, root, relative):
    """How a file or folder under `root` is written into a list: absolute (default), or relative
    to `root` with `relative` (forward slashes either way)."""
    if relative:
        return os.path.relpath(path, root).replace(os.sep, "/")
    return os.path.abspath(path).replace(os.sep, "/")


def write_lines(path, lines):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write("".join(line + "\n" for line in lines))
    return path


def write_missing(path, missing):
    """Write the clips that are not on disk to `path`, or, when none is missing, remove the file
    an earlier run may have left there. Returns ' (listed in PATH)' for the summary line, or ''."""
    if missing:
        write_lines(path, missing)
        return f" (listed in {path})"
    if os.path.isfile(path):
        os.remove(path)
    return ""


def read_list(path):
    """(line_no, path, fields, text) for each non-empty line of a video list (`path LABEL`) or
    frame list (`dir NUM LABEL`); the format is told by the last two fields being integers."""
    rows = []
    if not os.path.isfile(path):
        raise SystemExit(f"error: list file not found: {path}")
    with open(path, encoding="utf-8") as f:
        for n, raw in enumerate(f, 1):
            text = raw.strip()
            if not text or text.startswith("#"):
                continue
            parts = text.rsplit(None, 2)
            if len(parts) == 3 and parts[1].lstrip("-").isdigit() and parts[2].lstrip("-").isdigit():
                rows.append((n, parts[0], [int(parts[1]), int(parts[2])], text))
            else:
                p = text.rsplit(None, 1)
                if len(p) != 2 or not p[1].lstrip("-").isdigit():
                    raise SystemExit(f"error: {path}:{n}: expected `path LABEL` or `dir NUM_FRAMES "
                                     f"LABEL`, got {text!r}")
                rows.append((n, p[0], [int(p[1])], text))
    return rows


def join(prefix, path):
    return path if os.path.isabs(path) or not prefix else os.path.join(prefix, path)
