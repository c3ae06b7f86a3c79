"""Decode ops: open a video or a frame folder lazily; the Sampler then reads only its frames."""
from typing import Literal

from ...utils.typecheck import Workers
from ..decoders import BACKENDS, FrameFolderReader, open_video
from ..registry import PIPELINES

__all__ = ["VideoDecoder", "FrameDecoder"]


@PIPELINES.register()
class VideoDecoder:
    """Open a video file with the chosen backend ('decord' default, 'cv2' or 'pyav').

    Input keys: `filename`. Output keys: `reader` (an open reader), `frames_len`, `backend`.
    Nothing is decoded here; `Sampler` decodes only the frames it picks. `verify_length` (decord)
    fails files that hold far fewer frames than their container declares (truncated files).
    """

    def __init__(self, backend: Literal["decord", "cv2", "pyav", "opencv", "av"] = "decord",
                 num_threads: Workers = 1, verify_length: bool = True):
        name = {"opencv": "cv2", "av": "pyav"}.get(backend, backend)
        if name not in BACKENDS:
            raise ValueError(f"VideoDecoder: unknown backend '{backend}'; choose one of "
                             f"{', '.join(BACKENDS)}.")
        self.backend = name
        self.num_threads = num_threads
        self.verify_length = bool(verify_length)

    def __call__(self, results):
        reader = open_video(results["filename"], self.backend, self.num_threads, self.verify_length)
        results["reader"] = reader
        results["frames_len"] = reader.num_frames
        results["backend"] = self.backend
        return results


@PIPELINES.register()
class FrameDecoder:
    """Open a folder of frames named by a template (read with OpenCV when sampled).

    Input keys: `frame_dir`, `frames_len`, optional `suffix` (default 'img_{:05}.jpg') and
    `start_index` (default 1). Output keys: `reader`, `backend`.
    """

    def __init__(self, suffix: str | None = None, start_index: int | None = None):
        self.suffix = suffix
        self.start_index = start_index

    def __call__(self, results):
        suffix = results.get("suffix") or self.suffix or "img_{:05}.jpg"
        start = results.get("start_index", self.start_index)
        start = 1 if start is None else start
        results["reader"] = FrameFolderReader(results["frame_dir"], results["frames_len"], suffix, start)
        results["backend"] = "frames"
        return results
