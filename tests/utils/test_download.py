"""Weight downloads against a local HTTP server on 127.0.0.1: no test touches the internet."""
import hashlib
import http.server
import os
import socket
import threading

import numpy as np
import paddle
import pytest

from paddlevideo.modeling import PRETRAINED, build_model
from paddlevideo.modeling.weights import WeightsSpec
from paddlevideo.utils.config import AttrDict
from paddlevideo.utils.download import DownloadError, download

PAYLOAD = os.urandom(300_000)


class Handler(http.server.BaseHTTPRequestHandler):
    files = {}          # path -> bytes
    hits = []

    def do_GET(self):
        self.hits.append(self.path)
        if self.path.startswith("/cut/"):           # announces everything, sends a third
            body = self.files["/" + self.path[len("/cut/"):]]
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[:len(body) // 3])
            self.wfile.flush()
            self.close_connection = True
            return
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
def server():
    Handler.files = {"/weights.bin": PAYLOAD}
    Handler.hits = []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PADDLEVIDEO_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_download_then_cache_hit(server, cache):
    sha = hashlib.sha256(PAYLOAD).hexdigest()
    path = download(server + "/weights.bin", sha256=sha, size=len(PAYLOAD), progress=False)
    assert path == str(cache / "weights" / "weights.bin")
    assert open(path, "rb").read() == PAYLOAD
    assert download(server + "/weights.bin", sha256=sha, progress=False) == path
    assert Handler.hits == ["/weights.bin"]                      # second call: no request
    assert os.listdir(cache / "weights") == ["weights.bin"]      # no temporary left behind


def test_interrupted_transfer_leaves_no_file(server, cache):
    with pytest.raises(DownloadError, match="(interrupted|IncompleteRead).*Without network access"):
        download(server + "/cut/weights.bin", progress=False)
    folder = cache / "weights"
    assert not folder.exists() or os.listdir(folder) == []


def test_wrong_checksum_is_rejected_and_discarded(server, cache):
    with pytest.raises(DownloadError, match="sha256 is .* expected 0000"):
        download(server + "/weights.bin", sha256="0" * 64, progress=False)
    assert os.listdir(cache / "weights") == []


def test_corrupt_cached_file_is_fetched_again(server, cache):
    dest = cache / "weights" / "weights.bin"
    dest.parent.mkdir(parents=True)
    dest.write_bytes(b"half a file")
    path = download(server + "/weights.bin", size=len(PAYLOAD), progress=False)
    assert open(path, "rb").read() == PAYLOAD and Handler.hits == ["/weights.bin"]


def test_no_server_says_where_to_put_the_file(cache):
    with socket.socket() as s:                       # a port with nobody listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DownloadError) as err:
        download(f"http://127.0.0.1:{port}/ResNet50_pretrain.pdparams", progress=False, timeout=5)
    message = str(err.value)
    assert "could not download" in message
    assert str(cache / "weights" / "ResNet50_pretrain.pdparams") in message


def test_registered_name_in_a_config_downloads_and_loads(server, monkeypatch):
    paddle.seed(0)
    cfg = AttrDict(framework="Recognizer2D",
                   backbone=AttrDict(name="ResNetTSM", depth=18, num_seg=4),
                   head=AttrDict(name="TSMHead", num_classes=5, in_channels=512))
    source = build_model(cfg)
    state = {k[len("backbone."):]: v.numpy() for k, v in source.state_dict().items()
             if k.startswith("backbone.")}
    path = os.path.join(os.environ["PADDLEVIDEO_HOME"], "upload.pdparams")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    paddle.save(state, path)
    data = open(path, "rb").read()
    Handler.files["/r18.pdparams"] = data
    monkeypatch.setitem(PRETRAINED, "ResNet18_test",
                        WeightsSpec("ResNet18_test", server + "/r18.pdparams", "test weights",
                                    sha256=hashlib.sha256(data).hexdigest(), size=len(data)))
    cfg.backbone.pretrained = "ResNet18_test"
    paddle.seed(1)
    model = build_model(cfg)
    np.testing.assert_array_equal(model.backbone.res4a.conv0._conv.weight.numpy(),
                                  source.backbone.res4a.conv0._conv.weight.numpy())
    cfg.backbone.pretrained = server + "/r18.pdparams"             # a plain URL works too
    build_model(cfg)
    assert Handler.hits == ["/r18.pdparams", "/r18.pdparams"]     # different cache names


def _dead_port():
    with socket.socket() as s:                       # a port with nobody listening
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def offline_name(monkeypatch):
    url = f"http://127.0.0.1:{_dead_port()}/TSM_offline.pdparams"
    monkeypatch.setitem(PRETRAINED, "TSM_offline", WeightsSpec("TSM_offline", url, "test"))
    return url


def test_offline_registered_name_is_one_error_with_the_whole_story(offline_name, cache):
    from paddlevideo.modeling.weights import WeightsDownloadError, WeightsError, resolve_weights
    with pytest.raises(WeightsDownloadError) as err:
        resolve_weights("TSM_offline")
    assert isinstance(err.value, WeightsError) and isinstance(err.value, DownloadError)
    message = str(err.value)
    assert "\n" not in message and message.startswith("weights 'TSM_offline': could not download")
    assert offline_name in message
    assert str(cache / "weights" / "TSM_offline.pdparams") in message


def test_every_tool_prints_the_offline_error_as_one_line(offline_name, tmp_path, capsys):
    """tools/main.py (train and --test), export and online predict: one line, no traceback."""
    import sys
    from paddlevideo.deploy.cli import export_main, online_main
    from paddlevideo.tasks.cli import main
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    sys.path.insert(0, os.path.join(repo, "tests", "tasks"))
    try:
        from synthetic import write_config          # registers the in-memory data set
    finally:
        sys.path.pop(0)
    config = write_config(tmp_path, epochs=1)
    demo = os.path.join(repo, "configs", "recognition", "tsm", "tsm_demo.yaml")
    online = os.path.join(repo, "configs", "recognition", "tsm", "tsm_online_demo.yaml")
    runs = {"train": lambda: main(["-c", config, "-w", "TSM_offline"]),
            "test": lambda: main(["--test", "-c", config, "-w", "TSM_offline"]),
            "export": lambda: export_main(["-c", demo, "-p", "TSM_offline",
                                           "-o", str(tmp_path / "inference")]),
            "online": lambda: online_main(["-i", str(tmp_path / "none.mp4"), "-c", online,
                                           "-w", "TSM_offline"])}
    for what, run in runs.items():
        capsys.readouterr()
        assert run() != 0, what
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1].startswith("error: weights 'TSM_offline': could not download"), (what, err)
        assert offline_name in err[-1] and "Traceback" not in "\n".join(err), (what, err)


def test_imagenet_name_follows_the_models_depth(server, monkeypatch):
    """`pretrained: ImageNet` on a ResNet-18 fetches the depth-18 file (a torchvision file here,
    checked against the sha256 prefix its name carries) and loads it without permutation."""
    import sys
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    sys.path.insert(0, os.path.join(repo, "tests", "modeling"))
    try:
        from torch_files import save_torch
        from tsm_reference import random_state
    finally:
        sys.path.pop(0)
    state = {k[len("module.base_model."):].replace(".conv1.net.", ".conv1."): v
             for k, v in random_state(18, 5).items() if k.startswith("module.base_model.")}
    os.makedirs(os.environ["PADDLEVIDEO_HOME"], exist_ok=True)
    path = save_torch(state, os.path.join(os.environ["PADDLEVIDEO_HOME"], "r18.pth"))
    data = open(path, "rb").read()
    prefix = hashlib.sha256(data).hexdigest()[:8]
    Handler.files[f"/resnet18-{prefix}.pth"] = data
    monkeypatch.setitem(PRETRAINED, "ResNet18_torchvision", WeightsSpec(
        "ResNet18_torchvision", f"{server}/resnet18-{prefix}.pth", "test", sha256=prefix,
        format="torchvision", dataset="ImageNet", depth=18))
    cfg = AttrDict(framework="Recognizer2D",
                   backbone=AttrDict(name="ResNetTSM", depth=18, num_seg=4, pretrained="ImageNet"),
                   head=AttrDict(name="TSMHead", num_classes=5, in_channels=512))
    model = build_model(cfg)
    np.testing.assert_array_equal(model.backbone.res3a.short._conv.weight.numpy(),
                                  state["layer2.0.downsample.0.weight"])
    assert Handler.hits == [f"/resnet18-{prefix}.pth"]
    cfg.backbone.depth = 34
    monkeypatch.setitem(PRETRAINED, "ImageNet", WeightsSpec(
        "ImageNet", "", "ImageNet weights of the model's depth", format="alias",
        by_depth=((18, "ResNet18_torchvision"),)))
    from paddlevideo.modeling.weights import WeightsError
    with pytest.raises(WeightsError, match="none is registered for depth 34"):
        build_model(cfg)


def test_a_file_whose_hash_prefix_differs_is_refused(server, cache):
    Handler.files["/resnet18-00000000.pth"] = PAYLOAD
    with pytest.raises(DownloadError, match="expected one starting with 00000000"):
        download(server + "/resnet18-00000000.pth", sha256="00000000", progress=False)
    assert os.listdir(cache / "weights") == []


def test_no_progress_redraws_off_a_terminal(server, capsys):
    """A log or a pipe gets no `\\r` bar (the bar is tqdm's, and only on a terminal)."""
    assert os.path.getsize(download(server + "/weights.bin", progress=True)) == len(PAYLOAD)
    captured = capsys.readouterr()
    assert "\r" not in captured.err and "\r" not in captured.out
