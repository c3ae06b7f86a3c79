"""FrameDataset: a list of `frame_dir NUM_FRAMES LABEL` lines, one folder of images each."""
import os
from typing import Literal

from ...utils.typecheck import Classes, Count
from ..pipelines.compose import Compose
from ..registry import DATASETS
from .base import BaseDataset

__all__ = ["FrameDataset"]


@DATASETS.register()
class FrameDataset(BaseDataset):
    """Frame folders listed as `frame_dir NUM_FRAMES LABEL`.

    Frame i (0-based) is the file `suffix.format(start_index + i)` in the folder; PaddleVideo's
    layout is `img_{:05}.jpg` from 1, which is the default. When the list is checked, the first
    and last frames the count implies must exist and the next one must not, so an off-by-one
    between the count and the start index is reported at load, with its line.
    """

    format_help = "`frame_dir NUM_FRAMES LABEL` with integers for NUM_FRAMES and LABEL"
    kind = "frames"
    decoder = "FrameDecoder"

    def __init__(self, file_path: str, pipeline: dict | list | Compose,
                 mode: Literal["train", "valid", "test"] = "train", data_prefix: str | None = "",
                 suffix: str = "img_{:05}.jpg", start_index: Count = 1,
                 num_classes: Classes | None = None, check_files: bool = True,
                 missing: Literal["error", "skip"] = "error"):
        try:
            suffix.format(1)
        except (IndexError, KeyError, ValueError, AttributeError) as e:
            raise ValueError(f"FrameDataset: suffix {suffix!r} is not a frame-name template like "
                             f"'img_{{:05}}.jpg' ({e}).") from None
        self.suffix, self.start_index = suffix, int(start_index)
        super().__init__(file_path, pipeline, mode, data_prefix, num_classes, check_files, missing)

    def parse_line(self, text):
        parts = text.rsplit(None, 2)
        video_hint = ("; `path LABEL` is a video list's line: use a videos config (DATASET "
                      "format: VideoDataset, PIPELINE decode: VideoDecoder)")
        if len(parts) != 3:
            raise ValueError(f"expected `frame_dir NUM_FRAMES LABEL`, found {len(parts)} field(s)"
                             + (video_hint if len(parts) == 2 else ""))
        try:
            count, label = int(parts[1]), int(parts[2])
        except ValueError:
            looks_video = not parts[1].lstrip("-").isdigit() and parts[2].lstrip("-").isdigit()
            raise ValueError(f"NUM_FRAMES {parts[1]!r} and LABEL {parts[2]!r} must be integers"
                             + (video_hint if looks_video else "")) from None
        if count <= 0:
            raise ValueError(f"NUM_FRAMES is {count}; a folder needs at least one frame")
        return parts[0], label, count

    def _frame(self, entry, i):
        return os.path.join(entry.path, self.suffix.format(self.start_index + i))

    def wrong_kind(self, entry):
        if os.path.isfile(entry.path):
            return (f"{entry.path} is a file, not a frame folder: this is a video list. Use a "
                    f"videos config (DATASET format: VideoDataset, PIPELINE decode: VideoDecoder, "
                    f"as in configs/recognition/tsm/tsm_*_videos.yaml), or a list of frame folders.")
        return ""

    def check_entry(self, entry):
        if not os.path.isdir(entry.path):
            return f"frame folder not found: {entry.path}"
        n = entry.frames_len
        first, last, after = self._frame(entry, 0), self._frame(entry, n - 1), self._frame(entry, n)
        if not os.path.isfile(first):
            return (f"the list says {n} frames from index {self.start_index}, but the first, "
                    f"{first}, is missing (check start_index and suffix)")
        if not os.path.isfile(last):
            return (f"the list says {n} frames, but the last, {last}, is missing (the folder has "
                    f"fewer frames, or start_index is off by one)")
        if os.path.isfile(after):
            return (f"the list says {n} frames, but {after} exists too (the folder has more "
                    f"frames, or start_index is off by one)")
        return ""

    def results_for(self, entry):
        return {"frame_dir": entry.path, "frames_len": entry.frames_len, "suffix": self.suffix,
                "start_index": self.start_index, "label": entry.label}
