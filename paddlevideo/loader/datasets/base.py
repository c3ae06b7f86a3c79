"""Shared parts of the datasets: list reading and checking, loading one sample, failure reasons."""
import logging
import os
from typing import Literal

import numpy as np

from ...utils.typecheck import Classes
from ..decoders import DecodeError
from ..pipelines.compose import Compose

__all__ = ["ListError", "SampleError", "BaseDataset", "Entry"]

logger = logging.getLogger("paddlevideo.loader")
_SHOW = 20


class ListError(ValueError):
    """A list file with unreadable lines, bad labels or missing files; names every bad line."""


class SampleError(RuntimeError):
    """One sample could not be loaded; `index`, `path` and `reason` say which and why."""

    def __init__(self, index, path, reason):
        super().__init__(f"sample {index} ({path}): {reason}")
        self.index, self.path, self.reason = index, path, reason


class Entry:
    """One line of a list: where it was, the file or folder, the label and (frames) the count."""

    __slots__ = ("line", "path", "label", "frames_len")

    def __init__(self, line, path, label, frames_len=None):
        self.line, self.path, self.label, self.frames_len = line, path, label, frames_len

    def __repr__(self):
        return f"Entry(line={self.line}, path={self.path!r}, label={self.label})"


def _report(file_path, problems, what):
    shown = "\n".join(f"  {file_path}:{line}: {msg}" for line, msg in problems[:_SHOW])
    more = f"\n  ... and {len(problems) - _SHOW} more" if len(problems) > _SHOW else ""
    return f"{file_path}: {len(problems)} {what}:\n{shown}{more}"


class BaseDataset:
    """A list of samples and the pipeline that turns one of them into (imgs, label).

    Subclasses parse their list format (`parse_line`) and say how a sample starts its pipeline
    (`results_for`). The list is checked when it loads: unreadable lines and labels outside
    [0, num_classes) are always errors; missing files (and, for frames, counts that disagree with
    the folder) are errors unless `missing: skip`, which drops those lines with a logged warning.
    """

    kind = "video"
    decoder = "VideoDecoder"

    def __init__(self, file_path: str, pipeline: dict | list | Compose,
                 mode: Literal["train", "valid", "test"] = "train", data_prefix: str | None = "",
                 num_classes: Classes | None = None, check_files: bool = True,
                 missing: Literal["error", "skip"] = "error"):
        if missing not in ("error", "skip"):
            raise ValueError(f"{type(self).__name__}: missing must be 'error' or 'skip', got "
                             f"{missing!r}.")
        self.file_path = str(file_path)
        self.mode = mode
        self.data_prefix = data_prefix or ""
        self.num_classes = None if num_classes is None else int(num_classes)
        self.pipeline = pipeline if isinstance(pipeline, Compose) else Compose(pipeline)
        first = type(self.pipeline.ops[0]).__name__ if self.pipeline.ops else None
        if first in ("VideoDecoder", "FrameDecoder") and first != self.decoder:
            raise ValueError(f"{type(self).__name__} ({self.file_path}) needs `decode: {{name: "
                             f"{self.decoder}}}` in PIPELINE.{mode}, not {first}.")
        self.num_seg = self.pipeline.num_seg
        self.num_views = self.pipeline.num_views
        self.seed, self.epoch = 0, 0
        self.skipped = []          # (line, path, reason) of lines dropped by `missing: skip`
        self.entries = self._load(check_files, missing)

    # ----- list reading -------------------------------------------------------------------
    def _join(self, path):
        return path if os.path.isabs(path) or not self.data_prefix else os.path.join(
            self.data_prefix, path)

    def parse_line(self, text):
        """(path, label, frames_len or None) from one line; raise ValueError saying what is wrong."""
        raise NotImplementedError

    def check_entry(self, entry):
        """'' if the entry's file(s) look right on disk, else why not."""
        raise NotImplementedError

    def wrong_kind(self, entry):
        """'' unless the entry is the other kind of data (a frame folder in a video list, a video
        in a frame list), which no `missing:` setting should skip: the config is wrong."""
        return ""

    def _load(self, check_files, missing):
        if not os.path.isfile(self.file_path):
            raise ListError(f"list file not found: {self.file_path} (DATASET.{self.mode}.file_path); "
                            f"write it with a tool in data/ or fix the path.")
        entries, bad = [], []
        with open(self.file_path, encoding="utf-8", errors="replace") as f:
            for n, raw in enumerate(f, 1):
                text = raw.strip()
                if not text or text.startswith("#"):
                    continue
                try:
                    path, label, count = self.parse_line(text)
                except ValueError as e:
                    bad.append((n, f"{e} (line: {text!r})"))
                    continue
                if label < 0 or (self.num_classes is not None and label >= self.num_classes):
                    limit = f"0..{self.num_classes - 1}" if self.num_classes else ">= 0"
                    bad.append((n, f"label {label} is out of range {limit}"))
                    continue
                entries.append(Entry(n, self._join(path), label, count))
        if bad:
            raise ListError(_report(self.file_path, bad, "bad line(s)") +
                            f"\nFix these lines; the format is {self.format_help}.")
        if not entries:
            raise ListError(f"{self.file_path}: the list has no samples.")
        if check_files:
            wrong = [(e, why) for e, why in ((e, self.wrong_kind(e)) for e in entries) if why]
            if wrong:
                e, why = wrong[0]
                raise ListError(f"{self.file_path}:{e.line}: {why}" +
                                (f" ({len(wrong)} of {len(entries)} lines are like this)"
                                 if len(wrong) > 1 else ""))
            missing_lines = []
            for e in entries:
                why = self.check_entry(e)
                if why:
                    missing_lines.append((e, why))
            if missing_lines and missing == "error":
                raise ListError(_report(self.file_path, [(e.line, w) for e, w in missing_lines],
                                        "line(s) whose files are missing or do not match") +
                                "\nFix the data_prefix or the list (data/check_videos.py writes a "
                                "clean list), or set `missing: skip` in the DATASET section to drop "
                                "these lines.")
            if missing_lines:
                drop = {id(e) for e, _ in missing_lines}
                self.skipped = [(e.line, e.path, w) for e, w in missing_lines]
                entries = [e for e in entries if id(e) not in drop]
                logger.warning(_report(self.file_path, [(e.line, w) for e, w in missing_lines],
                                       "line(s) skipped (missing: skip)"))
                if not entries:
                    raise ListError(f"{self.file_path}: every line was skipped; check data_prefix.")
        return entries

    # ----- samples ------------------------------------------------------------------------
    def __len__(self):
        return len(self.entries)

    def path(self, i):
        """The video file or frame folder of sample i."""
        return self.entries[i].path

    def label(self, i):
        return self.entries[i].label

    def results_for(self, entry):
        raise NotImplementedError

    def load(self, i, rng=None):
        """(imgs float32 [V*T, 3, H, W], label int64) of sample i; SampleError if it cannot load."""
        entry = self.entries[i]
        results = self.results_for(entry)
        results["rng"] = rng if rng is not None else np.random.default_rng([self.seed, self.epoch, i])
        try:
            results = self.pipeline(results)
        except (DecodeError, SampleError) as e:
            reason = str(e)
            if reason.startswith(entry.path + ": "):
                reason = reason[len(entry.path) + 2:]
            raise SampleError(i, entry.path, reason) from None
        except Exception as e:   # a broken file can make any op fail; report it, never hide it
            raise SampleError(i, entry.path, f"{type(e).__name__}: {e}") from None
        finally:
            reader = results.get("reader")
            if reader is not None:
                reader.close()
        imgs = results["imgs"]
        if not (isinstance(imgs, np.ndarray) and imgs.dtype == np.float32 and imgs.ndim == 4):
            raise SampleError(i, entry.path, f"the pipeline gave {type(imgs).__name__} "
                              f"{getattr(imgs, 'shape', '')} {getattr(imgs, 'dtype', '')}; end the "
                              f"transform list with Image2Array and Normalization.")
        return imgs, np.int64(entry.label)

    def __getitem__(self, i):
        return self.load(i)

    def failure_reason(self, i):
        """Why sample i fails to load, recomputed here ('' if it loads now)."""
        try:
            self.load(i)
        except SampleError as e:
            return e.reason
        return ""

    def __repr__(self):
        return (f"{type(self).__name__}({self.file_path!r}, {len(self)} samples, mode={self.mode}, "
                f"{self.pipeline})")
