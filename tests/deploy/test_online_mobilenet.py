"""The original gesture demo's network (mobilenetv2_jester_online.pth.tar), exported with
`export_model.py --online` unchanged, gives the original's per-frame logits in Paddle Inference
and in ONNX Runtime (within 1e-4 x their std, the same top-1 on every frame)."""
import os

import numpy as np
import pytest
import yaml

from paddlevideo.deploy import OnlineStepEngine
from paddlevideo.deploy.cli import export_main

from .conftest import REPO

MBV2 = os.path.join(os.path.dirname(REPO), "shared", "reference", "torch_tsm", "mobilenetv2")
CONFIG = os.path.join(REPO, "configs", "recognition", "tsm",
                      "tsm_mobilenetv2_online_jester_frames.yaml")


def assert_within(got, want, tol=1e-4):
    diff = float(np.abs(got - want).max())
    assert diff <= tol * float(want.std()), (diff, float(want.std()))
    np.testing.assert_array_equal(got.argmax(-1), want.argmax(-1))


def stream(step, frames):
    buffers, out = step.init_buffers(), []
    for frame in frames:
        logits, buffers = step(frame[None], buffers)
        out.append(np.asarray(logits)[0])
    return np.stack(out)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    if not os.path.isdir(MBV2):
        pytest.skip(f"{MBV2} is absent: it holds the original code's MobileNetV2 TSM files")
    from paddlevideo.deploy.onnx_export import onnx_available
    out = tmp_path_factory.mktemp("jester_export")
    labels = out / "labels.txt"
    labels.write_text("".join(f"{i} gesture_{i}\n" for i in range(27)))
    onnx = ["--no_onnx"] if onnx_available() else ["--onnx"]
    assert export_main(["-c", CONFIG, "-w", os.path.join(MBV2, "mobilenetv2_jester_online.pth.tar"),
                        "-o", str(out), "--online", "--label_list", str(labels),
                        "--override", f"DATASET.label_list={labels}"] + onnx) == 0
    return out / "online", onnx == ["--onnx"]


def test_exported_online_step_gives_the_originals_logits_in_paddle_inference(exported):
    folder, _ = exported
    engine = OnlineStepEngine(str(folder), precision="fp32", cpu_threads=1)
    assert len(engine.buffer_shapes) == 10
    frames = np.load(os.path.join(MBV2, "online_frames.npy"))
    assert_within(stream(engine, frames), np.load(os.path.join(MBV2, "online_logits.npy")))


def test_exported_online_step_gives_the_originals_logits_in_onnx_runtime(exported):
    folder, with_onnx = exported
    if not with_onnx:
        pytest.skip("paddle2onnx/onnxruntime are not installed")
    from paddlevideo.deploy.online_onnx import OnlineOnnxStep
    (config,) = [p for p in os.listdir(folder) if p.endswith(".infer.yaml")]
    info = yaml.safe_load((folder / config).read_text())
    assert info["onnx_check"]["passed"] is True
    step = OnlineOnnxStep(str(folder / info["onnx_check"]["file"]), info["buffers"], threads=1)
    frames = np.load(os.path.join(MBV2, "online_frames.npy"))
    assert_within(stream(step, frames), np.load(os.path.join(MBV2, "online_logits.npy")))


def test_online_predict_with_the_demos_rules_writes_an_annotated_video(exported, tmp_path, capsys):
    import cv2
    from paddlevideo.deploy.cli import online_main
    folder, _ = exported
    video = os.path.join(os.path.dirname(REPO), "shared", "videos", "demo.mp4")
    if not os.path.isfile(video):
        pytest.skip(f"{video} is absent")
    labels = os.path.join(REPO, "data", "jester_label_list.txt")
    annotated, records = tmp_path / "out" / "labelled.mp4", tmp_path / "records.jsonl"
    argv = ["-i", video, "--model_dir", str(folder), "--label_list", labels, "--max_frames", "14",
            "--cpu_threads", "1", "--display", "off", "--quiet", "--output", str(records)]
    assert online_main(argv + ["--demo_rules", "--annotated", str(annotated)]) == 0
    shown = [yaml.safe_load(line)["label"] for line in records.read_text().splitlines()]
    assert len(shown) == 14
    names = [line.split(" ", 1)[1] for line in open(labels).read().splitlines()]
    hidden = {"Pulling Hand In", "Rolling Hand Backward", "Rolling Hand Forward",
              "Turning Hand Clockwise", "Turning Hand Counterclockwise", "Doing other things"}
    assert not hidden & set(shown) and set(shown) <= set(names)
    assert all(a == b or b == c for a, b, c in zip(shown, shown[1:], shown[2:]))  # no flicker
    cap = cv2.VideoCapture(str(annotated))
    count, height = 0, None
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        count, height = count + 1, frame.shape[0]
    assert count == 14 and height > int(cv2.VideoCapture(video).get(cv2.CAP_PROP_FRAME_HEIGHT))
    # a class name the label list lacks is refused in one line, not ignored
    assert online_main(argv + ["--hide", "Waving"]) == 1
    assert "'Waving' is not in the label list" in capsys.readouterr().err


def test_online_predict_in_dygraph_takes_label_list_over_the_configs_absent_one(tmp_path, capsys):
    """The Jester config names data/jester/label_list.txt (written by data/jester.py); with
    --label_list given, that file need not exist."""
    from paddlevideo.deploy.cli import online_main
    video = os.path.join(os.path.dirname(REPO), "shared", "videos", "demo.mp4")
    weights = os.path.join(MBV2, "mobilenetv2_jester_online.pth.tar")
    if not (os.path.isfile(video) and os.path.isfile(weights)):
        pytest.skip("../shared's demo.mp4 or the demo's weights are absent")
    labels = os.path.join(REPO, "data", "jester_label_list.txt")
    assert online_main(["-i", video, "-c", CONFIG, "-w", weights, "--label_list", labels,
                        "--max_frames", "3", "--display", "off", "--demo_rules",
                        "-o", f"DATASET.label_list={tmp_path}/absent.txt"]) == 0
    assert "3 frames; latency per frame" in capsys.readouterr().out
