"""paddlevideo.Predictor: exported folders, config + weights through the export cache, registered
names served by a local HTTP server (no network), decoded clips, and the shipped label lists."""
import http.server
import json
import os
import threading

import numpy as np
import pytest

from paddlevideo.deploy import api
from paddlevideo.deploy.cli import predict_main
from paddlevideo.deploy.errors import DeployError
from paddlevideo.deploy.labels import load_label_list
from paddlevideo.modeling import zoo
from paddlevideo.modeling.weights import WeightsSpec

from .conftest import REPO, make_model, save_checkpoint, write_config, write_labels, write_video


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny config with a label list, its checkpoint and two small videos."""
    tmp = tmp_path_factory.mktemp("tiny_api")
    cfg = write_config(tmp / "tsm.yaml", label_list=write_labels(tmp / "labels.txt"))
    ckpt = save_checkpoint(make_model(seed=5), tmp / "w.pdparams")
    videos = [write_video(tmp / f"v{i}.avi", 12 + 4 * i, seed=i) for i in range(2)]
    return cfg, ckpt, videos


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("PADDLEVIDEO_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def _exports(home):
    root = home / "exports"
    return sorted(os.listdir(root)) if root.is_dir() else []


def test_config_and_weights_export_once_then_reuse(tiny, home):
    cfg, ckpt, videos = tiny
    said = []
    first = api.Predictor(config=cfg, weights=ckpt, log=said.append)
    assert said[0].startswith(f"exporting {ckpt}") and len(_exports(home)) == 1
    folder = home / "exports" / _exports(home)[0]
    assert (folder / "TSM.infer.yaml").is_file() and (folder / "TSM.onnx").is_file()
    records = first.predict(videos)
    second = api.Predictor(config=cfg, weights=ckpt, log=said.append)
    assert said[1].startswith("reusing") and _exports(home) == [folder.name]
    assert second.predict(videos) == records
    # the records are predict.py --output's, and equal to the exported folder's
    out = home.parent / "r.jsonl"
    assert predict_main(["--model_dir", str(folder), "-i", *videos, "--output", str(out)]) == 0
    assert [json.loads(line) for line in out.read_text().splitlines()] == records
    assert {"top1", "top1_index", "top1_score", "topk", "model", "file", "kind"} <= set(records[0])
    assert records[0]["top1"] == f"name_{records[0]['top1_index']}"


def test_other_weights_get_another_export(tiny, home, tmp_path):
    cfg, ckpt, _ = tiny
    other = save_checkpoint(make_model(seed=6), tmp_path / "other.pdparams")
    api.Predictor(config=cfg, weights=ckpt, log=lambda m: None)
    api.Predictor(config=cfg, weights=other, log=lambda m: None)
    assert len(_exports(home)) == 2


def test_a_failed_export_leaves_no_cache(tiny, home, monkeypatch):
    cfg, ckpt, _ = tiny
    real = api._export_into

    def killed(cfg_, weights, labels, outdir):
        real(cfg_, weights, labels, outdir)        # files written, then the process "dies"
        raise DeployError("killed")

    monkeypatch.setattr(api, "_export_into", killed)
    with pytest.raises(DeployError):
        api.Predictor(config=cfg, weights=ckpt, log=lambda m: None)
    assert _exports(home) == []                    # neither a final folder nor a partial one
    monkeypatch.setattr(api, "_export_into", real)
    said = []
    api.Predictor(config=cfg, weights=ckpt, log=said.append)
    assert said[0].startswith("exporting")


def test_decoded_clips_equal_their_video(tiny, home):
    import decord
    cfg, ckpt, videos = tiny
    predictor = api.Predictor(config=cfg, weights=ckpt, log=lambda m: None)
    frames = decord.VideoReader(videos[0]).get_batch(list(range(12))).asnumpy()
    from_array, from_file = predictor.predict([frames, videos[0]])
    assert from_array["file"] == "<array 0>" and from_array["kind"] == "clip"
    assert from_array["top1_index"] == from_file["top1_index"]
    assert [t["index"] for t in from_array["topk"]] == [t["index"] for t in from_file["topk"]]
    assert abs(from_array["top1_score"] - from_file["top1_score"]) < 1e-5
    bad = predictor.predict([np.zeros((4, 8, 8), np.uint8)])[0]
    assert "uint8 [T, H, W, 3]" in bad["error"]


class _Files(http.server.BaseHTTPRequestHandler):
    files, hits = {}, []

    def do_GET(self):
        self.hits.append(self.path)
        body = self.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def local_zoo(tiny, monkeypatch):
    """A registered name whose weights a 127.0.0.1 server holds and whose config is the tiny one."""
    cfg, ckpt, _ = tiny
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Files)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with open(ckpt, "rb") as f:
        _Files.files = {"/tiny.pdparams": f.read()}
    _Files.hits = []
    url = f"http://127.0.0.1:{server.server_address[1]}/tiny.pdparams"
    spec = WeightsSpec("TSM_tiny_test", url, "tiny test model", classes=10, config=cfg,
                       labels="package:kinetics400")
    monkeypatch.setitem(zoo.PRETRAINED, "TSM_tiny_test", spec)
    yield spec
    server.shutdown()


def test_registered_name_predicts_without_config(local_zoo, home, tiny, capsys):
    _, _, videos = tiny
    # the spec's 400-name list does not fit the 10-class head: refused, nothing cached
    assert predict_main(["-w", "TSM_tiny_test", "-i", videos[0]]) == 1
    assert "has 400 labels but the model has 10 classes" in capsys.readouterr().err
    assert _exports(home) == []


def test_registered_name_exports_then_reuses(local_zoo, home, tiny, capsys, monkeypatch,
                                             tmp_path):
    _, _, videos = tiny
    spec = WeightsSpec(**{**local_zoo.__dict__, "labels": write_labels(tmp_path / "l.txt")})
    monkeypatch.setitem(zoo.PRETRAINED, "TSM_tiny_test", spec)
    assert predict_main(["-w", "TSM_tiny_test", "-i", videos[0]]) == 0
    out = capsys.readouterr().out
    assert "exporting TSM_tiny_test" in out and str(home / "exports") in out
    assert predict_main(["-w", "TSM_tiny_test", "-i", videos[0]]) == 0
    out2 = capsys.readouterr().out
    assert "reusing the export of TSM_tiny_test" in out2 and "top-1 name_" in out2
    assert _Files.hits == ["/tiny.pdparams"]              # downloaded once, then cached


def test_name_without_config_and_unknown_name_are_one_line_errors(home, capsys, tiny):
    _, _, videos = tiny
    assert predict_main(["-w", "TSM_ucf101_amp_nhwc", "-i", videos[0]]) == 1
    assert "have no known config" in capsys.readouterr().err
    assert predict_main(["-w", "no_such_weights", "-i", videos[0]]) == 1
    assert "only a registered name knows its config" in capsys.readouterr().err


def test_zoo_names_with_a_config_find_it_and_their_labels():
    for name, spec in zoo.PRETRAINED.items():
        if spec.config:
            path, labels = api.zoo_config(name)
            assert os.path.isfile(path)
            assert len(load_label_list(labels)) == spec.classes


def test_shipped_label_lists():
    k400 = load_label_list("package:kinetics400", 400)
    assert k400 == load_label_list(os.path.join(REPO, "data", "kinetics400_label_list.txt"))
    ucf = load_label_list("package:ucf101", 101)          # classInd.txt 1..101 -> 0..100
    assert (ucf[0], ucf[35], ucf[36], ucf[100]) == ("ApplyEyeMakeup", "HammerThrow",
                                                     "HandstandPushups", "YoYo")
    ssv2 = load_label_list("package:sthv2", 174)
    assert ssv2 == sorted(ssv2) and ssv2[0] == "Approaching something with your camera"
    assert ssv2[-1] == "Wiping something off of something"
    jester = load_label_list("package:jester", 27)
    assert jester[:6] == ["Swiping Left", "Swiping Right", "Swiping Down", "Swiping Up",
                          "Pushing Hand Away", "Pulling Hand In"]
    assert jester[-2:] == ["No gesture", "Doing other things"]
    with pytest.raises(DeployError, match="ships no list named 'nope'"):
        load_label_list("package:nope")


def test_sthv2_config_names_the_shipped_list():
    from paddlevideo.deploy.labels import config_label_list
    from paddlevideo.utils.config import get_config
    cfg = get_config(os.path.join(REPO, "configs", "recognition", "tsm", "tsm_sthv2_videos.yaml"))
    assert len(load_label_list(config_label_list(cfg), 174)) == 174
