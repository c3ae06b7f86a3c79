"""--test: a wrong head stops it with nothing written, results are named after the weights and
never overwrite another test's, errors reach test.log, the engine is built before any video is
read, class names come from the label list and must fit the head."""
import json
import os
import re

import paddle
import pytest

from paddlevideo.modeling import build_model
from paddlevideo.tasks import test as test_task
from paddlevideo.tasks.cli import main
from paddlevideo.utils.config import get_config
from synthetic import SyntheticMotion, write_config

RESULTS = ("test_results.json", "predictions.jsonl", "confusion_matrix.png")


def checkpoint(path, cfg_path, classes=4, seed=0):
    """Random weights of the config's model with `classes` classes, saved at `path`."""
    os.makedirs(os.path.dirname(str(path)), exist_ok=True)
    paddle.seed(seed)
    cfg = get_config(cfg_path, [f"MODEL.head.num_classes={classes}"])
    paddle.save(build_model(cfg.MODEL, load_pretrained=False).state_dict(), str(path))
    return str(path)


def result_files(root):
    return sorted(os.path.join(d, f) for d, _, files in os.walk(root) for f in files
                  if f in RESULTS or f.startswith(".partial-"))


@pytest.fixture
def setup(tmp_path):
    """A tiny test set (8 videos, 4 classes, ResNet-18 at 32 px, 4 segments) and its config."""
    cfg_path = write_config(tmp_path, test=8, batch_size=4)
    return tmp_path, cfg_path


def test_a_head_of_another_class_count_stops_the_test_and_writes_no_results(setup, capsys):
    tmp, cfg_path = setup
    weights = checkpoint(tmp / "five.pdparams", cfg_path, classes=5)
    code = main(["-c", cfg_path, "--test", "-w", weights, "-o", "DATASET.test_num_workers=0"])
    err = capsys.readouterr().err
    assert code == 1
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err
    assert weights in lines[0], lines[0]
    rest = lines[0].replace(weights, "")                     # both class counts are named
    assert re.search(r"\b5\b", rest) and re.search(r"\b4\b", rest), lines[0]
    assert not (tmp / "out").exists()                         # nothing created, not even a log


def test_results_are_keyed_by_weights_list_and_protocol_and_never_overwrite_another_test(setup):
    tmp, cfg_path = setup
    cfg = get_config(cfg_path)
    first = checkpoint(tmp / "a" / "best.pdparams", cfg_path, seed=1)
    r1 = test_task.test_model(cfg, first, engine="dygraph")
    plain = tmp / "out" / "test_best__SyntheticMotion__4x1x1_32"
    assert r1["results_dir"] == str(plain) and sorted(os.listdir(plain)) == \
        sorted(RESULTS + ("test.log",))
    saved = (plain / "test_results.json").read_text()
    assert json.loads(saved)["weights_sha256"] == r1["weights_sha256"]
    assert r1["protocol_id"] == "4x1x1_32" and "num_samples" in r1["test_set"]

    # other weights with the same file name get their own folder; the first results stay
    second = checkpoint(tmp / "b" / "best.pdparams", cfg_path, seed=2)
    r2 = test_task.test_model(cfg, second, engine="dygraph")
    assert r2["results_dir"].startswith(str(plain) + "_") and len(r2["results_dir"]) == \
        len(str(plain)) + 9
    assert (plain / "test_results.json").read_text() == saved
    log2 = (tmp / "out" / os.path.basename(r2["results_dir"]) / "test.log").read_text()
    assert f"{plain} holds the results of another test" in log2 and first in log2

    # the same weights on another test set (6 videos) get another folder; the first stays
    r3 = test_task.test_model(get_config(cfg_path, ["DATASET.test.num_samples=6"]), first,
                              engine="dygraph")
    assert r3["results_dir"] not in (str(plain), r2["results_dir"]) and r3["evaluated"] == 6
    assert (plain / "test_results.json").read_text() == saved

    # the same weights, list and protocol again replace their own results, and say so
    r4 = test_task.test_model(get_config(cfg_path), first, engine="dygraph")
    assert r4["results_dir"] == str(plain) and r4["evaluated"] == 8
    assert "replacing the earlier results of these weights" in (plain / "test.log").read_text()
    assert len(os.listdir(tmp / "out")) == 3


def test_the_engine_is_built_for_the_pipeline_shape_before_any_video_is_read(setup, monkeypatch):
    tmp, cfg_path = setup
    weights = checkpoint(tmp / "w.pdparams", cfg_path)
    loads, built = [], []
    load = SyntheticMotion.load
    monkeypatch.setattr(SyntheticMotion, "load", lambda self, i, rng=None: (
        loads.append(i), load(self, i, rng))[1])
    make_runner = test_task.make_runner

    def record(model, shape, engine, threads):
        built.append((list(shape), len(loads)))
        return make_runner(model, shape, engine, threads)

    monkeypatch.setattr(test_task, "make_runner", record)
    result = test_task.test_model(get_config(cfg_path, ["DATASET.test.num_views=2"]), weights,
                                  engine="dygraph")
    assert built == [([2 * 4, 3, 32, 32], 0)]                # 2 views x 4 segments, 32 px
    assert len(loads) == 8 and result["evaluated"] == 8


def test_class_names_come_from_the_label_list_and_must_fit_the_head(setup, capsys):
    tmp, cfg_path = setup
    weights = checkpoint(tmp / "w.pdparams", cfg_path)
    names = tmp / "names.txt"
    names.write_text("".join(f"{i} motion_{i}\n" for i in range(4)))
    result = test_task.test_model(get_config(cfg_path, [f"DATASET.label_list={names}"]), weights,
                                  engine="dygraph")
    assert result["class_names_from"] == str(names)
    rows = [json.loads(x) for x in open(os.path.join(result["results_dir"], "predictions.jsonl"))]
    assert {r["label_name"] for r in rows} == {f"motion_{i}" for i in range(4)}

    missing = test_task.test_model(get_config(cfg_path, [f"DATASET.label_list={tmp}/none.txt"]),
                                   weights, engine="dygraph")      # only the names are lost
    assert missing["class_names_from"] is None and missing["top1"] == result["top1"]

    names.write_text("".join(f"{i} motion_{i}\n" for i in range(3)))
    code = main(["-c", cfg_path, "--test", "-w", weights, "-o", f"DATASET.label_list={names}"])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err and str(names) in err
    rest = err.replace(str(names), "")                       # both counts are named
    assert re.search(r"\b3\b", rest) and re.search(r"\b4\b", rest), err
