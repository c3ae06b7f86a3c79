"""The timeline's files: JSON, CSV and SRT of the segments, a picture, an annotated MP4.

Times are seconds (`start`, `end`, `duration`), frame numbers 0-based with `end_frame` one past
the last frame, scores softmax probabilities.
"""
import csv
import json
import os

import numpy as np

from .errors import DeployError

__all__ = ["write_json", "write_csv", "write_srt", "srt_time", "plot_timeline",
           "annotate_video", "class_colour", "MAX_PLOT_CLASSES"]

MAX_PLOT_CLASSES = 20      # more classes than this: the picture shows the top ones only


def _open(path):
    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        return open(path, "w", encoding="utf-8", newline="")
    except OSError as e:
        raise DeployError(f"cannot write {path}: {e.strerror or e}") from None


def write_json(path, record):
    with _open(path) as f:
        json.dump(record, f, ensure_ascii=False, indent=1)


def write_csv(path, segments):
    with _open(path) as f:
        writer = csv.writer(f)
        writer.writerow(["start", "end", "start_frame", "end_frame", "label", "index", "score"])
        for s in segments:
            writer.writerow([f"{s['start']:.3f}", f"{s['end']:.3f}", s["start_frame"],
                             s["end_frame"], s["label"], s["index"], f"{s['score']:.4f}"])


def srt_time(seconds):
    """SRT's HH:MM:SS,mmm."""
    ms = int(round(seconds * 1000))
    return f"{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"


def write_srt(path, segments):
    with _open(path) as f:
        for n, s in enumerate(segments, 1):
            f.write(f"{n}\n{srt_time(s['start'])} --> {srt_time(s['end'])}\n"
                    f"{s['label']} ({s['score']:.2f})\n\n")


def class_colour(index):
    """A fixed, distinct-looking RGB colour per class index (golden-ratio hues)."""
    import colorsys
    r, g, b = colorsys.hsv_to_rgb((index * 0.618033988749895) % 1.0, 0.65, 0.95)
    return int(r * 255), int(g * 255), int(b * 255)


def plot_timeline(path, record, probs, labels, title=""):
    """Classes against time, probability as intensity (0 to the highest score shown), with the
    segments as a coloured bar under it. With more than MAX_PLOT_CLASSES classes only those reaching the highest scores
    are drawn (the title says how many of how many)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    probs = np.asarray(probs, np.float64)
    classes = probs.shape[1]
    order = np.argsort(-probs.max(axis=0), kind="stable")[:MAX_PLOT_CLASSES]
    order = np.sort(order) if classes <= MAX_PLOT_CLASSES else order
    shown = f"{len(order)} of {classes} classes (highest scores)" if classes > len(order) \
        else f"{classes} classes"
    windows = record["windows"]
    centres = [(w["start"] + w["end"]) / 2 for w in windows]
    duration = record["duration"]
    height = 1.6 + 0.28 * len(order)
    fig, (ax, bar) = plt.subplots(2, 1, figsize=(10, height), sharex=True,
                                  gridspec_kw={"height_ratios": [len(order), 1.2]})
    # each window's scores drawn over the time it owns in the segments (midpoints of centres)
    bounds = [0.0] + [(a + b) / 2 for a, b in zip(centres, centres[1:])] + [duration]
    # the colour scale runs from 0 to the highest score shown (its value is on the colour bar),
    # so an unsure model's scores of a few percent stay visible
    top = max(float(probs[:, order].max()), 1e-6)
    mesh = ax.pcolormesh(bounds, np.arange(len(order) + 1), probs[:, order].T, cmap="viridis",
                         vmin=0.0, vmax=top, shading="flat")
    ax.set_yticks(np.arange(len(order)) + 0.5)
    ax.set_yticklabels([labels[i] if labels else f"class_{i}" for i in order], fontsize=8)
    ax.invert_yaxis()
    ax.set_title((title + ": " if title else "") + shown, fontsize=10)
    fig.colorbar(mesh, ax=[ax, bar], fraction=0.03, pad=0.01, label="score")
    for seg in record["segments"]:
        colour = np.array(class_colour(seg["index"])) / 255.0
        bar.axvspan(seg["start"], seg["end"], color=colour)
        # a name only where it fits (about 0.008 of the bar's width per character)
        if seg["end"] - seg["start"] > duration * (0.008 * len(seg["label"]) + 0.01):
            bar.text((seg["start"] + seg["end"]) / 2, 0.5, seg["label"], ha="center",
                     va="center", fontsize=7, clip_on=True)
    bar.set_yticks([])
    bar.set_ylabel("top-1", rotation=0, ha="right", va="center", fontsize=8)
    bar.set_xlim(0, duration)
    bar.set_xlabel("time (s)")
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)


def _label_at(segments):
    """frame index -> its segment, for frames in order."""
    k = 0

    def at(index):
        nonlocal k
        while k < len(segments) - 1 and index >= segments[k]["end_frame"]:
            k += 1
        return segments[k]
    return at


def annotate_video(frames, out_path, record, size):
    """Write `frames` (RGB uint8, in order) as H.264 MP4 (PyAV) at the record's fps and the
    frames' `size` (width, height), each with its segment's label and score and a timeline bar
    with a cursor. An odd width or height is padded by one pixel (H.264's 4:2:0 needs even
    sizes). Returns the frames written."""
    import av
    import cv2
    from fractions import Fraction
    width, height = size
    enc_w, enc_h = width + width % 2, height + height % 2
    total = max(1, record["frames"])
    bar_h = max(6, height // 20)
    bar = np.zeros((bar_h, width, 3), np.uint8)
    for seg in record["segments"]:
        a = int(seg["start_frame"] * width / total)
        b = max(a + 1, int(seg["end_frame"] * width / total))
        bar[:, a:b] = class_colour(seg["index"])
    at = _label_at(record["segments"])
    scale = max(0.45, height / 400)
    thick = max(1, int(round(scale * 1.5)))
    try:
        container = av.open(out_path, "w")
    except Exception as e:
        raise DeployError(f"cannot write {out_path}: {e}") from None
    n = 0
    try:
        rate = Fraction(record["fps"]).limit_denominator(1001)
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = enc_w, enc_h, "yuv420p"
        stream.options = {"crf": "23", "preset": "veryfast"}
        for index, frame in enumerate(frames):
            img = np.zeros((enc_h, enc_w, 3), np.uint8)
            img[:height, :width] = frame
            seg = at(index)
            text = f"{seg['label']} {seg['score']:.2f}"
            y0 = height - bar_h
            img[y0:height, :width] = bar
            x = int(index * width / total)
            img[y0:height, max(0, x - 1):x + 1] = 255
            (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
            box = img[:th + base + 8, :min(width, tw + 12)]
            box[:] = (box * 0.35).astype(np.uint8)             # a dark box keeps text readable
            cv2.putText(img, text, (6, th + 4), cv2.FONT_HERSHEY_SIMPLEX, scale,
                        (255, 255, 255), thick, cv2.LINE_AA)
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
            n += 1
        for packet in stream.encode():
            container.mux(packet)
    finally:
        container.close()
    return n
