"""Labels over time for a long video or a camera: windows, each sampled as the test pipeline
samples a clip, predicted in batches, merged into segments that tile the video.

    engine, pipeline, labels = open_engine(model_dir="output/export")
    plan = WindowPlan.from_pipeline(pipeline, fps=25.0, window_s=2.0, stride_s=1.0)
    result = run_timeline(read_frames("video.mp4"), plan, engine, frame_preprocessor(pipeline),
                          labels)

Windows. Window k covers frames [k*stride, k*stride + window) (`end_frame` is one past its last
frame; seconds are frames / fps). Inside it the clip is sampled exactly as the test pipeline's
Sampler samples a clip of `window` frames in test mode (TSM: the centre frame of each of the
num_seg equal segments), and each frame goes through the pipeline's transform ops. A video
shorter than one window gives one window over all its frames.

Each frame is decoded once, in order. A frame is kept (preprocessed once) only while a later
window samples it; frames before the next window's start are dropped, so memory holds at most
one window's sampled frames. Finished windows go to the engine `batch_size` at a time, while a
thread decodes and preprocesses the next batch.

Segments. Window k owns the time from halfway between its neighbours' starts and its own, in
frames: boundary b_k = k*stride + (window + stride) // 2 between windows k and k+1; the first
window's part starts at frame 0 and the last one's ends at the video's last frame. Consecutive
windows with the same top-1 class merge into one segment whose score is the mean of their top-1
probabilities. So the segments tile [0, duration] with no gap and no overlap.

`open_engine` turns the model options into an engine through `paddlevideo.Predictor`, so the
timeline opens a model exactly as predict and the server do.
"""
import logging
import os

import numpy as np

from .errors import DeployError
from .labels import default_labels
from .runtime import softmax

__all__ = ["open_engine", "WindowPlan", "read_frames", "window_clips", "run_timeline",
           "segments_of", "default_window", "source_name"]

logger = logging.getLogger("paddlevideo")


def open_engine(model_dir=None, config=None, weights=None, overrides=(), save_name=None,
                **engine_kwargs):
    """(engine, test pipeline, labels or None) for the model options of `Predictor`: an exported
    folder, or config + weights (exported once into the checked cache and reused)."""
    from .api import Predictor
    predictor = Predictor(model_dir, config, weights, list(overrides or []), save_name=save_name,
                          **engine_kwargs)
    return predictor.engine, predictor.pipeline, predictor.labels


def default_window(num_seg):
    """(window, stride) in seconds that suit a model sampling num_seg frames: TSM's Kinetics
    clips are ~10 s sampled at 8 frames, but actions change within a few seconds, so 2 s windows
    (one sampled frame every 1/4 s at 8 segments) every 1 s."""
    return 2.0, 1.0


class WindowPlan:
    """Where windows start and which of their frames the test pipeline samples."""

    def __init__(self, fps, window_frames, stride_frames, num_seg, seg_len=1, select_left=False,
                 dense=False):
        if not fps or fps <= 0 or not np.isfinite(fps):
            raise DeployError(f"the video's frame rate is unknown ({fps}); give --fps.")
        if window_frames < 1 or stride_frames < 1:
            raise DeployError(f"--window and --stride must each cover at least one frame at "
                              f"{fps:g} fps (got {window_frames} and {stride_frames} frames).")
        self.fps, self.window, self.stride = float(fps), int(window_frames), int(stride_frames)
        self.sampling = dict(num_seg=int(num_seg), seg_len=int(seg_len),
                             select_left=bool(select_left), dense=bool(dense))
        self.offsets = self.sample(self.window)
        self._offset_set = frozenset(int(o) for o in self.offsets)

    @classmethod
    def from_pipeline(cls, pipeline, fps, window_s, stride_s):
        sample = dict((pipeline or {}).get("sample") or {})
        if sample.get("name", "Sampler") != "Sampler" or not sample.get("num_seg"):
            raise DeployError("the test pipeline has no Sampler with num_seg; the timeline "
                              "samples windows as that Sampler does.")
        if int(sample.get("num_clips", 1)) != 1:
            logger.info("the timeline samples one clip per window (the test pipeline's "
                        "num_clips=%s applies to whole videos).", sample["num_clips"])
        if window_s <= 0 or stride_s <= 0:
            raise DeployError(f"--window and --stride must be positive seconds (got {window_s} "
                              f"and {stride_s}).")
        return cls(fps, int(round(window_s * fps)), int(round(stride_s * fps)),
                   sample["num_seg"], sample.get("seg_len", 1), sample.get("select_left", False),
                   sample.get("dense_sample", False))

    def sample(self, num_frames):
        """0-based indices the test-mode Sampler takes from a clip of num_frames frames."""
        from ..loader.pipelines.sample import segment_indices
        s = self.sampling
        return segment_indices(num_frames, s["num_seg"], s["seg_len"], train=False,
                               select_left=s["select_left"], dense=s["dense"], num_clips=1,
                               rng=np.random.default_rng(0))

    def keeps(self, index):
        """Whether a full window samples frame `index` (or it may serve a short video's one
        window: the first `window` frames)."""
        return index < self.window or any(
            (index - o) >= 0 and (index - o) % self.stride == 0 for o in self._offset_set)


def read_frames(source, max_frames=None, fps=None, max_seconds=None):
    """(fps, frame count or None, iterator of RGB uint8 frames) of a video file or a camera
    index, read in order with OpenCV: the one reader of file and camera mode. `fps` replaces
    the frame rate the source declares; reading stops after `max_frames` frames or
    `max_seconds` seconds."""
    import cv2
    from .online import open_stream
    cap = open_stream(source)
    fps = float(fps or cap.get(cv2.CAP_PROP_FPS) or 0.0)
    count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0) if not str(source).isdigit() else None
    if max_seconds and fps > 0:
        limit = int(max_seconds * fps)
        max_frames = limit if max_frames is None else min(max_frames, limit)

    def frames():
        n = 0
        try:
            while max_frames is None or n < max_frames:
                ok, frame = cap.read()
                if not ok:
                    break
                n += 1
                yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        finally:
            cap.release()
    return fps, count or None, frames()


def window_clips(frames, plan, preprocess, batch_size=8, stats=None):
    """Yield (windows, clips float32 [B, T, 3, S, S]) for batches of finished windows; each
    window is {start_frame, end_frame}. `stats` (a dict) receives `frames` read and
    `preprocessed`, the frames the windows sampled (each preprocessed once)."""
    stats = stats if stats is not None else {}
    cache, pending, read, done = {}, [], 0, 0
    stats.update(frames=0, preprocessed=0, peak_cached=0)

    def clip_of(start, indices):
        out = []
        for i in indices:
            frame = cache[start + int(i)]
            if frame.dtype == np.uint8:                   # raw: preprocess once, keep that
                frame = cache[start + int(i)] = preprocess(frame)
                stats["preprocessed"] += 1
            out.append(frame)
        return np.stack(out)

    for index, frame in enumerate(frames):
        read = index + 1
        if plan.keeps(index):
            cache[index] = np.ascontiguousarray(frame)
            stats["peak_cached"] = max(stats["peak_cached"], len(cache))
        while done * plan.stride + plan.window <= read:
            start = done * plan.stride
            pending.append(({"start_frame": start, "end_frame": start + plan.window},
                            clip_of(start, plan.offsets)))
            done += 1
            for i in [i for i in cache if i < done * plan.stride]:
                del cache[i]
            if len(pending) == batch_size:
                yield [w for w, _ in pending], np.stack([c for _, c in pending])
                pending = []
    stats["frames"] = read
    if read == 0:
        raise DeployError("no frame could be read (empty or unreadable video).")
    if done == 0:                                      # shorter than one window
        pending.append(({"start_frame": 0, "end_frame": read}, clip_of(0, plan.sample(read))))
    if pending:
        yield [w for w, _ in pending], np.stack([c for _, c in pending])


def run_timeline(frames, plan, engine, preprocess, labels=None, top_k=5, batch_size=8,
                 stats=None):
    """(record, probabilities [windows, K]): the record is {fps, frames, duration, windows,
    segments} (see the module docstring; times in seconds, frame numbers 0-based, `end_frame`
    exclusive)."""
    stats = {} if stats is None else stats           # its frame count is the video's length
    windows, rows = [], []
    batches = _ahead(window_clips(frames, plan, preprocess, batch_size, stats))
    for batch, clips in batches:
        probs = softmax(engine(clips))
        rows.append(probs)
        names = labels or default_labels(probs.shape[-1])
        for window, p in zip(batch, probs):
            best = np.argsort(-p, kind="stable")[:top_k]
            window.update(start=window["start_frame"] / plan.fps,
                          end=window["end_frame"] / plan.fps,
                          topk=[{"index": int(i), "label": names[int(i)], "score": float(p[i])}
                                for i in best])
            windows.append(window)
    total = stats["frames"]
    record = {"fps": plan.fps, "frames": int(total), "duration": total / plan.fps,
              "window_frames": plan.window, "stride_frames": plan.stride,
              "windows": windows, "segments": segments_of(windows, total, plan)}
    return record, np.concatenate(rows)


def _ahead(batches, depth=2):
    """Iterate `batches` with decoding and preprocessing run ahead in a thread, so they overlap
    the engine (OpenCV and the inference engines release the GIL). Errors come through in
    order; leaving early stops the thread."""
    import queue
    import threading
    q, stop, end = queue.Queue(depth), threading.Event(), object()

    def produce():
        try:
            for item in batches:
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(end)
        except BaseException as e:            # handed to the consumer, raised there
            q.put(e)

    thread = threading.Thread(target=produce, daemon=True, name="timeline-decode")
    thread.start()
    try:
        while True:
            item = q.get()
            if item is end:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():              # unblock a producer waiting on a full queue
            try:
                q.get_nowait()
            except queue.Empty:
                thread.join(0.1)


def segments_of(windows, total_frames, plan):
    """Consecutive windows merged by top-1 label into segments tiling [0, total_frames)."""
    segments = []
    for k, window in enumerate(windows):
        start = 0 if k == 0 else segments[-1]["_end"] if segments else 0
        end = (total_frames if k == len(windows) - 1
               else k * plan.stride + (plan.window + plan.stride) // 2)
        end = min(max(end, start), total_frames)
        top = window["topk"][0]
        if segments and segments[-1]["index"] == top["index"]:
            seg = segments[-1]
            seg["_end"], seg["_scores"] = end, seg["_scores"] + [top["score"]]
        else:
            segments.append({"index": top["index"], "label": top["label"], "_start": start,
                             "_end": end, "_scores": [top["score"]]})
    out = []
    for seg in segments:
        out.append({"start": seg["_start"] / plan.fps, "end": seg["_end"] / plan.fps,
                    "start_frame": seg["_start"], "end_frame": seg["_end"],
                    "label": seg["label"], "index": seg["index"],
                    "score": float(np.mean(seg["_scores"]))})
    return [s for s in out if s["end_frame"] > s["start_frame"]] or out[-1:]


def source_name(source):
    return f"camera {source}" if str(source).isdigit() else os.path.basename(str(source))
