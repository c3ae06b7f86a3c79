"""VideoDataset: a list of `path LABEL` lines, one video file each."""
import os

from ..registry import DATASETS
from .base import BaseDataset

__all__ = ["VideoDataset"]


@DATASETS.register()
class VideoDataset(BaseDataset):
    """Videos listed as `relative/or/absolute/path.mp4 LABEL` (paths may contain spaces).

    Relative paths are joined to `data_prefix`. See BaseDataset for the list checks and `missing`.
    """

    format_help = "`path/to/video.mp4 LABEL` with LABEL a 0-based integer"

    def parse_line(self, text):
        parts = text.rsplit(None, 1)
        if len(parts) != 2:
            raise ValueError("expected `path LABEL`, found one field")
        try:
            label = int(parts[1])
        except ValueError:
            raise ValueError(f"the label {parts[1]!r} is not an integer") from None
        return parts[0], label, None

    def wrong_kind(self, entry):
        folder, _, count = entry.path.rpartition(" ")
        if os.path.isdir(entry.path) or (count.isdigit() and os.path.isdir(folder)):
            where = entry.path if os.path.isdir(entry.path) else folder
            return (f"{where} is a folder, not a video file: this is a frame list. Use a frames "
                    f"config (DATASET format: FrameDataset, PIPELINE decode: FrameDecoder, as in "
                    f"configs/recognition/tsm/tsm_*_frames.yaml), or a list of videos.")
        return ""

    def check_entry(self, entry):
        if not os.path.isfile(entry.path):
            return f"file not found: {entry.path}"
        if os.path.getsize(entry.path) == 0:
            return f"empty file (0 bytes): {entry.path}"
        return ""

    def results_for(self, entry):
        return {"filename": entry.path, "label": entry.label}
