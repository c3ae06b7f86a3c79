"""Sampler: which frames of a video a clip uses (TSN/TSM segment sampling), then reads them."""
import numpy as np

from ...utils.typecheck import PositiveInt, Segments
from ..decoders import DecodeError
from ..registry import PIPELINES

__all__ = ["Sampler", "segment_indices"]


def _uniform(num_frames, num_seg, seg_len, train, select_left, rng, clip=0, num_clips=1):
    """Start frame of each segment for one clip (0-based), following PaddleVideo/TSM rules."""
    L, T = num_frames, num_seg
    if select_left:
        # TSM's rule: train picks a random frame in each equal slice; test takes slice centres.
        if train:
            dur = L // T
            if dur > 0:
                return np.arange(T) * dur + rng.integers(0, dur, size=T)
            if L > T:
                return np.sort(rng.integers(0, L, size=T))
            return np.zeros(T, dtype=np.int64)
        if L > T:
            tick = L / T
            shift = (clip + 0.5) / num_clips          # one clip: the centre of each slice
            return np.array([int(tick * shift + tick * i) for i in range(T)])
        return np.zeros(T, dtype=np.int64)
    # TSN's rule (select_left False): segments of int(L/T) frames, seg_len consecutive frames each.
    dur = L // T
    starts = []
    for i in range(T):
        if dur >= seg_len:
            if train:
                off = int(rng.integers(0, dur - seg_len + 1))
            else:
                off = (dur - 1) // 2 if num_clips == 1 else int((dur - seg_len) * (clip + 0.5)
                                                                 / num_clips)
            starts.append(off + i * dur)
        elif dur >= 1:
            starts.append(i * dur)
        else:
            starts.append(i)
    return np.array(starts)


def _dense(num_frames, num_seg, train, rng, clip=0, num_clips=1, window=64):
    """Dense sampling: num_seg frames at a fixed stride inside a `window`-frame span."""
    stride = max(window // num_seg, 1)
    room = max(1, num_frames - window + 1)
    if train:
        start = 0 if room == 1 else int(rng.integers(0, room))
    else:
        starts = np.linspace(0, room - 1, num=num_clips, dtype=np.int64)
        start = int(starts[clip])
    return np.arange(num_seg) * stride + start


def segment_indices(num_frames, num_seg, seg_len=1, train=False, select_left=True, dense=False,
                    num_clips=1, rng=None):
    """Frame indices (0-based, wrapped into [0, num_frames)) of every clip, clip-major: [clips*T]."""
    if num_frames <= 0:
        raise DecodeError("the video has no frames to sample.")
    rng = rng if rng is not None else np.random.default_rng()
    out = []
    for clip in range(num_clips):
        if dense:
            starts = _dense(num_frames, num_seg, train, rng, clip, num_clips)
        else:
            starts = _uniform(num_frames, num_seg, seg_len, train, select_left, rng, clip, num_clips)
        starts = np.asarray(starts, dtype=np.int64)
        idx = (starts[:, None] + np.arange(seg_len)[None, :]).reshape(-1)
        out.append(idx % num_frames)
    return np.concatenate(out)


@PIPELINES.register()
class Sampler:
    """Choose `num_seg` segments x `seg_len` frames per clip and decode only those frames.

    Input keys: `reader`, `frames_len`, `rng` (a numpy Generator; one per sample, for reproducible
    runs). Output keys: `imgs` uint8 [clips*T, H, W, 3] RGB (T = num_seg*seg_len), `frames_idx`
    (0-based indices, clip-major), `num_clips`, `clip_len`. The reader is closed afterwards.

    `valid_mode` picks segment centres instead of random frames; `select_left` is TSM's rule (see
    docs/data.md); `dense_sample` takes frames at a fixed stride in a 64-frame window; `num_clips`
    > 1 gives multi-clip testing (clip c of k takes the points (c + 0.5)/k of each segment; dense
    sampling spreads its windows evenly). `frame_interval`, `linspace_sample` and `use_pil` are
    accepted for PaddleVideo configs: the first two are not supported when set, `use_pil` has no
    effect (frames are always numpy arrays).
    """

    def __init__(self, num_seg: Segments, seg_len: Segments = 1, valid_mode: bool = False,
                 select_left: bool = False, dense_sample: bool = False, num_clips: Segments = 1,
                 frame_interval: PositiveInt | None = None, linspace_sample: bool = False,
                 use_pil: bool = True):
        if int(num_seg) < 1 or int(seg_len) < 1 or int(num_clips) < 1:
            raise ValueError(f"Sampler: num_seg ({num_seg}), seg_len ({seg_len}) and num_clips "
                             f"({num_clips}) must be positive.")
        if frame_interval is not None or linspace_sample:
            raise ValueError("Sampler: frame_interval and linspace_sample are not supported; use "
                             "the default segment sampling or dense_sample.")
        self.num_seg, self.seg_len = int(num_seg), int(seg_len)
        self.valid_mode, self.select_left = bool(valid_mode), bool(select_left)
        self.dense_sample, self.num_clips = bool(dense_sample), int(num_clips)

    def __call__(self, results):
        reader = results["reader"]
        rng = results.get("rng")
        num_frames = int(results.get("frames_len", reader.num_frames))
        if num_frames <= 0:
            raise DecodeError(f"{reader.path}: the video has no frames.")
        idx = segment_indices(num_frames, self.num_seg, self.seg_len, not self.valid_mode,
                              self.select_left, self.dense_sample, self.num_clips, rng)
        try:
            imgs = reader.read(idx)
        finally:
            reader.close()
        results.pop("reader", None)
        results["imgs"] = imgs
        results["frames_idx"] = idx
        results["num_clips"] = self.num_clips
        results["clip_len"] = self.num_seg * self.seg_len
        return results
