"""tools/serve.py in a subprocess on 127.0.0.1, spoken to over real HTTP: answers equal predict's,
concurrent uploads get their own answers, the 4xx cases, the token, metrics, and SIGTERM with
requests in flight."""
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from paddlevideo.deploy.cli import export_main, predict_main

from .conftest import REPO, make_model, save_checkpoint, write_config, write_labels, write_video

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
pytest.importorskip("python_multipart")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """tools/serve.py on a free 127.0.0.1 port, healthy before it is returned."""

    def __init__(self, model_dir, *extra, env=None):
        self.port = _free_port()
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(REPO, "tools", "serve.py"), "--model_dir", model_dir,
             "--port", str(self.port), *extra], cwd=REPO, env={**os.environ, **(env or {})},
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited: {self.proc.stdout.read()}")
            try:
                if self.request("GET", "/healthz")[0] == 200:
                    return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise AssertionError("server not healthy within 120 s")

    def request(self, method, path, body=None, headers=None, timeout=60):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            data = response.read()
            kind = response.getheader("content-type", "")
            return response.status, json.loads(data) if "json" in kind else data.decode()
        finally:
            conn.close()

    def upload(self, path=None, data=None, name=None, field="file", headers=None):
        if data is None:
            with open(path, "rb") as f:
                data = f.read()
        name = name or os.path.basename(path)
        boundary = "----pvtestboundary7d3"
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; "
                f"filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n").encode() \
            + data + f"\r\n--{boundary}--\r\n".encode()
        return self.request("POST", "/v1/predict", body, {
            "Content-Type": f"multipart/form-data; boundary={boundary}", **(headers or {})})

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A tiny exported model (with ONNX) and four small videos of different content."""
    tmp = tmp_path_factory.mktemp("serve")
    cfg = write_config(tmp / "tsm.yaml", label_list=write_labels(tmp / "labels.txt"))
    out = str(tmp / "model")
    assert export_main(["-c", cfg, "-p", save_checkpoint(make_model(seed=9), tmp / "w.pdparams"),
                        "-o", out]) == 0
    videos = [write_video(tmp / f"clip{i}.avi", 10 + 3 * i, seed=10 + i) for i in range(4)]
    results = tmp / "expected.jsonl"
    assert predict_main(["--model_dir", out, "-i", *videos, "--output", str(results)]) == 0
    expected = {os.path.basename(r["file"]): r for r in map(json.loads, open(results))}
    assert len({round(r["top1_score"], 6) for r in expected.values()}) == 4   # all different
    return out, videos, expected


@pytest.fixture(scope="module")
def server(model, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("server_tmp")         # the server's TMPDIR: its uploads go here
    s = Server(model[0], "--max_batch", "4", "--max_wait_ms", "30", "--workers", "2",
               "--max_upload_mb", "1", env={"TMPDIR": str(tmp)})
    s.tmp = tmp
    yield s
    s.stop()


def _same(got, want):
    assert got["file"] == os.path.basename(want["file"])
    assert got["top1_index"] == want["top1_index"] and got["top1"] == want["top1"]
    assert [t["index"] for t in got["topk"]] == [t["index"] for t in want["topk"]]
    assert abs(got["top1_score"] - want["top1_score"]) < 1e-5
    assert got["model"] == want["model"]


def test_answers_equal_predict(server, model):
    _, videos, expected = model
    for video in videos:
        status, record = server.upload(video)
        assert status == 200, record
        _same(record, expected[os.path.basename(video)])


def test_concurrent_uploads_each_get_their_own_answer(server, model):
    _, videos, expected = model
    answers, errors = {}, []

    def client(k):
        video = videos[k % len(videos)]
        try:
            answers[k] = (video, server.upload(video, name=f"req{k}_{os.path.basename(video)}"))
        except Exception as e:            # noqa: BLE001 (reported below)
            errors.append(e)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors and len(answers) == 12
    for k, (video, (status, record)) in answers.items():
        assert status == 200
        want = dict(expected[os.path.basename(video)], file=f"req{k}_{os.path.basename(video)}")
        _same(record, want)
    status, text = server.request("GET", "/metrics")
    batches = [line for line in text.splitlines() if line.startswith("paddlevideo_batch_size_")]
    value = {b.split()[0]: float(b.split()[-1]) for b in batches}
    count, total = value["paddlevideo_batch_size_count"], value["paddlevideo_batch_size_sum"]
    assert status == 200 and total >= 16 and count < total      # some runs held several clips


def test_bad_requests_are_4xx_and_the_server_keeps_serving(server, model, tmp_path):
    _, videos, expected = model
    status, body = server.upload(data=b"this is not a video at all" * 10, name="notes.mp4")
    assert status == 422 and body["file"] == "notes.mp4" and "notes.mp4" in body["detail"]
    assert "/tmp" not in body["detail"]                       # the private temp path stays hidden
    assert server.upload(data=b"", name="empty.avi")[0] == 422
    status, body = server.upload(data=os.urandom(1_200_000), name="big.mp4")
    assert status == 413 and "limit" in body["detail"]
    status, body = server.upload(videos[0], field="video")
    assert status == 400 and "'file'" in body["detail"]
    status, body = server.request("POST", "/v1/predict", b"{}", {"Content-Type":
                                                                 "application/json"})
    assert status == 400
    assert server.request("GET", "/healthz")[0] == 200
    status, record = server.upload(videos[1])
    assert status == 200
    _same(record, expected[os.path.basename(videos[1])])
    status, text = server.request("GET", "/metrics")
    assert 'paddlevideo_requests_total{code="413"}' in text
    assert "paddlevideo_decode_failures_total 2" in text
    assert "paddlevideo_queue_length 0" in text
    folders = [f for f in os.listdir(server.tmp) if f.startswith("paddlevideo-serve-")]
    assert len(folders) == 1 and os.listdir(server.tmp / folders[0]) == []   # uploads removed
    assert oct(os.stat(server.tmp / folders[0]).st_mode & 0o777) == "0o700"


def test_model_endpoint(server, model):
    status, info = server.request("GET", "/v1/model")
    assert status == 200
    assert info["classes"] == [f"name_{i}" for i in range(10)]
    assert info["input"]["shape"][1:] == [4, 3, 64, 64] and len(info["digest"]) == 64
    assert info["engine"] in ("onnxruntime", "paddle") and info["precision"]


def test_token(model):
    s = Server(model[0], env={"PADDLEVIDEO_TOKEN": "s3cret"})
    try:
        video = model[1][0]
        assert s.upload(video)[0] == 401
        assert s.upload(video, headers={"Authorization": "Bearer wrong"})[0] == 401
        assert s.request("GET", "/v1/model")[0] == 401
        assert s.request("GET", "/healthz")[0] == 200              # load balancers probe it
        status, record = s.upload(video, headers={"Authorization": "Bearer s3cret"})
        assert status == 200 and record["file"] == os.path.basename(video)
    finally:
        s.stop()


def test_sigterm_answers_requests_in_flight_then_exits_0(model):
    s = Server(model[0], "--max_wait_ms", "3000", "--max_batch", "8")
    answers = []

    def client(video):
        answers.append(s.upload(video)[0])

    threads = [threading.Thread(target=client, args=(v,)) for v in model[1]]
    for t in threads:
        t.start()
    # all four decoded and waiting: the batcher waits (3 s) for more before it runs them
    deadline = time.monotonic() + 30
    while "paddlevideo_queue_length 4" not in s.request("GET", "/metrics")[1]:
        assert time.monotonic() < deadline, "the uploads never reached the queue"
        time.sleep(0.02)
    s.proc.send_signal(signal.SIGTERM)
    for t in threads:
        t.join(timeout=60)
    assert s.proc.wait(timeout=60) == 0
    assert answers == [200] * len(model[1])
    assert "stopped by SIGTERM" in s.proc.stdout.read()
    with pytest.raises(OSError):
        s.request("GET", "/healthz", timeout=5)
