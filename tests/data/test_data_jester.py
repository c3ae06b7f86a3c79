"""data/jester.py on a fabricated tiny Jester layout (official CSVs, frame folders), and the
online Jester config reading what it writes."""
import os

import cv2
import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = os.path.join(REPO, "configs", "recognition", "tsm",
                      "tsm_mobilenetv2_online_jester_frames.yaml")


def lines(path):
    with open(path) as f:
        return [line.rstrip("\n") for line in f if line.strip()]


def jester_tree(tmp_path):
    """20bn-jester-v1/<id>/00001.jpg ... and the three official ';'-separated CSVs; clip 9 of the
    validation CSV has no folder."""
    frames = tmp_path / "20bn-jester-v1"
    rng = np.random.default_rng(0)
    for clip, count in (("34870", 12), ("56557", 9), ("1001", 10)):
        (frames / clip).mkdir(parents=True)
        for i in range(1, count + 1):
            image = rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)
            cv2.imwrite(str(frames / clip / f"{i:05d}.jpg"), image)
    (tmp_path / "jester-v1-labels.csv").write_text(
        "Swiping Left\nSwiping Right\nNo gesture\n")
    (tmp_path / "jester-v1-train.csv").write_text("34870;Swiping Right\n56557;No gesture\n")
    (tmp_path / "jester-v1-validation.csv").write_text("1001;Swiping Left\n9;Swiping Left\n")
    return frames


def test_jester_lists_and_labels_from_the_official_csvs(tool, tmp_path, capsys):
    frames = jester_tree(tmp_path)
    out = tmp_path / "lists"
    assert tool("jester").main([
        "--labels", str(tmp_path / "jester-v1-labels.csv"),
        "--train", str(tmp_path / "jester-v1-train.csv"),
        "--val", str(tmp_path / "jester-v1-validation.csv"),
        "--frames", str(frames), "--out", str(out), "--quiet"]) == 0
    assert lines(out / "label_list.txt") == ["0 No gesture", "1 Swiping Left", "2 Swiping Right"]
    assert lines(out / "train.list") == [f"{frames}/34870 12 2", f"{frames}/56557 9 0"]
    assert lines(out / "val.list") == [f"{frames}/1001 10 1"]
    assert lines(out / "val_missing.txt") == ["9 Swiping Left"]
    assert "1 missing" in capsys.readouterr().out
    tool("jester").main(["--labels", str(tmp_path / "jester-v1-labels.csv"), "--train",
                         str(tmp_path / "jester-v1-train.csv"), "--frames", str(frames),
                         "--out", str(tmp_path / "rel"), "--relative", "--quiet"])
    assert lines(tmp_path / "rel" / "train.list")[0] == "34870 12 2"

    # the shipped online config reads these lists and frames
    from paddlevideo.config_check import load_and_check_config
    from paddlevideo.loader import build_dataset
    cfg = load_and_check_config(CONFIG, [f"DATASET.train.file_path={out}/train.list",
                                         f"DATASET.label_list={out}/label_list.txt",
                                         "MODEL.head.num_classes=3",
                                         "PIPELINE.train.transform[0].MultiScaleCrop."
                                         "target_size=32"])
    sample = build_dataset(cfg, "train")[0]
    assert np.asarray(sample[0]).shape == (8, 3, 32, 32) and int(sample[1]) == 2


@pytest.mark.parametrize("csv, text, message", [
    ("jester-v1-train.csv", "34870,Swiping Right\n", "expected `id;class name`"),
    ("jester-v1-train.csv", "34870;Waving\n", "class 'Waving' is not in the labels file"),
    ("jester-v1-train.csv", "../x;Swiping Left\n", "not a plain folder name"),
    ("jester-v1-labels.csv", "Swiping Left\nSwiping Left\n", "listed twice")])
def test_bad_csv_lines_stop_with_the_file_and_line(tool, tmp_path, csv, text, message):
    frames = jester_tree(tmp_path)
    (tmp_path / csv).write_text(text)
    with pytest.raises(SystemExit) as err:
        tool("jester").main(["--labels", str(tmp_path / "jester-v1-labels.csv"), "--train",
                             str(tmp_path / "jester-v1-train.csv"), "--frames", str(frames),
                             "--out", str(tmp_path / "lists"), "--quiet"])
    assert message in str(err.value) and f"{csv}:" in str(err.value)


def test_shipped_jester_label_list_is_the_demo_networks_class_order():
    """data/jester_label_list.txt: the 27 classes in the order of the original demo's outputs
    (online_demo/main.py), which is what data/jester.py writes (sorted names)."""
    names = [line.split(" ", 1)[1] for line in lines(os.path.join(REPO, "data",
                                                                   "jester_label_list.txt"))]
    assert len(names) == 27 and names == sorted(names)
    assert names[0] == "Doing other things" and names[2] == "No gesture"
    assert names[7] == "Rolling Hand Backward" and names[26] == "Zooming Out With Two Fingers"
