"""Checkpoint retention: the last N epoch checkpoints and the best stay, superseded interrupted
ones go; the names that mark a folder as holding another run's checkpoints."""
from paddlevideo.utils.checkpoint import (list_checkpoints, prune_checkpoints,
                                          training_checkpoints)


def touch(folder, *names):
    for name in names:
        for ext in (".pdparams", ".pdopt"):
            (folder / (name + ext)).write_bytes(b"")


def test_keeps_the_last_epochs_and_the_best_and_drops_superseded_step_checkpoints(tmp_path):
    touch(tmp_path, *[f"M_epoch_{e:05d}" for e in range(1, 5)], "M_epoch_00003_step_00010",
          "M_best", "Other_epoch_00001")
    gone = prune_checkpoints(str(tmp_path), "M", keep=2)
    assert sorted(p.rsplit("/", 1)[1] for p in gone) == ["M_epoch_00001", "M_epoch_00002",
                                                           "M_epoch_00003_step_00010"]
    assert [c[:2] for c in list_checkpoints(str(tmp_path), "M")] == [(3, 0), (4, 0)]
    assert (tmp_path / "M_best.pdopt").is_file()
    assert (tmp_path / "Other_epoch_00001.pdopt").is_file()
    assert not (tmp_path / "M_epoch_00001.pdopt").exists()       # the optimizer state goes too
    # an interrupted checkpoint is kept while it is the furthest point, an older one goes
    touch(tmp_path, "M_epoch_00005_step_00003", "M_epoch_00005_step_00007")
    prune_checkpoints(str(tmp_path), "M", keep=2)
    assert [c[:2] for c in list_checkpoints(str(tmp_path), "M")] == [(3, 0), (4, 0), (4, 7)]


def test_training_checkpoints_are_recognised_by_name(tmp_path):
    assert training_checkpoints(str(tmp_path / "absent")) == []
    touch(tmp_path, "A_epoch_00002", "B_best", "B_epoch_00001_step_00004")
    (tmp_path / "weights.pdparams").write_bytes(b"")
    (tmp_path / "train.log").write_text("")
    assert training_checkpoints(str(tmp_path)) == ["A_epoch_00002.pdparams", "B_best.pdparams",
                                                   "B_epoch_00001_step_00004.pdparams"]


def test_stale_temporaries_are_those_of_dead_processes_only(tmp_path):
    """remove_stale_temporaries removes a checkpoint's `.tmp-PID` of a process that has ended;
    it keeps its own process's, a live one's, a pid that cannot be real, and other files."""
    import os
    import subprocess
    import sys
    from paddlevideo.utils.checkpoint import remove_stale_temporaries
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    names = {"dead": f"M_epoch_00001.pdparams.tmp-{ended.pid}",
             "own": f"M_epoch_00001.pdopt.tmp-{os.getpid()}",
             "zero": "M_best.pdparams.tmp-0",
             "other": f"notes.txt.tmp-{ended.pid}"}
    for name in names.values():
        (tmp_path / name).write_bytes(b"\0" * 2000)
    removed = remove_stale_temporaries(str(tmp_path))
    assert removed == [(str(tmp_path / names["dead"]), 2000)]
    assert sorted(os.listdir(tmp_path)) == sorted(v for k, v in names.items() if k != "dead")
