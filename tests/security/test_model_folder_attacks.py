"""Crafted exported-model folders: NAME.infer.yaml is data. Its file names cannot lead outside
the folder, and a label list that does not cover the model's classes is refused in one line
(docs/security.md, "Exported model folders")."""
import os

import numpy as np
import pytest
import yaml

from paddlevideo.deploy.cli import predict_main
from paddlevideo.deploy.errors import DeployError
from paddlevideo.deploy.online import OnlineRecognizer
from paddlevideo.deploy.runtime import read_infer_config, resolve_model


def model_folder(tmp_path, **info):
    """A folder as export_model.py leaves it (program and params files, NAME.infer.yaml),
    with `info` overriding what the config says."""
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "TSM.json").write_text("{}")
    (folder / "TSM.pdiparams").write_bytes(b"\0" * 16)
    config = {"model_file": "TSM.json", "params_file": "TSM.pdiparams",
              "input": [{"name": "imgs", "shape": [-1, 4, 3, 32, 32], "dtype": "float32"}],
              "num_classes": 5}
    config.update(info)
    (folder / "TSM.infer.yaml").write_text(yaml.safe_dump(config))
    return folder


def assert_one_line_exit_1(argv, capsys, *words):
    assert predict_main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("error: "), err
    for word in words:
        assert word in err, err


@pytest.mark.parametrize("key", ["model_file", "params_file"])
@pytest.mark.parametrize("name", ["../../etc/passwd", "/etc/passwd", "sub/../../x.json"])
def test_file_names_cannot_leave_the_model_folder(key, name, tmp_path, capsys):
    folder = model_folder(tmp_path, **{key: name})
    with pytest.raises(DeployError, match="leads outside the model folder") as e:
        resolve_model(str(folder))
    assert "\n" not in str(e.value) and key in str(e.value)
    assert_one_line_exit_1(["--model_dir", str(folder), "-i", str(tmp_path)], capsys,
                           "leads outside the model folder")


def test_a_link_out_of_the_model_folder_is_refused(tmp_path, capsys):
    folder = model_folder(tmp_path, model_file="TSM.link.json")
    os.symlink("/etc/passwd", folder / "TSM.link.json")
    with pytest.raises(DeployError, match="leads outside the model folder"):
        resolve_model(str(folder))
    assert_one_line_exit_1(["--model_dir", str(folder), "-i", str(tmp_path)], capsys,
                           "leads outside the model folder")


def test_names_inside_the_folder_still_resolve(tmp_path):
    folder = model_folder(tmp_path)
    os.symlink("TSM.json", folder / "TSM.alias.json")      # a link that stays inside is fine
    (folder / "TSM.infer.yaml").write_text(yaml.safe_dump(
        {**yaml.safe_load((folder / "TSM.infer.yaml").read_text()), "model_file": "TSM.alias.json"}))
    model_file, params_file, _ = resolve_model(str(folder))
    assert model_file == os.path.join(str(folder), "TSM.alias.json")
    assert params_file == os.path.join(str(folder), "TSM.pdiparams")


@pytest.mark.parametrize("labels", [["a", "b"], "abc", [1, 2, 3, 4, 5]])
def test_a_label_list_that_is_not_one_name_per_class_is_refused(labels, tmp_path, capsys):
    folder = model_folder(tmp_path, labels=labels)
    with pytest.raises(DeployError, match="labels") as e:
        read_infer_config(str(folder / "TSM.infer.yaml"))
    assert "\n" not in str(e.value)
    assert_one_line_exit_1(["--model_dir", str(folder), "-i", str(tmp_path)], capsys, "labels")


class _FiveClassStep:
    """An online step whose network has 5 classes (whatever its config claims)."""

    def init_buffers(self):
        return []

    def __call__(self, x, buffers):
        return np.arange(5, dtype="float32")[None], buffers


def test_a_label_list_shorter_than_the_network_output_is_refused_online():
    recognizer = OnlineRecognizer(_FiveClassStep(), lambda frame: frame, labels=["a", "b"])
    with pytest.raises(DeployError, match="has 2 class names but the model has 5 classes"):
        recognizer(np.zeros((4, 4, 3), "float32"))
    ok = OnlineRecognizer(_FiveClassStep(), lambda frame: frame, labels=list("abcde"))
    assert ok(np.zeros((4, 4, 3), "float32"))["label"] == "e"
