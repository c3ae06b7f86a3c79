"""The timeline: windows sampled as the test pipeline samples a clip, each frame decoded and
preprocessed once, segments that tile the video, file and camera modes alike, the command."""
import csv
import json
import os

import numpy as np
import paddle
import pytest

from paddlevideo.deploy.online import frame_preprocessor
from paddlevideo.deploy.timeline import (WindowPlan, read_frames, run_timeline, segments_of,
                                         window_clips)
from paddlevideo.deploy.timeline_output import srt_time
from paddlevideo.deploy.vis_cli import timeline_main
from paddlevideo.loader import Compose
from paddlevideo.loader.pipelines.sample import segment_indices

from .conftest import (NUM_SEG, VIDEOS, make_model, pipeline, save_checkpoint, write_config,
                       write_labels, write_video)

FPS = 25.0


def _engine(model):
    def run(clips):
        with paddle.no_grad():
            return model(paddle.to_tensor(clips)).numpy()
    return run


def _plan(window_s, stride_s, fps=FPS):
    return WindowPlan.from_pipeline(pipeline(), fps, window_s, stride_s)


def _all_frames(path):
    return np.stack(list(read_frames(path)[2]))


def test_each_window_is_the_test_pipelines_clip_of_its_frames(tmp_path):
    """Window k's clip equals the test pipeline's Sampler (test mode) and transform run on the
    window's frames as one clip, though the timeline preprocesses frame by frame and shares
    frames between windows."""
    video = write_video(tmp_path / "v.avi", 90)
    frames = _all_frames(video)
    plan = _plan(1.2, 0.4)                      # 30-frame windows every 10 frames
    transform = Compose(pipeline()["transform"])
    seen = 0
    for windows, clips in window_clips(iter(frames), plan, frame_preprocessor(pipeline()), 4):
        for w, clip in zip(windows, clips):
            start = w["start_frame"]
            idx = start + segment_indices(30, NUM_SEG, select_left=True)
            want = transform({"imgs": frames[idx], "rng": np.random.default_rng(0)})["imgs"]
            np.testing.assert_allclose(clip, want, atol=1e-6)
            assert w["end_frame"] == start + 30 and start == 10 * seen
            seen += 1
    assert seen == 7                            # starts 0..60: (90 - 30) / 10 + 1


def test_a_video_shorter_than_a_window_is_one_clip_as_predict_makes_it(tmp_path):
    from paddlevideo.deploy.inputs import ClipMaker
    video = write_video(tmp_path / "short.avi", 23)
    cv2_pipeline = pipeline(decode={"name": "VideoDecoder", "backend": "cv2"})
    want, _ = ClipMaker(cv2_pipeline)(video)
    batches = list(window_clips(read_frames(video)[2], _plan(2.0, 1.0),
                                frame_preprocessor(pipeline()), 8))
    assert len(batches) == 1 and batches[0][0] == [{"start_frame": 0, "end_frame": 23}]
    np.testing.assert_allclose(batches[0][1][0], want, atol=1e-6)


def test_every_frame_is_decoded_and_preprocessed_at_most_once(tmp_path):
    video = write_video(tmp_path / "v.avi", 120)
    plan = _plan(1.0, 0.24)        # 25-frame windows every 6 frames; samples 3, 9, 15, 21 share
    decoded, calls = [], []
    base = frame_preprocessor(pipeline())

    def counting(frame):
        calls.append(1)
        return base(frame)

    def frames():
        for i, f in enumerate(read_frames(video)[2]):
            decoded.append(i)
            yield f
    stats = {}
    windows = [w for ws, _ in window_clips(frames(), plan, counting, 3, stats) for w in ws]
    sampled = {w["start_frame"] + int(o) for w in windows for o in plan.offsets}
    assert decoded == list(range(120))
    assert len(calls) == stats["preprocessed"] == len(sampled) < NUM_SEG * len(windows)
    assert stats["peak_cached"] <= plan.window + NUM_SEG
    assert len(windows) == (120 - 25) // 6 + 1


def test_segments_tile_the_video_and_merge_equal_labels():
    plan = WindowPlan(10.0, 20, 10, NUM_SEG)
    labels = [3, 3, 1, 1, 1, 3]
    windows = [{"start_frame": 10 * k, "end_frame": 10 * k + 20,
                "topk": [{"index": c, "label": f"c{c}", "score": 0.5 + 0.1 * k}]}
               for k, c in enumerate(labels)]
    segs = segments_of(windows, 77, plan)
    assert [s["label"] for s in segs] == ["c3", "c1", "c3"]
    assert segs[0]["start_frame"] == 0 and segs[-1]["end_frame"] == 77
    assert all(a["end_frame"] == b["start_frame"] for a, b in zip(segs, segs[1:]))
    # cut halfway between window starts' centres: between windows 1 and 2 at 10 + 15 = 25
    assert segs[0]["end_frame"] == 25 and segs[1]["end_frame"] == 55
    assert segs[0]["score"] == pytest.approx(0.55) and segs[-1]["end"] == pytest.approx(7.7)


def test_file_and_camera_mode_give_the_same_labels(tmp_path):
    """Camera mode reads frames one by one from an iterator (read_frames on an index); the same
    frames through that path give the same record as the file."""
    video = write_video(tmp_path / "v.avi", 70, seed=3)
    model = make_model()
    plan = _plan(1.0, 0.5)
    prep = frame_preprocessor(pipeline())
    from_file, p1 = run_timeline(read_frames(video)[2], plan, _engine(model), prep, top_k=3)
    frames = [f.copy() for f in read_frames(video)[2]]

    def camera():                                   # what cv2.VideoCapture(0) would hand over
        yield from frames
    from_camera, p2 = run_timeline(camera(), plan, _engine(model), prep, top_k=3,
                                   batch_size=1)
    def labels_of(record):          # scores aside: batch 1 vs 8 differ in the last bits
        return ([(w["start_frame"], w["end_frame"], [t["index"] for t in w["topk"]])
                 for w in record["windows"]],
                [(s["start_frame"], s["end_frame"], s["label"]) for s in record["segments"]])
    assert labels_of(from_file) == labels_of(from_camera)
    np.testing.assert_allclose(p1, p2, atol=1e-5)
    assert from_file["frames"] == 70 and from_file["duration"] == pytest.approx(2.8)


def test_the_command_writes_every_file(tmp_path):
    import av
    video = write_video(tmp_path / "v.avi", 60)
    labels = write_labels(tmp_path / "labels.txt")
    config = write_config(tmp_path / "c.yaml", label_list=labels)
    weights = tmp_path / "w.pdparams"
    save_checkpoint(make_model(), weights)
    out = tmp_path / "out"
    rc = timeline_main(["-i", video, "-c", config, "-w", str(weights), "--window", "1",
                        "--stride", "0.4", "--output", str(out), "--video", "-b", "2"])
    assert rc == 0
    record = json.loads((out / "timeline.json").read_text())
    assert record["fps"] == FPS and record["frames"] == 60 and record["duration"] == 2.4
    assert len(record["windows"]) == (60 - 25) // 10 + 1
    assert record["windows"][1]["start"] == 0.4 and record["windows"][1]["end_frame"] == 35
    assert record["windows"][0]["topk"][0]["label"].startswith("name_")
    segs = record["segments"]
    assert segs[0]["start"] == 0 and segs[-1]["end"] == 2.4
    rows = list(csv.DictReader(open(out / "segments.csv")))
    assert [r["label"] for r in rows] == [s["label"] for s in segs]
    srt = (out / "segments.srt").read_text()
    assert srt.startswith("1\n00:00:00,000 --> ") and "00:00:02,400" in srt
    assert (out / "timeline.png").stat().st_size > 5000
    with av.open(str(out / "annotated.mp4")) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert float(stream.average_rate) == FPS
        decoded = list(container.decode(stream))
    first = next(read_frames(video)[2])
    assert len(decoded) == 60
    assert (decoded[0].width, decoded[0].height) == (first.shape[1], first.shape[0])


def test_annotated_video_pads_an_odd_size_by_one_pixel(tmp_path):
    import av
    from paddlevideo.deploy.timeline_output import annotate_video
    record = {"fps": 10.0, "frames": 3, "segments": [
        {"start_frame": 0, "end_frame": 3, "index": 1, "label": "a", "score": 0.5}]}
    frames = [np.full((21, 33, 3), 80 * i, np.uint8) for i in range(3)]
    assert annotate_video(iter(frames), str(tmp_path / "a.mp4"), record, (33, 21)) == 3
    with av.open(str(tmp_path / "a.mp4")) as container:
        decoded = list(container.decode(video=0))
    assert len(decoded) == 3 and (decoded[0].width, decoded[0].height) == (34, 22)


def test_command_errors_are_one_line(tmp_path, capsys):
    video = write_video(tmp_path / "v.avi", 20)
    config = write_config(tmp_path / "c.yaml")
    assert timeline_main(["-i", "0", "-c", config, "-w", "x", "--output",
                          str(tmp_path / "o"), "--video"]) == 1
    assert "--video needs a video file" in capsys.readouterr().err
    assert timeline_main(["-i", video, "-c", config, "--output", str(tmp_path / "o")]) == 1
    assert "needs -w WEIGHTS" in capsys.readouterr().err
    assert timeline_main(["-i", str(tmp_path / "none.mp4"), "-c", config, "-w", "x",
                          "--output", str(tmp_path / "o")]) == 1
    assert "video not found" in capsys.readouterr().err
    weights = tmp_path / "w.pdparams"
    save_checkpoint(make_model(), weights)
    assert timeline_main(["-i", video, "-c", config, "-w", str(weights), "--window", "-1",
                          "--output", str(tmp_path / "o")]) == 1
    assert "must be positive" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "o")


@pytest.mark.skipif(not os.path.isdir(VIDEOS), reason="../shared/videos is absent")
def test_real_videos(tmp_path):
    model = make_model()
    prep = frame_preprocessor(pipeline())
    for name in ("example.avi", "demo.mp4"):
        fps, _, frames = read_frames(os.path.join(VIDEOS, name))
        plan = WindowPlan.from_pipeline(pipeline(), fps, 2.0, 1.0)
        record, probs = run_timeline(frames, plan, _engine(model), prep)
        n = record["frames"]
        assert len(record["windows"]) == max(1, (n - plan.window) // plan.stride + 1)
        assert probs.shape == (len(record["windows"]), 10)
        assert record["segments"][-1]["end_frame"] == n
        assert record["duration"] == pytest.approx(n / fps)


def test_an_error_while_reading_ahead_reaches_the_caller(tmp_path):
    """Decoding runs ahead in a thread; its error is raised in the caller, once, by name."""
    video = write_video(tmp_path / "v.avi", 40)

    def broken(frame):
        raise RuntimeError("preprocess failed on purpose")
    with pytest.raises(RuntimeError, match="on purpose"):
        run_timeline(read_frames(video)[2], _plan(1.0, 0.5), _engine(make_model()), broken)
