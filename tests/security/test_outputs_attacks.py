"""Attacks on what the tools write (docs/security.md, "Outputs and runs" and "Processes and
disk"): nothing a user owns is overwritten, two runs never share a folder, names stay names, a
failed or damaged test writes nothing, a full disk or a kill mid-save leaves the earlier files
whole and no debris behind."""
import errno
import json
import os
import subprocess
import sys
import time

import paddle
import pytest

from paddlevideo.deploy.cli import predict_main
from paddlevideo.deploy.errors import DeployError
from paddlevideo.deploy.results_file import ResultsFile
from paddlevideo.tasks.cli import main
from paddlevideo.tasks.runlock import LOCK_NAME
from paddlevideo.utils import checkpoint as checkpoint_module
from paddlevideo.utils.checkpoint import CheckpointError, save_checkpoint

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TASKS = os.path.join(REPO, "tests", "tasks")
sys.path.insert(0, TASKS)
from synthetic import write_config  # noqa: E402  (registers DATASET format SyntheticMotion)

RECORD = {"file": "/v/a.avi", "kind": "video", "top1": "x", "top1_index": 1, "top1_score": 0.5,
          "topk": [{"index": 1, "label": "x", "score": 0.5}], "model": "m"}


def one_error_line(err):
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0]


def snapshot(path):
    """What a path is and holds, to prove it was not touched."""
    info = os.lstat(path)
    data = open(path, "rb").read() if os.path.isfile(path) and not os.path.islink(path) else None
    return info.st_mode, info.st_ino, data, os.readlink(path) if os.path.islink(path) else None


# ----- predict --output: only predict's own output is continued -------------------------------
def _owned_targets(tmp_path):
    """Files predict must refuse: (name, path, what the refusal says)."""
    notes = tmp_path / "notes.txt"
    notes.write_text("my thesis, chapter 3")                   # one line, not JSON, no newline
    several = tmp_path / "several.txt"
    several.write_text("line one\nline two\n")
    foreign = tmp_path / "foreign.jsonl"                       # JSON, but not predict's records
    foreign.write_text(json.dumps({"file": "x", "model": "m"}) + "\n")
    half = tmp_path / "half.jsonl"                             # predict's line, then someone's
    half.write_text(json.dumps(RECORD) + "\n" + '{"id": 3, "note": "not cut off by predict')
    binary = tmp_path / "image.bin"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    device = tmp_path / "device"
    os.symlink("/dev/null", device)                            # a link to a character device
    dangling = tmp_path / "dangling"
    os.symlink(tmp_path / "nowhere" / "x", dangling)
    folder = tmp_path / "folder"
    folder.mkdir()
    return [("notes", notes, "is not a JSON line of predict's output"),
            ("several", several, "is not a JSON line of predict's output"),
            ("foreign", foreign, "is not a line of predict's output"),
            ("half", half, "half.jsonl:2 is not a JSON line of predict's output"),
            ("binary", binary, "not UTF-8"),
            ("fifo", fifo, "is a FIFO, not a regular file"),
            ("device", device, "is a device (through a link), not a regular file"),
            ("dangling", dangling, "is a link to nothing"),
            ("folder", folder, "is a folder")]


def test_predict_refuses_every_output_it_did_not_write_before_loading_a_model(tmp_path, capsys):
    """`predict --output F` on a file that is not predict's own output (even one line of text),
    a FIFO, a device behind a link or a folder: one line, exit 1, F untouched. The check comes
    before the model is loaded (the model folder here does not even exist)."""
    for name, path, says in _owned_targets(tmp_path):
        before = snapshot(path)
        code = predict_main(["-i", str(tmp_path / "clip.avi"), "--model_dir",
                             str(tmp_path / "no_model"), "--output", str(path)])
        line = one_error_line(capsys.readouterr().err)
        assert code == 1 and says in line and str(path) in line, (name, line)
        assert snapshot(path) == before, name
    leftovers = [f for f in os.listdir(tmp_path) if ".tmp" in f]
    assert leftovers == []


def test_predict_continues_its_own_output_even_cut_off_and_keeps_a_linked_file(tmp_path):
    """What may be continued: predict's records with a last line cut off by a crash (the line
    is dropped); a link to such a file is followed (the link stays, its target is rewritten)."""
    out = tmp_path / "results.jsonl"
    failed = dict(RECORD, file="/v/b.avi", error="cannot decode")
    for key in ("top1", "top1_index", "top1_score", "topk"):
        failed.pop(key)
    out.write_text(json.dumps(RECORD) + "\n" + json.dumps(failed) + "\n" + '{"file": "/v/c.av')
    link = tmp_path / "link.jsonl"
    os.symlink(out, link)
    results = ResultsFile(str(link), "m")
    results.close()
    assert results.done == {"/v/a.avi"}                        # the failed one is tried again
    assert os.path.islink(link) and out.read_text() == json.dumps(RECORD) + "\n"
    with pytest.raises(DeployError, match="another model or engine"):
        ResultsFile(str(out), "another-model")


def test_predict_on_a_full_disk_says_so_once(tmp_path, monkeypatch):
    """Every write of the results file fails with ENOSPC (it is /dev/full): the write is one
    DeployError naming the file and the full disk, and closing afterwards raises nothing."""
    import paddlevideo.deploy.results_file as results_file
    real_open = open
    monkeypatch.setattr(results_file, "open", lambda path, mode="r", **kw: real_open(
        "/dev/full", mode, **kw) if mode == "a" else real_open(path, mode, **kw), raising=False)
    results = ResultsFile(str(tmp_path / "r.jsonl"), "m")
    with pytest.raises(DeployError, match=r"r\.jsonl: No space left on device \(the disk is full"):
        results.write(RECORD)
    results.close()                                            # no second error
    assert results.failed


# ----- training: one run per folder, names are names, no debris --------------------------------
def _tiny(tmp_path, **kw):
    return write_config(tmp_path, epochs=kw.pop("epochs", 1), batch_size=4, train=8, valid=4,
                        test=kw.pop("test", 8), **kw)


def _holder(cfg_path, tmp_path):
    """A training started in another process that runs for a long time (many steps per epoch,
    so it is killed before any checkpoint)."""
    code = (f"import sys; sys.path[:0] = [{REPO!r}, {TASKS!r}]; import synthetic; "
            f"from paddlevideo.tasks.cli import main; "
            f"sys.exit(main(['-c', {cfg_path!r}, '-o', 'DATASET.train.num_samples=100000']))")
    return subprocess.Popen([sys.executable, "-c", code], cwd=str(tmp_path),
                            stdout=subprocess.DEVNULL, stderr=open(tmp_path / "first.err", "w"))


def _wait_for_lock(folder, proc, timeout=120):
    lock = os.path.join(folder, LOCK_NAME)
    deadline = time.time() + timeout
    while time.time() < deadline:
        if os.path.isfile(lock) and f"pid {proc.pid} " in open(lock).read():
            return
        assert proc.poll() is None, "the first training ended early: " + open(
            os.path.join(os.path.dirname(folder), "first.err")).read()[-2000:]
        time.sleep(0.2)
    raise AssertionError("the first training never locked its folder")


def test_two_trainings_into_one_folder_the_second_is_refused_until_the_first_dies(tmp_path,
                                                                                   capsys):
    """Two runs into one output folder: the second stops with one line naming the first's pid
    and host, and writes nothing. After `kill -9` of the first, the OS has dropped its lock: a
    new run starts, removes the temporary file the killed process left (not a live process's),
    says so, and trains."""
    cfg_path = _tiny(tmp_path)
    out = tmp_path / "out"
    first = _holder(cfg_path, tmp_path)
    try:
        _wait_for_lock(str(out), first)
        before = sorted(os.listdir(out))
        code = main(["-c", cfg_path, "--max_iters", "1"])
        line = one_error_line(capsys.readouterr().err)
        assert code == 1 and f"{out} is in use by another training (pid {first.pid} on host " \
            in line, line
        assert sorted(os.listdir(out)) == before
    finally:
        first.kill()
        first.wait()
    # what a save interrupted by kill -9 leaves, and a live process's save in progress
    dead = out / f"Tiny_epoch_00001.pdparams.tmp-{first.pid}"
    dead.write_bytes(b"\0" * 4096)
    live_proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live = out / f"Tiny_epoch_00001.pdopt.tmp-{live_proc.pid}"
        live.write_bytes(b"\0" * 10)
        users = out / f"notes.tmp-{first.pid}"               # not a checkpoint's: not ours
        users.write_text("mine")
        assert main(["-c", cfg_path, "--max_iters", "1"]) == 0
        assert not dead.exists() and live.exists() and users.read_text() == "mine"
        log = (out / "train.log").read_text()
        assert f"removed {dead} (0.0 MB): a save that a killed process (pid {first.pid})" in log
        assert (out / "Tiny_epoch_00001.pdparams").is_file()
    finally:
        live_proc.kill()
        live_proc.wait()


@pytest.mark.parametrize("name", ["../../../escaped", "a/b", "..", ".hidden", "", "-x",
                                  "\"a\\0b\"", "\"tab\\there\"", "x" * 101])
def test_model_name_is_a_name_never_a_path(tmp_path, capsys, name):
    """`-o model_name=../../../x` would write checkpoints outside output/: refused at the
    config check, one line naming model_name, nothing created."""
    cfg_path = _tiny(tmp_path)
    (tmp_path / "work").mkdir()
    out = tmp_path / "work" / "a" / "b" / "c" / "out"
    code = main(["-c", cfg_path, "-o", f"model_name={name}", "-o", f"output_dir={out}",
                 "--max_iters", "1"])
    line = one_error_line(capsys.readouterr().err)
    assert code == 1 and "model_name" in line and "usable as a file name" in line, line
    assert sorted(os.listdir(tmp_path)) == ["cfg.yaml", "work"] and \
        os.listdir(tmp_path / "work") == []


def test_a_full_disk_during_a_save_is_one_line_and_the_previous_checkpoint_stays(tmp_path,
                                                                                 monkeypatch):
    """paddle.save writes part of the file, then the disk is full: CheckpointError naming the
    file and the space it needed; the earlier checkpoint of that name (both files) is intact
    and no temporary file is left."""
    prefix = str(tmp_path / "M_best")
    save_checkpoint(prefix, {"w": paddle.ones([10])}, {"w@velocity_0": paddle.ones([10])},
                    {"epochs_done": 1})
    before = {ext: open(prefix + ext, "rb").read() for ext in (".pdparams", ".pdopt")}
    real_save = paddle.save

    def full_disk(obj, path, *a, **kw):
        if path.endswith(".pdparams.tmp-%d" % os.getpid()):
            with open(path, "wb") as f:
                f.write(b"\0" * 100)
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, path, *a, **kw)

    monkeypatch.setattr(checkpoint_module.paddle, "save", full_disk)
    with pytest.raises(CheckpointError) as caught:
        save_checkpoint(prefix, {"w": paddle.zeros([250000])},
                        {"w@velocity_0": paddle.zeros([250000])}, {"epochs_done": 2})
    message = str(caught.value)
    assert "\n" not in message and f"cannot save {prefix}.pdparams: the disk is full" in message
    assert "needs about 1.0 MB" in message and "previous checkpoints are intact" in message
    assert {ext: open(prefix + ext, "rb").read() for ext in (".pdparams", ".pdopt")} == before
    assert sorted(os.listdir(tmp_path)) == ["M_best.pdopt", "M_best.pdparams"]


def test_training_on_a_full_disk_ends_with_one_line(tmp_path, capsys, monkeypatch):
    cfg_path = _tiny(tmp_path)

    def full_disk(obj, path, *a, **kw):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint_module.paddle, "save", full_disk)
    assert main(["-c", cfg_path, "--max_iters", "1"]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert "cannot save" in line and "Tiny_epoch_00001.pdopt: the disk is full" in line, line
    assert not [f for f in os.listdir(tmp_path / "out") if ".tmp-" in f or f.endswith(".pdparams")]


# ----- --test: keyed results, nothing left by a failure, the bad-file guard ---------------------
def _weights(tmp_path, cfg_path):
    from paddlevideo.modeling import build_model
    from paddlevideo.utils.config import get_config
    paddle.seed(0)
    path = str(tmp_path / "best.pdparams")
    paddle.save(build_model(get_config(cfg_path).MODEL, load_pretrained=False).state_dict(), path)
    return path


def test_testing_on_another_list_never_replaces_the_first_results(tmp_path):
    """The same weights scored on two lists: two folders, each results file naming its list
    (path and sha256) and protocol; the first results are untouched by the second test."""
    from paddlevideo.tasks.results_dir import results_dir_for, test_set_identity
    from paddlevideo.utils.config import get_config
    cfg_path = _tiny(tmp_path)
    lists = []
    for name, rows in (("val", "a.avi 0\n"), ("test", "b.avi 1\n")):
        path = tmp_path / f"{name}.list"
        path.write_text(rows)
        lists.append(str(path))
    keys = []
    for path in lists:
        cfg = get_config(cfg_path, [f"DATASET.test.file_path={path}"])
        name, identity = test_set_identity(cfg)
        assert identity["test_list"] == path and len(identity["test_list_sha256"]) == 64
        keys.append((name, dict(weights_sha256="w" * 64, test_list_sha256=identity[
            "test_list_sha256"], test_set=identity["test_set"], protocol_id="4x1x1_32")))
    folders = [results_dir_for(str(tmp_path / "out"), "x/best.pdparams", key, name)[0]
               for name, key in keys]
    assert [os.path.basename(f) for f in folders] == ["test_best__val__4x1x1_32",
                                                      "test_best__test__4x1x1_32"]
    # the same list path with other content is another test: it does not take the folder
    os.makedirs(folders[0])
    with open(os.path.join(folders[0], "test_results.json"), "w") as f:
        json.dump(keys[0][1], f)
    edited = dict(keys[0][1], test_list_sha256="e" * 64)
    again, earlier = results_dir_for(str(tmp_path / "out"), "x/best.pdparams", edited, "val")
    assert again.startswith(folders[0] + "_") and earlier is None
    same, earlier = results_dir_for(str(tmp_path / "out"), "x/best.pdparams", keys[0][1], "val")
    assert same == folders[0] and earlier == keys[0][1]


def test_a_failed_test_leaves_nothing_new_and_too_many_bad_videos_are_not_scored(tmp_path,
                                                                                 capsys):
    """8 of 15 videos unreadable (`missing: skip` would score the other 7): exit 1, the first
    line says how many failed and what max_bad_ratio allows, no results folder is left. Where
    earlier results of the same test exist, they stay byte for byte."""
    cfg_path = _tiny(tmp_path, test=15)
    weights = _weights(tmp_path, cfg_path)
    bad = "DATASET.test.bad=[0,1,2,3,4,5,6,7]"
    code = main(["-c", cfg_path, "--test", "-w", weights, "-o", bad, "--test_engine", "dygraph"])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    first = err.strip().splitlines()[0]
    assert first.startswith("error: 8 of 15 test samples failed to load, more than "
                            "DATASET.max_bad_ratio=0.01 allows (0)"), first
    assert not (tmp_path / "out").exists()

    # a pass that is allowed, then the same test failing: the earlier results stay
    ok = ["-c", cfg_path, "--test", "-w", weights, "-o", bad, "-o", "DATASET.max_bad_ratio=0.6",
          "--test_engine", "dygraph"]
    assert main(ok) == 0
    (folder,) = (tmp_path / "out").iterdir()
    kept = {f: (folder / f).read_bytes() for f in ("test_results.json", "predictions.jsonl")}
    results = json.loads(kept["test_results.json"])
    assert (results["evaluated"], results["failed"]) == (7, 8)
    assert results["protocol_id"] == "4x1x1_32" and results["test_set"]
    assert main(ok[:-2] + ["-o", "DATASET.max_bad_ratio=0.5", "--test_engine", "dygraph"]) == 1
    assert {f: (folder / f).read_bytes() for f in kept} == kept
    assert list((tmp_path / "out").iterdir()) == [folder]


@pytest.mark.parametrize("name", ["../escaped", "a/b", ".hidden", ""])
def test_export_save_name_is_a_name_never_a_path(tmp_path, capsys, name):
    """export's --save_name is the stem of the files it writes: refused by the argument parser
    (exit 2) before anything is loaded or written."""
    from paddlevideo.deploy.cli import export_main
    with pytest.raises(SystemExit) as stopped:
        export_main(["-c", str(tmp_path / "none.yaml"), "--random_weights", "-o",
                     str(tmp_path / "export"), "--save_name", name])
    assert stopped.value.code == 2 and "usable as a file name" in capsys.readouterr().err
    assert os.listdir(tmp_path) == []
