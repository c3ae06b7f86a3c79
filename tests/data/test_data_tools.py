"""The preparation tools on small fabricated trees in the official layouts."""
import json
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def lines(path):
    with open(path) as f:
        return [line.rstrip("\n") for line in f if line.strip()]


@pytest.mark.parametrize("name", ["ucf101", "kinetics400", "sthv2", "jester", "custom", "extract_frames",
                                  "check_videos", "make_demo"])
def test_every_tool_has_help(name):
    out = subprocess.run([sys.executable, os.path.join(REPO, "data", f"{name}.py"), "--help"],
                         capture_output=True, text=True)
    assert out.returncode == 0 and "usage:" in out.stdout


def ucf_tree(tmp_path):
    """The official layout: UCF-101/Class/v_*.avi (HandstandPushups on disk, HandStandPushups in
    the split files) and ucfTrainTestlist; one training clip of the split files is not on disk."""
    videos = tmp_path / "UCF-101"
    for rel in ["ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi", "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi",
                "HandstandPushups/v_HandstandPushups_g01_c01.avi",
                "HandstandPushups/v_HandstandPushups_g09_c02.avi", "YoYo/v_YoYo_g10_c01.avi"]:
        (videos / rel).parent.mkdir(parents=True, exist_ok=True)
        (videos / rel).write_bytes(b"x")
    lists = tmp_path / "ucfTrainTestlist"
    lists.mkdir()
    (lists / "classInd.txt").write_text("1 ApplyEyeMakeup\n2 HandstandPushups\n3 YoYo\n")
    for k in (1, 2, 3):
        (lists / f"trainlist0{k}.txt").write_text(
            "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1\n"
            "HandstandPushups/v_HandStandPushups_g09_c02.avi 2\n"
            "YoYo/v_YoYo_g11_c01.avi 3\n")                       # not on disk
        (lists / f"testlist0{k}.txt").write_text(
            "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi\r\n"
            "HandstandPushups/v_HandStandPushups_g01_c01.avi\r\n"
            "YoYo/v_YoYo_g10_c01.avi\r\n")
    return videos, lists


def test_ucf101_absolute_lists_case_quirk_and_missing_clips(tmp_path, tool, capsys):
    videos, lists = ucf_tree(tmp_path)
    out = tmp_path / "lists"
    args = ["--videos", str(videos), "--splits-dir", str(lists), "--out", str(out), "--quiet"]
    assert tool("ucf101").main(args) == 1                        # not the official split
    assert "--allow-missing" in capsys.readouterr().err
    assert tool("ucf101").main(args + ["--allow-missing"]) == 0
    assert lines(out / "ucf101_label_list.txt") == ["0 ApplyEyeMakeup", "1 HandstandPushups", "2 YoYo"]
    for k in (1, 2, 3):
        assert lines(out / f"ucf101_train_split_{k}_videos.txt") == [
            f"{videos}/ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 0",
            f"{videos}/HandstandPushups/v_HandstandPushups_g09_c02.avi 1"]
        assert lines(out / f"ucf101_val_split_{k}_videos.txt") == [
            f"{videos}/ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi 0",
            f"{videos}/HandstandPushups/v_HandstandPushups_g01_c01.avi 1",
            f"{videos}/YoYo/v_YoYo_g10_c01.avi 2"]
        assert lines(out / f"missing_split_{k}.txt") == ["trainlist0%d.txt:3 YoYo/v_YoYo_g11_c01.avi" % k]
    # PaddleVideo's relative form, for data_prefix: UCF-101
    assert tool("ucf101").main(args + ["--allow-missing", "--relative", "--splits", "1"]) == 0
    assert lines(out / "ucf101_train_split_1_videos.txt")[1] == \
        "HandstandPushups/v_HandstandPushups_g09_c02.avi 1"
    # complete: exit 0, and the stale missing file of the earlier run is gone
    (videos / "YoYo" / "v_YoYo_g11_c01.avi").write_bytes(b"x")
    assert tool("ucf101").main(args) == 0 and not (out / "missing_split_1.txt").exists()


def test_ucf101_bad_arguments_are_one_line(tmp_path, tool):
    videos, lists = ucf_tree(tmp_path)
    for args, what in [(["--videos", str(tmp_path / "nope"), "--splits-dir", str(lists)], "not a folder"),
                       (["--videos", str(lists), "--splits-dir", str(lists)], "no videos"),
                       (["--videos", str(videos), "--splits-dir", str(videos)], "classInd.txt")]:
        with pytest.raises(SystemExit) as e:
            tool("ucf101").main(args + ["--out", str(tmp_path / "o")])
        assert str(e.value).startswith("error: ") and what in str(e.value)


def test_ucf101_frame_lists(tmp_path, tool):
    videos, frames, lists = tmp_path / "UCF-101", tmp_path / "frames", tmp_path / "tl"
    (videos / "YoYo").mkdir(parents=True)
    (videos / "YoYo" / "v_YoYo_g01_c01.avi").write_bytes(b"x")
    (frames / "YoYo" / "v_YoYo_g01_c01").mkdir(parents=True)
    for i in range(1, 6):
        (frames / "YoYo" / "v_YoYo_g01_c01" / f"img_{i:05}.jpg").write_bytes(b"x")
    lists.mkdir()
    (lists / "classInd.txt").write_text("1 YoYo\n")
    (lists / "trainlist01.txt").write_text("YoYo/v_YoYo_g01_c01.avi 1\n")
    (lists / "testlist01.txt").write_text("")
    assert tool("ucf101").main(["--videos", str(videos), "--splits-dir", str(lists), "--out",
                                str(tmp_path / "o"), "--frames", str(frames), "--splits", "1"]) == 0
    assert lines(tmp_path / "o" / "ucf101_train_split_1_rawframes.txt") == \
        [f"{frames}/YoYo/v_YoYo_g01_c01 5 0"]


def k400_tree(tmp_path):
    videos = tmp_path / "train"
    (videos / "air drumming").mkdir(parents=True)
    (videos / "air drumming" / "aaa_000010_000020.mp4").write_bytes(b"x")
    (videos / "zzz_000001_000011.mkv").write_bytes(b"x")                # flat, other container
    (videos / "passing American football (in game)").mkdir()
    (videos / "passing American football (in game)" / "ppp.mp4").write_bytes(b"x")   # id only
    csv = tmp_path / "validate.csv"
    csv.write_text("label,youtube_id,time_start,time_end,split,is_cc\n"
                   "air drumming,aaa,10,20,val,0\n"
                   "zumba,zzz,1,11,val,0\n"
                   "abseiling,gone,5,15,val,0\n"
                   '"passing American football (in game)",ppp,3.0,13.0,val,0\n'
                   "massaging person's head,mmm,0,10,val,0\n")
    return videos, csv


def test_kinetics400_takes_the_shipped_class_indices(tmp_path, tool):
    """The CSV's names map onto data/kinetics400_label_list.txt, the released checkpoints'
    indices (1 air_drumming, 208 passing_American_football_(in_game), 399 zumba)."""
    videos, csv = k400_tree(tmp_path)
    out = tmp_path / "k400"
    assert tool("kinetics400").main(["--csv", str(csv), "--videos", str(videos), "--out", str(out),
                                     "--quiet"]) == 0
    assert lines(out / "val.list") == [                          # validate.csv -> val.list
        f"{videos}/air drumming/aaa_000010_000020.mp4 1",
        f"{videos}/zzz_000001_000011.mkv 399",
        f"{videos}/passing American football (in game)/ppp.mp4 208"]
    assert lines(out / "val_missing.txt") == ["validate.csv:4 gone_000005_000015 abseiling",
                                              "validate.csv:6 mmm_000000_000010 massaging_person's_head"]
    assert not (out / "label_list.txt").exists()                 # the shipped list is the list
    tool("kinetics400").main(["--csv", str(csv), "--videos", str(videos), "--out", str(out),
                              "--name", "rel", "--relative", "--quiet"])
    assert lines(out / "rel.list")[0] == "air drumming/aaa_000010_000020.mp4 1"


def test_kinetics400_label_list_matches_the_csv_naming():
    """Every shipped name is a Kinetics class in the list's form (no spaces), sorted, 0..399."""
    rows = lines(os.path.join(REPO, "data", "kinetics400_label_list.txt"))
    idx = [int(r.split(" ", 1)[0]) for r in rows]
    names = [r.split(" ", 1)[1] for r in rows]
    assert idx == list(range(400)) and names == sorted(names) and len(set(names)) == 400
    assert all(" " not in n for n in names)
    shared = os.path.join(os.path.dirname(REPO), "shared", "spec", "kinetics400_label_list.txt")
    if os.path.isfile(shared):
        assert lines(shared) == rows


def test_kinetics400_unknown_class_and_classes_from_csv(tmp_path, tool):
    videos, csv = k400_tree(tmp_path)
    text = csv.read_text().replace("zumba,", "zumbaa,")
    csv.write_text(text)
    with pytest.raises(SystemExit) as e:
        tool("kinetics400").main(["--csv", str(csv), "--videos", str(videos), "--out",
                                  str(tmp_path / "k"), "--quiet"])
    assert "validate.csv:3:" in str(e.value) and "'zumba'?" in str(e.value)
    out = tmp_path / "sub"
    assert tool("kinetics400").main(["--csv", str(csv), "--videos", str(videos), "--out", str(out),
                                     "--classes-from-csv", "--quiet"]) == 0
    assert lines(out / "label_list.txt") == [
        "0 abseiling", "1 air_drumming", "2 massaging_person's_head",
        "3 passing_American_football_(in_game)", "4 zumbaa"]
    assert [x.rsplit(" ", 1)[1] for x in lines(out / "val.list")] == ["1", "4", "3"]


def test_sthv2_json(tmp_path, tool):
    labels = {"Pushing something from left to right": "0", "Pushing something from right to left": "1",
              "Holding something next to something": "2"}
    (tmp_path / "labels.json").write_text(json.dumps(labels))
    train = [{"id": "1", "label": "pushing a cup from left to right",
              "template": "Pushing [something] from left to right", "placeholders": ["a cup"]},
             {"id": "2", "label": "holding potato next to vicks vaporub bottle",
              "template": "Holding [something] next to [something]",
              "placeholders": ["potato", "vicks vaporub bottle"]}]
    val = [{"id": "3", "label": "x", "template": "Pushing [something] from right to left",
            "placeholders": ["x"]}]
    (tmp_path / "train.json").write_text(json.dumps(train))
    (tmp_path / "val.json").write_text(json.dumps(val))
    vids = tmp_path / "20bn-something-something-v2"
    vids.mkdir()
    (vids / "1.webm").write_bytes(b"x")
    (vids / "3.webm").write_bytes(b"x")
    out = tmp_path / "ssv2"
    args = ["--labels", str(tmp_path / "labels.json"), "--train", str(tmp_path / "train.json"),
            "--val", str(tmp_path / "val.json"), "--videos", str(vids), "--out", str(out), "--quiet"]
    assert tool("sthv2").main(args) == 0
    assert lines(out / "label_list.txt")[2] == "2 Holding something next to something"
    assert lines(out / "train.list") == [f"{vids}/1.webm 0"]
    assert lines(out / "train_missing.txt") == ["2.webm Holding something next to something"]
    assert lines(out / "val.list") == [f"{vids}/3.webm 1"]
    tool("sthv2").main(args + ["--relative"])
    assert lines(out / "val.list") == ["3.webm 1"]
    (tmp_path / "labels.json").write_text(json.dumps(dict(labels, Extra="7")))
    with pytest.raises(SystemExit, match="not 0..3 without gaps"):
        tool("sthv2").main(args)


def custom_tree(root, counts):
    for c, n in counts.items():
        (root / c / "sub").mkdir(parents=True)
        for i in range(n):
            (root / c / ("sub" if i % 2 else "") / f"v{i}.MP4").write_bytes(b"x")
    return root


def test_custom_folders_to_lists(tmp_path, tool):
    videos = custom_tree(tmp_path / "mine", {"wave": 5, "jump": 2, "sit": 1})
    (videos / "wave" / "notes.txt").write_text("not a video")
    out = tmp_path / "lists"
    assert tool("custom").main(["--videos", str(videos), "--out", str(out)]) == 0
    assert lines(out / "label_list.txt") == ["0 jump", "1 sit", "2 wave"]
    train, val = lines(out / "train.list"), lines(out / "val.list")
    per = lambda rows, k: [r for r in rows if r.endswith(f" {k}")]
    assert [len(per(val, k)) for k in range(3)] == [1, 0, 1]       # 20 %, at least one of two
    assert [len(per(train, k)) for k in range(3)] == [1, 1, 4]
    assert all(r.startswith(f"{videos}/") for r in train + val)
    assert not set(train) & set(val) and f"{videos}/wave/sub/v1.MP4 2" in train + val
    assert tool("custom").main(["--videos", str(videos), "--out", str(out)]) == 0
    assert lines(out / "val.list") == val                          # the same seed, the same split
    # a validation folder of its own, and relative paths for a data_prefix
    held = custom_tree(tmp_path / "held", {"wave": 1, "jump": 1, "sit": 1})
    assert tool("custom").main(["--videos", str(videos), "--val", str(held), "--out", str(out),
                                "--relative"]) == 0
    assert lines(out / "val.list") == ["jump/v0.MP4 0", "sit/v0.MP4 1", "wave/v0.MP4 2"]
    assert len(lines(out / "train.list")) == 8


def test_custom_refusals(tmp_path, tool):
    videos = custom_tree(tmp_path / "mine", {"wave": 2, "high jump": 2})
    with pytest.raises(SystemExit, match="has a space in its name"):
        tool("custom").main(["--videos", str(videos), "--out", str(tmp_path / "o")])
    os.rename(videos / "high jump", videos / "high_jump")
    other = custom_tree(tmp_path / "other", {"wave": 1})
    with pytest.raises(SystemExit, match=r"only in .*mine: \['high_jump'\]"):
        tool("custom").main(["--videos", str(videos), "--val", str(other), "--out", str(tmp_path / "o")])
    (videos / "empty").mkdir()
    with pytest.raises(SystemExit, match="no videos"):
        tool("custom").main(["--videos", str(videos), "--out", str(tmp_path / "o")])


def test_extract_frames_parallel_resumable_verified(tmp_path, tool, fab):
    src = tmp_path / "videos"
    (src / "cls").mkdir(parents=True)
    fab.write_video(str(src / "cls" / "a.avi"), fab.level_frames(7))
    fab.write_video(str(src / "b.avi"), fab.level_frames(5))
    (src / "broken.avi").write_text("nope")
    (tmp_path / "v.list").write_text("cls/a.avi 3\nb.avi 1\nbroken.avi 0\nmissing.avi 2\n")
    out, fl = tmp_path / "frames", tmp_path / "frames.txt"
    (out / "b.part").mkdir(parents=True)                          # left by an interrupted run
    (out / "b.part" / "img_00001.jpg").write_bytes(b"half")
    args = ["--list", str(tmp_path / "v.list"), "--prefix", str(src), "--out", str(out),
            "--frame-list", str(fl), "-j", "2", "--quiet"]
    assert tool("extract_frames").main(args) == 1               # some failed
    assert lines(fl) == [f"{out}/cls/a 7 3", f"{out}/b 5 1"]
    assert sorted(os.listdir(out / "cls" / "a"))[:2] == ["img_00001.jpg", "img_00002.jpg"]
    assert not (out / "b.part").exists()
    failed = lines(str(fl) + ".failed.txt")
    assert len(failed) == 2 and "broken" in failed[0] and "not found" in failed[1]
    stamp = os.path.getmtime(out / "cls" / "a" / "img_00001.jpg")
    tool("extract_frames").main(args + ["--relative"])          # resume: nothing redone
    assert os.path.getmtime(out / "cls" / "a" / "img_00001.jpg") == stamp
    assert lines(fl) == ["cls/a 7 3", "b 5 1"]
    os.remove(out / "b" / "img_00003.jpg")                       # a gap is reported, not listed
    tool("extract_frames").main(args)
    assert lines(fl) == [f"{out}/cls/a 7 3"]


def test_extract_frames_from_an_absolute_list(tmp_path, tool, fab):
    """Absolute video paths: folders named after the path under --prefix, else under the folder
    the videos share; a frame list given as --list, or two videos of one name, are refused."""
    src = tmp_path / "videos"
    for rel in ("x/a.avi", "y/a.avi"):
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        fab.write_video(str(src / rel), fab.level_frames(4, w=96, h=64))
    (tmp_path / "v.list").write_text(f"{src}/x/a.avi 0\n{src}/y/a.avi 1\n")
    out, fl = tmp_path / "frames", tmp_path / "f.txt"
    base = ["--list", str(tmp_path / "v.list"), "--out", str(out), "--frame-list", str(fl),
            "-j", "1", "--quiet"]
    assert tool("extract_frames").main(base + ["--short-size", "32"]) == 0
    assert lines(fl) == [f"{out}/x/a 4 0", f"{out}/y/a 4 1"]
    import cv2
    assert cv2.imread(str(out / "x" / "a" / "img_00001.jpg")).shape == (32, 48, 3)
    with pytest.raises(SystemExit, match="share the frame folder 'a'"):
        tool("extract_frames").main(base + ["--prefix", str(src / "x")])
    with pytest.raises(SystemExit, match="this is a frame list"):
        tool("extract_frames").main(["--list", str(fl), "--out", str(tmp_path / "g"),
                                     "--frame-list", str(tmp_path / "g.txt"), "--quiet"])


def test_check_videos(tmp_path, tool, fab):
    d = tmp_path
    fab.write_video(str(d / "good.avi"), fab.level_frames(12))
    full = (d / "good.avi").read_bytes()
    (d / "trunc.avi").write_bytes(full[:len(full) // 3])
    (d / "text.mp4").write_text("hello")
    (d / "l.txt").write_text("good.avi 0\ntrunc.avi 1\ntext.mp4 2\nnone.mp4 3\n")
    rc = tool("check_videos").main(["--list", str(d / "l.txt"), "--prefix", str(d), "-j", "2",
                                    "--quiet", "--backend", "cv2"])
    assert rc == 1
    assert lines(str(d / "l.txt") + ".clean") == ["good.avi 0"]
    bad = [b.split("\t") for b in lines(str(d / "l.txt") + ".bad.txt")]
    assert [b[0] for b in bad] == ["2", "3", "4"]
    assert "not found" in bad[2][2] and all(b[2] for b in bad)


def test_check_videos_frame_list(tmp_path, tool, fab):
    fab.write_frames(str(tmp_path / "a"), fab.level_frames(4))
    (tmp_path / "f.txt").write_text("a 4 0\na 5 1\n")
    tool("check_videos").main(["--list", str(tmp_path / "f.txt"), "--prefix", str(tmp_path),
                               "-j", "1", "--quiet"])
    assert lines(str(tmp_path / "f.txt") + ".clean") == ["a 4 0"]
    assert "missing" in lines(str(tmp_path / "f.txt") + ".bad.txt")[0]
