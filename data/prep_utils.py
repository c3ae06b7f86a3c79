"""Helpers shared by the preparation tools in data/: a progress bar, a parallel map, list I/O."""
import os
import sys
import time
from multiprocessing import get_context

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:            # so `python data/tool.py` can import paddlevideo
    sys.path.insert(0, ROOT)


class Progress:
    """A plain text progress bar on stderr (no extra package needed)."""

    def __init__(self, total, what, quiet=False):
        self.total, self.what, self.n, self.t0 = max(int(total), 1), what, 0, time.time()
        self.quiet = quiet
        self._last = -1

    def update(self, k=1):
        self.n += k
        if self.quiet:
            return
        done = int(30 * self.n / self.total)
        if done != self._last or self.n >= self.total:
            self._last = done
            rate = self.n / max(time.time() - self.t0, 1e-9)
            sys.stderr.write(f"\r{self.what} [{'#' * done}{'.' * (30 - done)}] {self.n}/{self.total} "
                             f"{rate:.1f}/s")
            if self.n >= self.total:
                sys.stderr.write("\n")
            sys.stderr.flush()


def parallel_map(fn, items, workers=1, what="working", quiet=False):
    """[fn(x) for x in items] with a progress bar, in `workers` processes when > 1 (order kept)."""
    items = list(items)
    bar = Progress(len(items), what, quiet)
    out = []
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


def write_lines(path, lines):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write("".join(line + "\n" for line in lines))
    return path


def read_list(path):
    """(line_no, path, fields) for each non-empty line of a video list (`path LABEL`) or frame list
    (`dir NUM LABEL`); the format is told by the last two fields being integers."""
    rows = []
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
                    raise SystemExit(f"{path}:{n}: expected `path LABEL` or `dir NUM_FRAMES LABEL`, "
                                     f"got {text!r}")
                rows.append((n, p[0], [int(p[1])], text))
    return rows


def join(prefix, path):
    return path if os.path.isabs(path) or not prefix else os.path.join(prefix, path)
