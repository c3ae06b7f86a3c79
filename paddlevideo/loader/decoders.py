"""Video and frame readers that decode only the frames asked for.

Three video backends share one small interface (`num_frames`, `read(indices)`, `close()`):
decord (the default), OpenCV and PyAV. Each library is imported only when its backend is used, so a
missing one is a clear error naming the package to install, and the others still work. Frame
folders are read with OpenCV. Every reader returns RGB uint8 arrays [N, H, W, 3].
"""
import importlib
import os

import numpy as np

__all__ = ["DecodeError", "BACKENDS", "open_video", "FrameFolderReader", "read_image"]

BACKENDS = ("decord", "cv2", "pyav")
_PACKAGES = {"decord": ("decord", "decord"), "cv2": ("cv2", "opencv-python-headless"),
             "pyav": ("av", "av")}
_ALIASES = {"opencv": "cv2", "av": "pyav"}


class DecodeError(RuntimeError):
    """A file that cannot be read as its list says; the message names the file and the reason."""


def _import(backend):
    module, package = _PACKAGES[backend]
    try:
        return importlib.import_module(module)
    except ImportError as e:
        others = ", ".join(b for b in BACKENDS if b != backend)
        raise ImportError(f"video backend '{backend}' needs the Python package '{package}', which is "
                          f"not installed ({e}). Install it with `pip install {package}`, or choose "
                          f"another backend ({others}) in the config, e.g. "
                          f"PIPELINE.train.decode.backend.") from None


def _check_indices(path, indices, num_frames):
    indices = np.asarray(indices, dtype=np.int64).reshape(-1)
    if num_frames <= 0:
        raise DecodeError(f"{path}: the video has no frames.")
    if indices.size and (indices.min() < 0 or indices.max() >= num_frames):
        raise DecodeError(f"{path}: frame indices {indices.min()}..{indices.max()} are outside the "
                          f"video's {num_frames} frames.")
    return indices


def _gather(path, wanted, frames):
    """Stack `frames` ({index: HxWx3}) in the order of `wanted`, checking that all sizes agree."""
    first = frames[int(wanted[0])]
    out = np.empty((len(wanted),) + first.shape, dtype=np.uint8)
    for k, idx in enumerate(wanted):
        frame = frames[int(idx)]
        if frame.shape != first.shape:
            raise DecodeError(f"{path}: frame {idx} is {frame.shape[1]}x{frame.shape[0]} but frame "
                              f"{wanted[0]} is {first.shape[1]}x{first.shape[0]}; frames of one video "
                              f"must have one size.")
        out[k] = frame
    return out


class _VideoReader:
    """Common part of the video readers: a path, a frame count and `read(indices)`."""

    backend = None

    def __init__(self, path):
        self.path = str(path)
        if not os.path.isfile(self.path):
            raise DecodeError(f"{self.path}: file not found.")
        if os.path.getsize(self.path) == 0:
            raise DecodeError(f"{self.path}: the file is empty (0 bytes).")
        self.num_frames = 0

    def read(self, indices):
        """Decode the frames at `indices` (any order, repeats allowed) as RGB uint8 [N, H, W, 3]."""
        indices = _check_indices(self.path, indices, self.num_frames)
        if indices.size == 0:
            raise DecodeError(f"{self.path}: no frame indices to read.")
        unique = np.unique(indices)
        try:
            frames = self._read_sorted(unique)
        except DecodeError:
            raise
        except Exception as e:  # decoder libraries raise their own types for broken streams
            raise DecodeError(f"{self.path}: {self.backend} failed to decode frames "
                              f"{unique.tolist()}: {type(e).__name__}: {e}") from None
        return _gather(self.path, indices, frames)

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class DecordReader(_VideoReader):
    """decord: random access by batch read (seeks to the nearest key frame, decodes forward)."""

    backend = "decord"

    def __init__(self, path, num_threads=1, verify_length=True):
        super().__init__(path)
        decord = _import("decord")
        try:
            self._vr = decord.VideoReader(self.path, num_threads=num_threads)
            self.num_frames = len(self._vr)
        except Exception as e:
            raise DecodeError(f"{self.path}: decord cannot open it as a video: "
                              f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
        if verify_length:
            self._verify_length()

    def _verify_length(self):
        """decord counts the frames it can find, so a truncated AVI looks like a shorter video.
        Compare with the count the container declares (read by OpenCV, about 1 ms) and fail."""
        try:
            cv2 = _import("cv2")
        except ImportError:
            return
        cap = cv2.VideoCapture(self.path)
        declared = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if cap.isOpened() else 0
        cap.release()
        if declared - self.num_frames > max(2, 0.05 * declared):
            raise DecodeError(f"{self.path}: the file declares {declared} frames but only "
                              f"{self.num_frames} can be found (truncated or damaged?).")

    def _read_sorted(self, unique):
        batch = self._vr.get_batch(unique.tolist()).asnumpy()
        if batch.ndim != 4 or batch.shape[0] != len(unique):
            raise DecodeError(f"{self.path}: decord returned {batch.shape} for {len(unique)} frames.")
        return {int(i): batch[k] for k, i in enumerate(unique)}

    def close(self):
        self._vr = None


class OpenCVReader(_VideoReader):
    """OpenCV: reads forward with grab() over short gaps and seeks over long ones."""

    backend = "cv2"
    seek_gap = 48   # frames; a shorter gap is cheaper to grab through than to seek over

    def __init__(self, path, num_threads=1):
        super().__init__(path)
        cv2 = _import("cv2")
        self._cv2 = cv2
        self._cap = cv2.VideoCapture(self.path)
        if not self._cap.isOpened():
            raise DecodeError(f"{self.path}: OpenCV cannot open it as a video (not a video, or an "
                              f"unsupported codec).")
        self.num_frames = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT))
        self._pos = 0

    def _read_sorted(self, unique):
        cv2, cap, frames = self._cv2, self._cap, {}
        for idx in unique.tolist():
            if idx < self._pos or idx - self._pos > self.seek_gap:
                cap.set(cv2.CAP_PROP_POS_FRAMES, idx)
                self._pos = idx
            while self._pos < idx:
                if not cap.grab():
                    raise DecodeError(f"{self.path}: OpenCV could not read frame {self._pos} of the "
                                      f"{self.num_frames} the file declares (truncated or damaged?).")
                self._pos += 1
            ok, frame = cap.read()
            if not ok or frame is None:
                raise DecodeError(f"{self.path}: OpenCV could not read frame {idx} of the "
                                  f"{self.num_frames} the file declares (truncated or damaged?).")
            self._pos += 1
            if frame.ndim == 2:
                frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB)
            else:
                frame = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            frames[idx] = frame
        return frames

    def close(self):
        if self._cap is not None:
            self._cap.release()
            self._cap = None


class PyAVReader(_VideoReader):
    """PyAV: demuxes and decodes forward, converting only the wanted frames; seeks over long gaps."""

    backend = "pyav"
    seek_gap = 48

    def __init__(self, path, num_threads=1):
        super().__init__(path)
        av = _import("pyav")
        try:
            self._container = av.open(self.path)
        except Exception as e:
            raise DecodeError(f"{self.path}: PyAV cannot open it as a video: {e}") from None
        if not self._container.streams.video:
            self._container.close()
            raise DecodeError(f"{self.path}: the file has no video stream.")
        self._stream = stream = self._container.streams.video[0]
        if num_threads and num_threads > 1:
            stream.thread_type = "AUTO"
        self._rate = stream.average_rate or stream.guessed_rate
        self._tb = stream.time_base
        self._start = stream.start_time or 0
        self._per_pts = float(self._tb * self._rate) if self._rate and self._tb else 0.0
        self.num_frames = int(stream.frames or 0)
        if self.num_frames <= 0:        # mkv/webm do not store a count: count packets (no decoding)
            self.num_frames = sum(1 for p in self._container.demux(stream) if p.size)
            self._container.seek(0, stream=stream)
        self._iter = None
        self._last = -1

    def _index(self, frame):
        if frame.pts is None or not self._per_pts:
            return self._last + 1
        return int(round((frame.pts - self._start) * self._per_pts))

    def _seek(self, idx):
        target = int(self._start + idx / (self._rate * self._tb))
        self._container.seek(target, stream=self._stream, backward=True, any_frame=False)
        self._iter = None

    def _read_sorted(self, unique):
        frames, wanted = {}, unique.tolist()
        k = 0
        if self._iter is None or wanted[0] <= self._last or wanted[0] - self._last > self.seek_gap:
            if wanted[0] > self.seek_gap:
                self._seek(wanted[0])
            elif self._iter is not None:      # rewind; a fresh container is already at the start
                self._container.seek(self._start, stream=self._stream, backward=True)
                self._iter = None
            self._last = -1
        while k < len(wanted):
            if self._iter is None:
                self._iter = self._container.decode(self._stream)
            frame = next(self._iter, None)
            if frame is None:
                raise DecodeError(f"{self.path}: the stream ended before frame {wanted[k]} of the "
                                  f"{self.num_frames} the file declares (truncated or damaged?).")
            idx = self._index(frame)
            self._last = idx
            if wanted[k] < idx:   # a frame missing from the stream
                raise DecodeError(f"{self.path}: frame {wanted[k]} is missing from the stream.")
            if idx == wanted[k]:
                frames[idx] = frame.to_ndarray(format="rgb24")
                k += 1
                if k < len(wanted) and wanted[k] - idx > self.seek_gap:
                    self._seek(wanted[k])
        return frames

    def close(self):
        if self._container is not None:
            self._container.close()
            self._container = None


_READERS = {"decord": DecordReader, "cv2": OpenCVReader, "pyav": PyAVReader}


def open_video(path, backend="decord", num_threads=1, verify_length=True):
    """Open `path` with the named backend ('decord', 'cv2' or 'pyav'); raise DecodeError if unreadable.

    `verify_length` (decord only) fails a file whose decodable frames fall well short of the count
    its container declares, instead of reading a truncated file as a shorter video.
    """
    name = _ALIASES.get(backend, backend)
    if name not in _READERS:
        raise ValueError(f"unknown video backend '{backend}'; choose one of: {', '.join(BACKENDS)}.")
    if name == "decord":
        return DecordReader(path, num_threads=num_threads, verify_length=verify_length)
    return _READERS[name](path, num_threads=num_threads)


def read_image(path):
    """Read one image file with OpenCV as RGB uint8 [H, W, 3] (grey images become three channels)."""
    cv2 = _import("cv2")
    if not os.path.isfile(path):
        raise DecodeError(f"{path}: frame file not found.")
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise DecodeError(f"{path}: OpenCV cannot read it as an image (empty, truncated or not an "
                          f"image).")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


class FrameFolderReader:
    """A folder of numbered image files, read like a video: frame i is `suffix.format(start_index + i)`."""

    backend = "frames"

    def __init__(self, frame_dir, num_frames, suffix="img_{:05}.jpg", start_index=1):
        self.path = str(frame_dir)
        if not os.path.isdir(self.path):
            raise DecodeError(f"{self.path}: frame folder not found.")
        self.num_frames = int(num_frames)
        self.suffix = suffix
        self.start_index = int(start_index)

    def file(self, i):
        return os.path.join(self.path, self.suffix.format(self.start_index + int(i)))

    def read(self, indices):
        indices = _check_indices(self.path, indices, self.num_frames)
        frames = {int(i): read_image(self.file(i)) for i in np.unique(indices)}
        return _gather(self.path, indices, frames)

    def close(self):
        pass
