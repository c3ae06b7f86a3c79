"""Command lines of tools/timeline.py, tools/explain.py and tools/extract_features.py.

The grammar and error handling of predict (deploy/cli.py): -i INPUT, --model_dir or -c CONFIG
with -w WEIGHTS, -o/--override KEY=VALUE; every problem a user can fix is one line `error: ...`
and exit status 1.
"""
import logging
import os

import numpy as np

from ..utils import quiet
from . import cli
from .errors import DeployError

__all__ = ["timeline_parser", "timeline_main", "explain_parser", "explain_main",
           "features_parser", "features_main"]

logger = logging.getLogger("paddlevideo")


def _model_options(p, exported=True):
    if exported:
        p.add_argument("--model_dir", default=None, help="export_model.py's output folder")
        p.add_argument("--save_name", default=None, help="which model when model_dir holds "
                                                         "several")
    p.add_argument("-c", "--config", default=None, help="training config (with -w)")
    p.add_argument("-w", "-p", "--weights", dest="weights", default=None,
                   help="weights for -c: a checkpoint, PaddleVideo .pdparams, a converted or "
                        "PyTorch TSM checkpoint, or a registered name")
    cli.add_overrides(p, short_o=True)
    p.add_argument("--label_list", default=None, help="class names ('INDEX NAME' per line)")


def _labels(args, labels, num_classes=None):
    """--label_list, else `labels` (a list, or a config's label list path), read and checked
    against the class count."""
    from .labels import load_label_list
    if args.label_list:
        return load_label_list(args.label_list, num_classes)
    return load_label_list(labels, num_classes) if isinstance(labels, str) else labels


# ---- timeline --------------------------------------------------------------------------------------
def timeline_parser():
    p = cli.Parser(prog="timeline.py", description="Label a long video (or a camera) over time: "
                                                   "JSON, CSV, SRT, a picture, an annotated MP4.")
    p.add_argument("-i", "--input", required=True,
                   help="a video file, or a camera index (0) read with OpenCV")
    _model_options(p)
    p.add_argument("--window", type=float, default=None,
                   help="window length in seconds (default 2)")
    p.add_argument("--stride", type=float, default=None,
                   help="seconds between window starts (default 1)")
    p.add_argument("--output", required=True, metavar="FOLDER", help="folder for the files")
    p.add_argument("--video", action="store_true",
                   help="also write annotated.mp4 (H.264): the input with label, score and a "
                        "timeline bar (video files only)")
    p.add_argument("--top_k", type=int, default=5)
    p.add_argument("-b", "--batch_size", type=int, default=8, help="windows per engine call")
    p.add_argument("--fps", type=float, default=None,
                   help="frame rate when the input does not say (cameras often do not)")
    p.add_argument("--max_seconds", type=float, default=None,
                   help="stop after this many seconds of input (a camera runs until Ctrl-C "
                        "otherwise)")
    p.add_argument("--backend", choices=["auto", "paddle", "onnxruntime"], default="auto")
    p.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16", "int8"],
                   default="auto")
    p.add_argument("--use_gpu", type=cli.bool_arg, default=False)
    p.add_argument("--cpu_threads", type=int, default=None)
    return p


def timeline_main(argv=None):
    args = timeline_parser().parse_args(argv)
    if argv is None:
        quiet.install()
    cli.setup_logging(logging.WARNING)
    try:
        return _run_timeline(args)
    except cli.user_errors() as e:
        return cli.fail(e)


def _run_timeline(args):
    from .online import frame_preprocessor
    from .timeline import (WindowPlan, default_window, open_engine, read_frames, run_timeline,
                           source_name)
    from .timeline_output import annotate_video, plot_timeline, write_csv, write_json, write_srt
    camera = str(args.input).isdigit()
    if args.video and camera:
        raise DeployError("--video needs a video file; a camera's frames are not kept.")
    if args.batch_size < 1 or args.top_k < 1:
        raise DeployError("--batch_size and --top_k must be at least 1.")
    fps, _, frames = read_frames(args.input, fps=args.fps, max_seconds=args.max_seconds)
    engine, pipeline, labels = open_engine(
        args.model_dir, args.config, args.weights, args.override, save_name=args.save_name,
        device="gpu" if args.use_gpu else "cpu", precision=args.precision,
        backend=args.backend, cpu_threads=args.cpu_threads, batch_size=args.batch_size)
    labels = _labels(args, labels, len(labels) if labels else None)
    window, stride = default_window(None)
    plan = WindowPlan.from_pipeline(pipeline, fps, args.window or window, args.stride or stride)
    print(f"timeline: {engine.describe()}; {plan.window}-frame windows every {plan.stride} "
          f"frames at {fps:g} fps", flush=True)
    stats = {}
    try:
        record, probs = run_timeline(frames, plan, engine, frame_preprocessor(pipeline), labels,
                                     args.top_k, args.batch_size, stats)
    except KeyboardInterrupt:                    # a camera: stop and write what was seen
        raise DeployError("interrupted before the first window finished.") from None
    record["source"] = str(args.input)
    out = args.output
    write_json(os.path.join(out, "timeline.json"), record)
    write_csv(os.path.join(out, "segments.csv"), record["segments"])
    write_srt(os.path.join(out, "segments.srt"), record["segments"])
    plot_timeline(os.path.join(out, "timeline.png"), record, probs, labels,
                  source_name(args.input))
    if args.video:                  # a second pass over the file: its frames are not kept
        _, _, again = read_frames(args.input, record["frames"])
        first = next(again)
        size = (first.shape[1], first.shape[0])

        def all_frames():
            yield first
            yield from again
        n = annotate_video(all_frames(), os.path.join(out, "annotated.mp4"), record, size)
        print(f"annotated.mp4: {n} frames")
    for seg in record["segments"]:
        print(f"{seg['start']:8.2f}-{seg['end']:8.2f} s  {seg['label']} ({seg['score']:.2f})")
    print(f"{len(record['windows'])} windows, {stats.get('frames')} frames decoded once, "
          f"{stats.get('preprocessed')} preprocessed; wrote {out}")
    return 0


# ---- explain (Grad-CAM) ----------------------------------------------------------------------------
def explain_parser():
    p = cli.Parser(prog="explain.py", description="Grad-CAM of a video: per-frame overlays as a "
                                                  "PNG grid and a GIF, and each frame's share.")
    p.add_argument("-i", "--input", required=True, help="a video file or a frame folder")
    _model_options(p, exported=False)
    p.add_argument("--target", default=None,
                   help="class index or name to explain (default: the top class)")
    p.add_argument("--layer", default=None,
                   help="layer name (default: the backbone's last stage), e.g. backbone.res5c")
    p.add_argument("--output", required=True, metavar="FOLDER")
    return p


def explain_main(argv=None):
    args = explain_parser().parse_args(argv)
    if argv is None:
        quiet.install()
    cli.setup_logging(logging.WARNING)
    try:
        return _run_explain(args)
    except (*cli.user_errors(), ValueError) as e:
        return cli.fail(e)


def _display_pipeline(pipeline):
    """The test pipeline cut before Image2Array: the same frames, as uint8 RGB crops."""
    transform = []
    for op in pipeline.get("transform") or []:
        name = next(iter(op)) if isinstance(op, dict) else op
        if name in ("Image2Array", "Normalization"):
            break
        transform.append(op)
    return dict(pipeline, transform=transform)


def _run_explain(args):
    from ..config_check import load_model
    from ..explain import evidence_share, grad_cam, overlay
    from ..utils.config import to_plain
    from .inputs import ClipMaker
    from .labels import config_label_list, default_labels
    if not args.config or not args.weights:
        raise DeployError("explain needs -c CONFIG and -w WEIGHTS (Grad-CAM runs the dygraph "
                          "model).")
    cfg = cli.load_config(args.config, args.override)
    pipeline = to_plain((cfg.get("PIPELINE") or {}).get("test") or {})
    model = load_model(cfg, args.weights)
    labels = _labels(args, config_label_list(cfg), model.head.num_classes) \
        or default_labels(model.head.num_classes)
    clip, _ = ClipMaker(pipeline)(args.input)
    shown, _ = ClipMaker(_display_pipeline(pipeline))(args.input)
    target = args.target
    if target is not None:
        target = int(target) if str(target).isdigit() else _class_index(labels, target)
    import paddle
    with paddle.no_grad():
        probs = paddle.nn.functional.softmax(model(paddle.to_tensor(clip[None]))).numpy()[0]
    index = int(probs.argmax()) if target is None else target
    cam = grad_cam(model, clip, target=index, layer=args.layer)
    frames = overlay(np.clip(shown, 0, 255).astype(np.uint8), cam)
    share = evidence_share(cam)
    os.makedirs(args.output, exist_ok=True)
    np.save(os.path.join(args.output, "cam.npy"), cam)
    title = f"{labels[index]} ({index}), score {probs[index]:.3f}"
    _cam_grid(os.path.join(args.output, "cam_grid.png"), shown, frames, share, title)
    _gif(os.path.join(args.output, "cam.gif"), frames)
    print(f"Grad-CAM of {title}: wrote cam_grid.png, cam.gif, cam.npy to {args.output}")
    print("evidence per frame: " + " ".join(f"{s:.2f}" for s in share))
    return 0


def _class_index(labels, name):
    if name not in labels:
        raise DeployError(f"--target '{name}' is not a class name of the model (give an index "
                          f"or a name from the label list).")
    return labels.index(name)


def _cam_grid(path, shown, frames, share, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    t = len(frames)
    fig = plt.figure(figsize=(1.6 * t, 4.6))
    grid = fig.add_gridspec(3, t, height_ratios=[1, 1, 0.7], hspace=0.25)
    for i in range(t):
        top, mid = fig.add_subplot(grid[0, i]), fig.add_subplot(grid[1, i])
        top.imshow(np.clip(shown[i], 0, 255).astype(np.uint8))
        mid.imshow(frames[i])
        top.set_title(f"frame {i}", fontsize=8)
        top.axis("off")
        mid.axis("off")
    bar = fig.add_subplot(grid[2, :])
    bar.bar(np.arange(t), share, color="tab:orange")
    bar.set_xticks(np.arange(t))
    bar.set_xlim(-0.5, t - 0.5)
    bar.set_ylabel("share", fontsize=8)
    bar.set_xlabel("frame: share of the clip's Grad-CAM evidence", fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.savefig(path, dpi=80, bbox_inches="tight")
    plt.close(fig)


def _gif(path, frames):
    from PIL import Image
    images = [Image.fromarray(f) for f in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=400, loop=0)


# ---- features ---------------------------------------------------------------------------------------
def features_parser():
    p = cli.Parser(prog="extract_features.py", description="Pooled backbone features, one per "
                                                           "clip or per window of a long video.")
    p.add_argument("-i", "--input", dest="input", action="extend", nargs="+", required=True,
                   help="videos, frame folders, folders, globs or list files (as predict)")
    _model_options(p, exported=False)
    p.add_argument("--per_window", action="store_true",
                   help="one vector per window (--window/--stride seconds) of each video")
    p.add_argument("--window", type=float, default=2.0)
    p.add_argument("--stride", type=float, default=1.0)
    p.add_argument("--engine", choices=["paddle", "dygraph"], default="paddle",
                   help="paddle: the features exported as an inference program and checked "
                        "against dygraph (default); dygraph: the model itself")
    p.add_argument("-b", "--batch_size", type=int, default=8)
    p.add_argument("--output", required=True, metavar="STEM",
                   help="writes STEM.npy and STEM.json (and STEM.parquet with pyarrow)")
    return p


def features_main(argv=None):
    args = features_parser().parse_args(argv)
    if argv is None:
        quiet.install()
    cli.setup_logging(logging.WARNING)
    try:
        return _run_features(args)
    except cli.user_errors() as e:
        return cli.fail(e)


def _run_features(args):
    from ..config_check import load_model
    from ..utils.config import to_plain
    from .export import frame_naming, pipeline_input_size
    from .features import feature_runner, write_features
    from .inputs import ClipMaker, collect_inputs
    if not args.config or not args.weights:
        raise DeployError("extract_features needs -c CONFIG and -w WEIGHTS.")
    cfg = cli.load_config(args.config, args.override)
    pipeline = to_plain((cfg.get("PIPELINE") or {}).get("test") or {})
    num_seg, size = pipeline_input_size(pipeline)
    model = load_model(cfg, args.weights)
    run = feature_runner(model, num_seg, size, engine=args.engine)
    items = collect_inputs(args.input, frames=frame_naming(cfg))
    vectors, rows = [], []
    if args.per_window:
        from .online import frame_preprocessor
        from .timeline import WindowPlan, read_frames, window_clips
        preprocess = frame_preprocessor(pipeline)
        for item in items:
            if item.kind != "video":
                raise DeployError(f"{item.path}: --per_window reads video files.")
            fps, _, frames = read_frames(item.path)
            plan = WindowPlan.from_pipeline(pipeline, fps, args.window, args.stride)
            for windows, clips in window_clips(frames, plan, preprocess, args.batch_size):
                vectors.extend(run(clips))
                rows.extend({"file": item.path, "start": w["start_frame"] / fps,
                             "end": w["end_frame"] / fps, "start_frame": w["start_frame"],
                             "end_frame": w["end_frame"]} for w in windows)
    else:
        make_clip = ClipMaker(pipeline, frame_naming(cfg))
        for first in range(0, len(items), args.batch_size):
            chunk = items[first:first + args.batch_size]
            vectors.extend(run(np.stack([make_clip(i)[0] for i in chunk])))
            rows.extend({"file": i.path} for i in chunk)
    written = write_features(args.output, np.stack(vectors), rows)
    print(f"{len(rows)} feature vectors of {len(vectors[0])} values: wrote "
          f"{', '.join(written)}")
    return 0
