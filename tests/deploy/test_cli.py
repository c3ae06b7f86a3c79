"""The deploy tools' command line: export refuses what would write a wrong model (no weights, a
head of another class count, an override typed as the output folder), repeated flags all apply,
overrides reach predict and online_predict, and an unreachable weights name is the same one line
in every tool."""
import os

import pytest
import yaml

from paddlevideo.deploy.cli import (export_main, export_parser, online_main, online_parser,
                                    predict_main, predict_parser)

from .conftest import (VIDEOS, make_model, save_checkpoint, write_config, write_labels)


@pytest.fixture
def ckpt(tmp_path):
    return save_checkpoint(make_model(seed=41), tmp_path / "w.pdparams")


def test_export_without_weights_or_with_both_is_refused_and_writes_nothing(tmp_path, ckpt,
                                                                          capsys):
    cfg = write_config(tmp_path / "tsm.yaml")
    out = tmp_path / "out"
    assert export_main(["-c", cfg, "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: no weights to export") and "--random_weights" in err
    assert len(err.strip().splitlines()) == 1
    assert export_main(["-c", cfg, "-p", ckpt, "--random_weights", "-o", str(out)]) == 1
    assert "not both" in capsys.readouterr().err
    assert not out.exists()


def test_override_typed_as_output_folder_is_refused_before_anything(tmp_path, ckpt, capsys,
                                                                    monkeypatch):
    cfg = write_config(tmp_path / "tsm.yaml")
    monkeypatch.chdir(tmp_path)
    before = sorted(os.listdir(tmp_path))
    with pytest.raises(SystemExit) as stop:
        export_main(["-c", cfg, "-p", ckpt, "-o", "MODEL.head.num_classes=2"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "pass overrides with --override MODEL.head.num_classes=2" in err
    assert sorted(os.listdir(tmp_path)) == before            # no folder of that name, nothing


def test_head_of_another_class_count_is_refused_by_export_and_online(tmp_path, capsys):
    """A checkpoint trained for 5 classes with a 10-class config: never a fresh head."""
    uni = save_checkpoint(make_model("unidirectional", seed=42, classes=5), tmp_path / "w5.pdparams")
    cfg = write_config(tmp_path / "tsm.yaml", mode="unidirectional")
    out = tmp_path / "out"
    assert export_main(["-c", cfg, "-p", uni, "-o", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error:") and "head has 5 classes" in err and "has 10" in err
    assert not out.exists()
    if os.path.isdir(VIDEOS):
        video = os.path.join(VIDEOS, "example.avi")
        assert online_main(["-i", video, "-c", cfg, "-w", uni, "--quiet"]) == 1
        online_err = capsys.readouterr().err.strip().splitlines()[-1]
        assert online_err == err


def test_repeated_flags_all_apply():
    """Each repeatable flag keeps every value, whether repeated or given several at once."""
    ns = export_parser().parse_args(["-c", "c.yaml", "--override", "A=1", "--override", "B=2",
                                     "C=3"])
    assert ns.override == ["A=1", "B=2", "C=3"]
    ns = predict_parser().parse_args(["-i", "a.mp4", "-i", "b.mp4", "c dir", "-o", "A=1",
                                      "--override", "B=2", "-o", "C=3"])
    assert ns.input_file == ["a.mp4", "b.mp4", "c dir"] and ns.override == ["A=1", "B=2", "C=3"]
    ns = online_parser().parse_args(["-i", "0", "-o", "A=1", "-o", "B=2", "-w", "w.pdparams"])
    assert ns.override == ["A=1", "B=2"] and ns.weights == "w.pdparams"
    with pytest.raises(SystemExit):
        predict_parser().parse_args(["-i", "a.mp4", "-o", "not-a-key-value"])
    # a one-value flag given twice would silently keep the last: refused
    for parser, argv in ((export_parser(), ["-c", "a.yaml", "-c", "b.yaml"]),
                         (predict_parser(), ["-i", "a.mp4", "--model_dir", "x", "--model_dir", "y"]),
                         (online_parser(), ["-i", "0", "-w", "a", "-p", "b"])):
        with pytest.raises(SystemExit):
            parser.parse_args(argv)


def test_export_applies_every_override_and_records_random_weights(tmp_path, capsys):
    cfg = write_config(tmp_path / "tsm.yaml")
    out = tmp_path / "out"
    assert export_main(["-c", cfg, "--random_weights", "-o", str(out), "--no_onnx",
                        "--override", "model_name=Renamed", "--override",
                        "MODEL.head.num_classes=7"]) == 0
    info = yaml.safe_load((out / "Renamed.infer.yaml").read_text())
    assert info["num_classes"] == 7 and info["random_weights"] is True and info["weights"] is None
    assert "onnx: not written (--no_onnx)" in capsys.readouterr().out
    assert predict_main(["-i", str(tmp_path / "none.mp4"), "--model_dir", str(out)]) == 1
    captured = capsys.readouterr()
    assert captured.out.splitlines()[0].startswith("predict: Paddle Inference")
    assert "exported with --random_weights: its predictions mean nothing" in captured.err


def test_unreachable_weights_name_is_one_line_in_every_tool(tmp_path, monkeypatch, capsys):
    from paddlevideo.modeling import weights
    monkeypatch.setenv("PADDLEVIDEO_HOME", str(tmp_path / "cache"))
    monkeypatch.setitem(weights.PRETRAINED, "TSM_k400", weights.WeightsSpec(
        "TSM_k400", "http://127.0.0.1:9/TSM_k400.pdparams", "unreachable in this test"))
    cfg = write_config(tmp_path / "tsm.yaml", mode="unidirectional")
    lines = []
    assert export_main(["-c", cfg, "-p", "TSM_k400", "-o", str(tmp_path / "out")]) == 1
    lines.append(capsys.readouterr().err)
    assert online_main(["-i", "0", "-c", cfg, "-w", "TSM_k400"]) == 1
    lines.append(capsys.readouterr().err)
    for err in lines:
        assert err.startswith("error: weights 'TSM_k400': could not download "
                              "http://127.0.0.1:9/TSM_k400.pdparams")
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert lines[0] == lines[1]


def test_online_takes_overrides_and_shows_names(tmp_path, videos, capsys):
    """-o DATASET.label_list=FILE reaches the config: the frame lines carry its names, not the
    config's own list's."""
    ckpt = save_checkpoint(make_model("unidirectional", seed=43), tmp_path / "w.pdparams")
    own = tmp_path / "own.txt"
    own.write_text("".join(f"{i} own_{i}\n" for i in range(10)))
    cfg = write_config(tmp_path / "tsm.yaml", mode="unidirectional", label_list=own)
    names = write_labels(tmp_path / "names.txt")
    assert online_main(["-i", os.path.join(videos, "example.avi"), "-c", cfg, "-w", ckpt,
                        "-o", f"DATASET.label_list={names}", "--max_frames", "3"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("online: dygraph fp32")
    assert len([line for line in out if line.startswith("frame ") and "name_" in line]) == 3
    assert "own_" not in "".join(out)
    assert online_main(["-i", os.path.join(videos, "example.avi"), "-c", cfg, "--quiet"]) == 1
    assert "needs its weights: add -w WEIGHTS" in capsys.readouterr().err
