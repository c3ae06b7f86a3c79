"""What predict and int8 calibration read: inputs named on the command line, and their clips.

    items = collect_inputs(["videos/", "more/*.mp4", "list.txt"], prefix="/data/k400")
    make_clip = ClipMaker(info["PIPELINE"], info["frames"])
    imgs, frames = make_clip(items[0])         # float32 [T, 3, S, S], frames in the input

An input is a video file or a frame folder (numbered images as data/extract_frames.py writes
them). A folder is searched recursively (class subfolders) for videos and frame folders; a glob is
expanded; a list file (.txt/.list/.csv) names one input per line, in PaddleVideo's list formats.
Each kind is decoded by its own decoder and then goes through the model's own sample and
transform ops, so a model exported from a frames config also predicts on videos and vice versa.
"""
import glob
import logging
import os

import numpy as np

from .errors import DeployError, first_line

__all__ = ["VIDEO_EXTENSIONS", "LIST_EXTENSIONS", "DEFAULT_FRAMES", "Input", "collect_inputs",
           "count_frames", "ClipMaker", "ArrayReader"]

logger = logging.getLogger("paddlevideo")

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".flv", ".m4v", ".mpg", ".mpeg",
                    ".wmv", ".3gp")
LIST_EXTENSIONS = (".txt", ".list", ".csv")
DEFAULT_FRAMES = {"suffix": "img_{:05}.jpg", "start_index": 1}      # data/extract_frames.py's


class Input:
    """One thing to predict: `path`, `kind` ('video' or 'frames'), `frames_len` when a frame
    list gave it."""

    __slots__ = ("path", "kind", "frames_len")

    def __init__(self, path, kind="video", frames_len=None):
        self.path, self.kind, self.frames_len = path, kind, frames_len

    def __repr__(self):
        return f"Input({self.path!r}, {self.kind})"

    def __eq__(self, other):
        return isinstance(other, Input) and (self.path, self.kind, self.frames_len) == (
            other.path, other.kind, other.frames_len)


def _is_frame_folder(path, frames):
    return os.path.isfile(os.path.join(path, frames["suffix"].format(frames["start_index"])))


def count_frames(folder, frames=None):
    """Number of consecutive frames from the first one (suffix, start_index)."""
    frames = frames or DEFAULT_FRAMES
    names = set(os.listdir(folder))
    n = 0
    while frames["suffix"].format(frames["start_index"] + n) in names:
        n += 1
    return n


def _search(folder, frames):
    """Videos and frame folders under `folder`, recursively, in sorted order."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        if root != folder and _is_frame_folder(root, frames):
            found.append(Input(root, "frames"))
            dirs[:] = []                      # a frame folder's subfolders are not inputs
            continue
        found.extend(Input(os.path.join(root, f)) for f in files
                     if f.lower().endswith(VIDEO_EXTENSIONS))
    return sorted(found, key=lambda item: item.path)


def _expand(path, frames):
    if os.path.isdir(path):
        if _is_frame_folder(path, frames):
            return [Input(path, "frames")]
        found = _search(path, frames)
        if not found:
            raise DeployError(f"no videos ({', '.join(VIDEO_EXTENSIONS)}) or frame folders "
                              f"({frames['suffix'].format(frames['start_index'])}, ...) in "
                              f"{path} or its subfolders")
        return found
    return [Input(path)]         # a video; a missing one is reported as a failed input


def _list_entry(text, resolve, is_csv):
    """An Input for one list line. Lines are PaddleVideo's `PATH LABEL` (videos), `FOLDER
    NUM_FRAMES LABEL` (frames) or a bare path; paths may hold spaces (the numbers are the last
    fields), .csv lines are `PATH,...`."""
    if is_csv:
        text = text.split(",")[0].strip()
    whole = resolve(text)
    if os.path.exists(whole):
        return Input(whole, "frames" if os.path.isdir(whole) else "video")
    parts = text.rsplit(None, 2)
    if len(parts) == 3 and parts[1].isdigit() and parts[2].lstrip("-").isdigit() \
            and os.path.isdir(resolve(parts[0])):
        return Input(resolve(parts[0]), "frames", int(parts[1]))
    parts = text.rsplit(None, 1)
    if len(parts) == 2 and parts[1].lstrip("-").isdigit():
        path = resolve(parts[0])
        return Input(path, "frames" if os.path.isdir(path) else "video")
    return Input(whole)


def _read_list(source, prefix):
    if not os.path.isfile(source):
        raise DeployError(f"list file not found: {source}")
    base = os.path.dirname(os.path.abspath(source))

    def resolve(path):
        if os.path.isabs(path):
            return path
        if prefix is not None:
            return os.path.join(prefix, path)
        return path if os.path.exists(path) else os.path.join(base, path)

    items = []
    with open(source, encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                items.append(_list_entry(line, resolve, source.lower().endswith(".csv")))
    if not items:
        raise DeployError(f"list file {source} names no inputs")
    return items


def collect_inputs(sources, prefix=None, frames=None):
    """Inputs named by `sources` (a string or a list of them), in order: a video, a frame
    folder, a folder to search recursively, a glob (`'videos/**/*.mp4'`), or a list file whose
    relative paths start from `prefix` (default: the current folder, else the list's folder)."""
    frames = frames or DEFAULT_FRAMES
    if prefix is not None and not os.path.isdir(prefix):
        raise DeployError(f"--prefix folder not found: {prefix}")
    items = []
    for source in [sources] if isinstance(sources, str) else list(sources):
        source = str(source)
        if not os.path.exists(source) and glob.has_magic(source):
            matches = sorted(glob.glob(source, recursive=True))
            if not matches:
                raise DeployError(f"nothing matches {source}")
            for match in matches:
                if os.path.isdir(match) or match.lower().endswith(VIDEO_EXTENSIONS):
                    items.extend(_expand(match, frames))
        elif source.lower().endswith(LIST_EXTENSIONS):
            items.extend(_read_list(source, prefix))
        else:
            items.extend(_expand(source, frames))
    if not items:
        raise DeployError(f"no videos or frame folders in {', '.join(map(str, sources))}")
    return items


def _with_decoder(pipeline, decoder):
    """A copy of the test pipeline whose decode step is `decoder` (VideoDecoder/FrameDecoder):
    the recorded one when it is already that kind, else a default one."""
    decode = dict(pipeline.get("decode") or {})
    if decode.get("name") != decoder:
        decode = {"name": decoder}
    return {"decode": decode, "sample": pipeline.get("sample"),
            "transform": pipeline.get("transform")}


class ArrayReader:
    """A decoded clip (uint8 [T, H, W, 3] RGB) as the Sampler's reader: `read(indices)`."""

    def __init__(self, frames, name="<array>"):
        frames = np.asarray(frames)
        if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
            raise DeployError(f"{name}: a decoded clip must be uint8 [T, H, W, 3] RGB, got "
                              f"{frames.dtype} {list(frames.shape)}")
        if frames.shape[0] == 0 or frames.shape[1] == 0 or frames.shape[2] == 0:
            raise DeployError(f"{name}: the clip has no frames (shape {list(frames.shape)})")
        self.path, self.frames, self.num_frames = name, frames, int(frames.shape[0])

    def read(self, indices):
        return self.frames[np.asarray(indices, dtype=np.int64).reshape(-1)]

    def close(self):
        pass


class ClipMaker:
    """An Input -> (clip float32 [T, 3, S, S], number of frames in the input), through the
    model's test pipeline (sample + transform) after the input kind's own decoder, run by the
    loader's Compose exactly as `main.py --test` runs it."""

    def __init__(self, pipeline, frames=None):
        from ..loader import Compose
        if not pipeline or not pipeline.get("sample"):
            raise DeployError("the model's test pipeline (PIPELINE.test with decode, sample and "
                              "transform) is unknown; pass the training config with -c.")
        self.frames = dict(DEFAULT_FRAMES, **(frames or {}))
        try:
            self._compose = {"video": Compose(_with_decoder(pipeline, "VideoDecoder")),
                             "frames": Compose(_with_decoder(pipeline, "FrameDecoder")),
                             "array": Compose({"sample": pipeline.get("sample"),
                                               "transform": pipeline.get("transform")})}
        except Exception as e:
            raise DeployError(f"the test pipeline cannot be built: {first_line(e)}") from None

    def from_array(self, frames, name="<array>"):
        """(clip, frames) for a decoded clip (uint8 [T, H, W, 3] RGB): the same sample and
        transform steps as a video's, without decoding."""
        reader = ArrayReader(frames, name)
        results = {"rng": np.random.default_rng(0), "reader": reader,
                   "frames_len": reader.num_frames, "backend": "array"}
        try:
            out = self._compose["array"](results)
        except Exception as e:
            raise DeployError(f"{name}: {first_line(e)}") from None
        return np.asarray(out["imgs"], dtype=np.float32), reader.num_frames

    def __call__(self, item):
        if isinstance(item, str):
            item = Input(item, "frames" if os.path.isdir(item) else "video")
        if not os.path.exists(item.path):
            raise DeployError(f"{item.path}: not found")
        results = {"rng": np.random.default_rng(0)}
        if item.kind == "frames":
            count = item.frames_len if item.frames_len is not None else count_frames(
                item.path, self.frames)
            if count == 0:
                raise DeployError(f"{item.path}: no frame "
                                  f"{self.frames['suffix'].format(self.frames['start_index'])}")
            results.update(frame_dir=item.path, frames_len=count, **self.frames)
        else:
            results["filename"] = item.path
        try:
            out = self._compose[item.kind](results)
        except DeployError:
            raise
        except Exception as e:          # DecodeError and friends carry a readable message
            msg = first_line(e)
            raise DeployError(msg if item.path in msg else f"{item.path}: {msg}") from None
        return np.asarray(out["imgs"], dtype=np.float32), int(out.get("frames_len") or 0)
