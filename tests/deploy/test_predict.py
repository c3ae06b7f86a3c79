"""predict as people use it: names and scores, the same top-1 as the test pipeline + dygraph model
for videos AND frame folders from one model, inputs from folders/globs/lists (spaces, --prefix),
results written as they come and resumed, short videos handled as --test handles them, the
engine named first, failures reported by name with a non-zero exit."""
import json
import os
import shutil

import numpy as np
import paddle
import pytest
import yaml

from paddlevideo.deploy.cli import export_main, online_main, predict_main
from paddlevideo.deploy.export import export_model
from paddlevideo.deploy.inputs import Input, collect_inputs
from paddlevideo.deploy.labels import config_label_list, load_label_list
from paddlevideo.deploy.online import export_online
from paddlevideo.deploy.predictor import VideoPredictor
from paddlevideo.deploy.runtime import InferenceEngine

from .conftest import (LABELS, NUM_SEG, REPO, SIZE, make_model, pipeline, save_checkpoint,
                       write_config, write_frames, write_labels, write_video)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A model exported by the tool from a *frames* config with a label list (ONNX by default)."""
    tmp = tmp_path_factory.mktemp("frames_model")
    model = make_model(seed=21)
    cfg = write_config(tmp / "tsm_frames.yaml", frames=True,
                       label_list=write_labels(tmp / "labels.txt"))
    out = tmp / "model"
    assert export_main(["-c", cfg, "-p", save_checkpoint(model, tmp / "w.pdparams"),
                        "-o", str(out)]) == 0
    return model, str(out)


def _dygraph(model, imgs):
    with paddle.no_grad():
        return model(paddle.to_tensor(imgs[None])).numpy()[0]


def _clip(loader, item, decode):
    results = {"rng": np.random.default_rng(0)}
    if decode == "FrameDecoder":
        results.update(frame_dir=item, frames_len=len(os.listdir(item)), suffix="img_{:05}.jpg")
    else:
        results["filename"] = item
    return loader.Compose(pipeline(decode={"name": decode}))(results)["imgs"]


def test_videos_and_frame_folders_same_top1_as_test_pipeline(exported, videos, loader, tmp_path,
                                                             capsys):
    """One model exported from a frames config predicts on videos and on frame folders (a
    space in the folder's name), each through its own decoder, with names, as --test would."""
    model, model_dir = exported
    frames = tmp_path / "frames of" / "example"
    write_frames(os.path.join(videos, "example.avi"), frames, count=40)
    out = tmp_path / "results.jsonl"
    code = predict_main(["-i", videos, "-i", str(frames), "--model_dir", model_dir,
                         "--output", str(out), "--batch_size", "2", "--benchmark"])
    assert code == 0
    printed = capsys.readouterr().out
    assert printed.splitlines()[0].startswith("predict: ONNX Runtime fp32 (CPU")
    assert "benchmark (median): preprocess" in printed
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(os.path.basename(r["file"]), r["kind"]) for r in rows] == [
        ("demo.mp4", "video"), ("example.avi", "video"), ("example", "frames")]
    for r in rows:
        decode = "FrameDecoder" if r["kind"] == "frames" else "VideoDecoder"
        logits = _dygraph(model, _clip(loader, r["file"], decode))
        assert int(logits.argmax()) == r["top1_index"] and r["top1"] == f"name_{r['top1_index']}"
        assert r["top1"] in printed and len(r["topk"]) == 5
        p = np.exp(logits - logits.max())
        assert abs(p.max() / p.sum() - r["top1_score"]) < 1e-4


def test_inputs_from_folders_globs_and_lists(tmp_path):
    """Class subfolders are searched, frame folders found, globs expanded, list paths may hold
    spaces and PaddleVideo's label fields, and start from --prefix when given."""
    root = tmp_path / "data"
    for rel in ("class a/clip one.avi", "class b/two.mp4", "class b/notes.txt"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"x")
    frames = root / "class b" / "frames one"
    frames.mkdir()
    for i in range(1, 4):
        (frames / f"img_{i:05d}.jpg").write_bytes(b"x")
    found = collect_inputs(str(root))
    assert found == [Input(str(root / "class a" / "clip one.avi")),
                     Input(str(frames), "frames"), Input(str(root / "class b" / "two.mp4"))]
    assert collect_inputs(str(root / "**" / "*.avi")) == [Input(str(root / "class a" /
                                                                    "clip one.avi"))]
    listing = tmp_path / "lists" / "test.list"
    listing.parent.mkdir()
    listing.write_text("class a/clip one.avi 3\n# a comment\n\nclass b/frames one 3 1\n"
                       "class b/two.mp4\nclass b/gone.mp4 2\n")
    got = collect_inputs(str(listing), prefix=str(root))
    assert got == [Input(str(root / "class a" / "clip one.avi")),
                   Input(str(frames), "frames", 3), Input(str(root / "class b" / "two.mp4")),
                   Input(str(root / "class b" / "gone.mp4"))]
    with pytest.raises(Exception, match="nothing matches"):
        collect_inputs(str(root / "*.webm"))
    with pytest.raises(Exception, match="--prefix folder not found"):
        collect_inputs(str(listing), prefix=str(tmp_path / "nowhere"))


def test_output_folder_made_results_streamed_and_resumed(exported, videos, tmp_path, capsys,
                                                        monkeypatch):
    """--output's folder is created; a run stopped (Ctrl-C) after one input keeps that result;
    the same command continues with the rest; another model's output is refused."""
    _, model_dir = exported
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a.avi", "b.avi", "c.avi"):
        shutil.copy(os.path.join(videos, "example.avi"), folder / name)
    out = tmp_path / "new" / "deeper" / "results.jsonl"
    calls = {"n": 0}
    original = VideoPredictor.preprocess

    def stop_at_second(self, item):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return original(self, item)

    monkeypatch.setattr(VideoPredictor, "preprocess", stop_at_second)
    args = ["-i", str(folder), "--model_dir", model_dir, "--output", str(out)]
    assert predict_main(args) == 130
    assert "run the same command to continue" in capsys.readouterr().err
    first = [json.loads(line)["file"] for line in out.read_text().splitlines()]
    assert first == [str(folder / "a.avi")]
    monkeypatch.setattr(VideoPredictor, "preprocess", original)
    assert predict_main(args) == 0
    assert "1 of 3 input(s) already predicted" in capsys.readouterr().out
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [os.path.basename(r["file"]) for r in rows] == ["a.avi", "b.avi", "c.avi"]
    assert len({r["top1_index"] for r in rows}) == 1            # the same video three times
    assert predict_main(args + ["--backend", "paddle", "--precision", "fp32"]) == 1
    assert "holds results of another model or engine" in capsys.readouterr().err
    assert predict_main(["-i", str(folder), "--model_dir", model_dir, "--output", str(folder)]) == 1
    assert capsys.readouterr().err.strip().endswith("is a folder; give a file name in it.")


def test_short_video_is_predicted_as_test_does(exported, loader, tmp_path, capsys):
    """Fewer frames than num_seg: the sampler repeats frames, as in --test; the line says so."""
    model, model_dir = exported
    short = write_video(tmp_path / "short.avi", NUM_SEG - 2)
    out = tmp_path / "r.jsonl"
    assert predict_main(["-i", short, "--model_dir", model_dir, "--output", str(out)]) == 0
    assert f"2 frames, fewer than num_seg={NUM_SEG}: frames repeat" in capsys.readouterr().out
    row = json.loads(out.read_text())
    assert "fewer than num_seg" in row["note"]
    assert row["top1_index"] == int(_dygraph(model, _clip(loader, short, "VideoDecoder")).argmax())


def test_failures_reported_by_name_and_exit_nonzero(exported, videos, tmp_path, capsys):
    _, model_dir = exported
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(os.path.join(videos, "example.avi"), folder / "good.avi")
    (folder / "corrupt.mp4").write_bytes(b"not a video" * 100)
    listing = tmp_path / "list.txt"
    listing.write_text(f"{folder / 'good.avi'} 5\n{folder / 'corrupt.mp4'} 3\n{folder / 'gone.mp4'}\n")
    code = predict_main(["-i", str(listing), "--model_dir", model_dir])
    captured = capsys.readouterr()
    assert code == 1
    assert "good.avi: top-1 name_" in captured.out
    assert "corrupt.mp4: FAILED" in captured.err and "gone.mp4: FAILED" in captured.err
    assert "2 of 3 input(s) failed" in captured.err
    assert "Traceback" not in captured.err


def test_onnx_only_when_its_check_matches_and_export_replaces_whole(exported, tmp_path, capsys,
                                                                   monkeypatch):
    """A NAME.onnx whose recorded check is for another file is never run; a new export removes
    the old ONNX file; an export whose check fails leaves the earlier export intact."""
    _, model_dir = exported
    copy = tmp_path / "copy"
    shutil.copytree(model_dir, copy)
    info_file = copy / "TSM.infer.yaml"
    info = yaml.safe_load(info_file.read_text())
    info["onnx_check"]["sha256"] = "0" * 16
    info_file.write_text(yaml.safe_dump(info))
    auto = InferenceEngine(str(copy))
    assert auto.backend == "paddle" and "not the file its inference config's ONNX check" in auto.note
    with pytest.raises(Exception, match="not the file its inference config's ONNX check passed"):
        InferenceEngine(str(copy), backend="onnxruntime")
    before = info_file.read_bytes()
    import paddlevideo.deploy.export as export_module

    def disagree(*args, **kwargs):
        raise export_module.DeployError("the exported program gives other logits (test)")

    monkeypatch.setattr(export_module, "check_against_model", disagree)
    with pytest.raises(Exception, match="other logits"):
        export_model(make_model(seed=5), str(copy), "TSM", NUM_SEG, SIZE)
    assert info_file.read_bytes() == before and (copy / "TSM.onnx").is_file()
    assert sorted(os.listdir(copy)) == sorted(os.listdir(model_dir))      # no temporary left
    monkeypatch.undo()
    export_model(make_model(seed=5), str(copy), "TSM", NUM_SEG, SIZE)
    assert not (copy / "TSM.onnx").exists()
    assert "onnx_check" not in yaml.safe_load(info_file.read_text())


def test_export_names_classes_from_the_config_label_list(tmp_path, capsys):
    """A 400-class model exported with a config whose DATASET.label_list is the shipped Kinetics
    list predicts names, not class_<i>; the old INFERENCE.label_list is still read."""
    kinetics = os.path.join(REPO, "data", "kinetics400_label_list.txt")
    model = make_model(seed=22, classes=400)
    bias = np.zeros(400, "float32")
    bias[267] = 50.0                                   # every clip: class 267
    model.head.fc.bias.set_value(bias)
    cfg = write_config(tmp_path / "k400.yaml", classes=400, label_list=kinetics)
    out = tmp_path / "out"
    assert export_main(["-c", cfg, "-p", save_checkpoint(model, tmp_path / "w.pdparams"),
                        "-o", str(out), "--no_onnx"]) == 0
    video = write_video(tmp_path / "v.avi", 8)
    assert predict_main(["-i", video, "--model_dir", str(out), "--top_k", "1"]) == 0
    assert f"{video}: top-1 riding_a_bike" in capsys.readouterr().out
    assert config_label_list({"INFERENCE": {"label_list": kinetics}}) == kinetics
    assert config_label_list({"DATASET": {"label_list": "a.txt"},
                              "INFERENCE": {"label_list": "b.txt"}}) == "a.txt"


def test_missing_model_and_bad_camera_messages(tmp_path, capsys):
    assert predict_main(["-i", "x.mp4", "--model_dir", str(tmp_path / "none")]) == 1
    assert capsys.readouterr().err.strip() == f"error: model dir not found: {tmp_path / 'none'}"
    model = make_model("unidirectional", seed=2)
    export_online(model, str(tmp_path / "on"), "TSM_online", SIZE,
                  {"PIPELINE": pipeline(), "labels": [f"name_{i}" for i in range(10)]})
    assert online_main(["-i", "96", "--model_dir", str(tmp_path / "on")]) == 1
    assert "cannot open camera '96'" in capsys.readouterr().err


def test_online_tool_on_real_video(videos, loader, tmp_path, capsys):
    model = make_model("unidirectional", seed=2)
    export_online(model, str(tmp_path / "on"), "TSM_online", SIZE,
                  {"PIPELINE": pipeline(), "labels": [f"name_{i}" for i in range(10)]})
    out = tmp_path / "new" / "frames.jsonl"
    code = online_main(["-i", os.path.join(videos, "example.avi"), "--model_dir",
                        str(tmp_path / "on"), "--max_frames", "12", "--output", str(out),
                        "--precision", "fp32", "--quiet"])
    assert code == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["frame"] for r in rows] == list(range(12))
    assert all(r["label"].startswith("name_") and r["latency_ms"] > 0 for r in rows)
    assert "latency per frame: median" in capsys.readouterr().out


def test_kinetics_label_list():
    if not os.path.isfile(LABELS):
        pytest.skip("no Kinetics label list")
    names = load_label_list(LABELS, 400)
    assert names[5] == "archery" and names[6] == "arm_wrestling"


def test_a_full_disk_under_output_is_one_line_not_a_second_traceback(exported, videos, tmp_path,
                                                                      capsys, monkeypatch):
    """Every write of --output fails with ENOSPC (it goes to /dev/full): predict stops with one
    `error:` line naming the file and the full disk; closing the file does not raise again."""
    import paddlevideo.deploy.results_file as results_file
    _, model_dir = exported
    real_open = open
    monkeypatch.setattr(results_file, "open", lambda path, mode="r", **kw: real_open(
        "/dev/full", mode, **kw) if mode == "a" else real_open(path, mode, **kw), raising=False)
    out = tmp_path / "r.jsonl"
    code = predict_main(["-i", os.path.join(videos, "example.avi"), "--model_dir", model_dir,
                         "--output", str(out)])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 1 and "Traceback" not in err and len(lines) == 1, err
    assert lines[0].startswith(f"error: cannot write --output {out}: No space left on device")
