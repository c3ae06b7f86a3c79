"""predict: names and scores on real videos, same top-1 as the test pipeline + dygraph model,
failures reported by name with a non-zero exit."""
import json
import os
import shutil

import numpy as np
import paddle
import pytest

from paddlevideo.deploy.export import export_model
from paddlevideo.deploy.cli import online_main, predict_main
from paddlevideo.deploy.online import export_online

from .conftest import LABELS, NUM_SEG, SIZE, make_model, pipeline


def _labels(n):
    return [f"name_{i}" for i in range(n)]


@pytest.fixture
def exported(tmp_path):
    model = make_model(seed=21)
    out = tmp_path / "model"
    export_model(model, str(out), "TSM", NUM_SEG, SIZE,
                 infer_config={"PIPELINE": pipeline(), "labels": _labels(10)})
    return model, str(out)


def test_predict_names_and_same_top1_as_test_pipeline(exported, videos, loader, tmp_path, capsys):
    model, model_dir = exported
    files = [os.path.join(videos, f) for f in ("example.avi", "demo.mp4")]
    out = tmp_path / "results.jsonl"
    code = predict_main(["-i", videos, "--model_dir", model_dir, "--output", str(out),
                         "--precision", "fp32", "--batch_size", "2", "--benchmark"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "benchmark (median): preprocess" in printed
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [os.path.basename(r["file"]) for r in rows] == ["demo.mp4", "example.avi"]
    compose = loader.Compose(pipeline())
    for r in rows:
        assert r["top1"] == f"name_{r['top1_index']}" and r["top1"] in printed
        assert len(r["topk"]) == 5 and r["topk"][0]["score"] >= r["topk"][-1]["score"]
        imgs = compose({"filename": r["file"], "rng": np.random.default_rng(0)})["imgs"]
        with paddle.no_grad():
            logits = model(paddle.to_tensor(imgs[None])).numpy()[0]
        assert int(logits.argmax()) == r["top1_index"]
        p = np.exp(logits - logits.max())
        assert abs(p.max() / p.sum() - r["top1_score"]) < 1e-4
    assert files  # both real videos were predicted


def test_failures_reported_by_name_and_exit_nonzero(exported, videos, loader, tmp_path, capsys):
    _, model_dir = exported
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(os.path.join(videos, "example.avi"), folder / "good.avi")
    (folder / "corrupt.mp4").write_bytes(b"not a video" * 100)
    listing = tmp_path / "list.txt"
    listing.write_text(f"{folder / 'good.avi'} 5\n{folder / 'corrupt.mp4'} 3\n{folder / 'gone.mp4'}\n")
    code = predict_main(["-i", str(listing), "--model_dir", model_dir, "--precision", "fp32"])
    captured = capsys.readouterr()
    assert code == 1
    assert "good.avi: top-1 name_" in captured.out
    assert "corrupt.mp4: FAILED" in captured.err and "gone.mp4: FAILED" in captured.err
    assert "2 of 3 input(s) failed" in captured.err
    assert "Traceback" not in captured.err


def test_short_video_is_a_clear_error(exported, videos, loader, tmp_path, capsys):
    cv2 = pytest.importorskip("cv2")
    _, model_dir = exported
    short = str(tmp_path / "short.avi")
    writer = cv2.VideoWriter(short, cv2.VideoWriter_fourcc(*"MJPG"), 25, (96, 80))
    for i in range(NUM_SEG - 2):
        writer.write(np.full((80, 96, 3), 30 * i, np.uint8))
    writer.release()
    code = predict_main(["-i", short, "--model_dir", model_dir, "--precision", "fp32"])
    err = capsys.readouterr().err
    assert code == 1 and f"fewer than the model's num_seg={NUM_SEG}" in err
    assert predict_main(["-i", short, "--model_dir", model_dir, "--allow_short",
                         "--precision", "fp32"]) == 0


def test_missing_model_and_bad_camera_messages(tmp_path, capsys):
    assert predict_main(["-i", "x.mp4", "--model_dir", str(tmp_path / "none")]) == 1
    assert "error: model dir not found" in capsys.readouterr().err
    model = make_model("unidirectional", seed=2)
    export_online(model, str(tmp_path / "on"), "TSM_online", SIZE,
                  {"PIPELINE": pipeline(), "labels": _labels(10)})
    assert online_main(["-i", "96", "--model_dir", str(tmp_path / "on")]) == 1
    assert "cannot open camera '96'" in capsys.readouterr().err


def test_online_tool_on_real_video(videos, loader, tmp_path, capsys):
    model = make_model("unidirectional", seed=2)
    export_online(model, str(tmp_path / "on"), "TSM_online", SIZE,
                  {"PIPELINE": pipeline(), "labels": _labels(10)})
    out = tmp_path / "frames.jsonl"
    code = online_main(["-i", os.path.join(videos, "example.avi"), "--model_dir",
                        str(tmp_path / "on"), "--max_frames", "12", "--output", str(out),
                        "--precision", "fp32", "--quiet"])
    assert code == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["frame"] for r in rows] == list(range(12))
    assert all(r["label"].startswith("name_") and r["latency_ms"] > 0 for r in rows)
    assert "latency per frame: median" in capsys.readouterr().out


def test_kinetics_label_list(videos):
    from paddlevideo.deploy import load_label_list
    if not os.path.isfile(LABELS):
        pytest.skip("no Kinetics label list")
    names = load_label_list(LABELS, 400)
    assert names[5] == "archery" and names[6] == "arm_wrestling"
