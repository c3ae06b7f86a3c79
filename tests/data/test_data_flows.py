"""The public data sets end to end, as docs/data.md tells a newcomer to run them: the official
layouts (fabricated around the real videos in ../shared/videos) -> the prep tools -> the shipped
configs, unedited, from the folder the commands run in -> one training step -> test -> export ->
predict. Only the model is made tiny (ResNet-18, 32 px, no pretrained download) by -o overrides;
no list path or data_prefix is overridden.

The entry points of tools/main.py, export_model.py and predict.py run in this process (the same
argument parsing as the commands, without a Paddle start-up per step)."""
import glob
import importlib.util
import json
import os
import shutil
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHARED = os.path.join(os.path.dirname(REPO), "shared", "videos")
TSM = os.path.join(REPO, "configs", "recognition", "tsm")
DATA = os.path.join(REPO, "data")

# The shared clips' Kinetics-400 classes: example.avi is archery (5), demo.mp4 arm wrestling (6).
K400_LABELS = {"archery": 5, "arm wrestling": 6}


def tiny(train=True):
    """Overrides that make the model tiny: ResNet-18 at 32 px, no pretrained weights, one epoch."""
    o = ["MODEL.backbone.pretrained=", "MODEL.backbone.depth=18", "MODEL.head.in_channels=512",
         "DATASET.batch_size=2", "DATASET.num_workers=0", "epochs=1", "log_interval=1",
         "PIPELINE.test.transform[0].Scale.short_size=36",
         "PIPELINE.test.transform[1].CenterCrop.target_size=32", "INFERENCE.target_size=32"]
    if train:
        o += ["PIPELINE.train.transform[0].MultiScaleCrop.target_size=32",
              "PIPELINE.valid.transform[0].Scale.short_size=36",
              "PIPELINE.valid.transform[1].CenterCrop.target_size=32"]
    return o


def lines(path):
    with open(path) as f:
        return [x.rstrip("\n") for x in f if x.strip()]


def tool(name):
    """data/<name>.py's main (data/ is a folder of scripts)."""
    if DATA not in sys.path:
        sys.path.insert(0, DATA)
    spec = importlib.util.spec_from_file_location(f"flow_tool_{name}", os.path.join(DATA, f"{name}.py"))
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod               # extract_frames' workers pickle its functions
    spec.loader.exec_module(mod)
    return mod.main


def export_main(argv):
    spec = importlib.util.spec_from_file_location("flow_export_model",
                                                  os.path.join(REPO, "tools", "export_model.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.main(argv)


def train_test_export_predict(config, out, labels, video, extra=(), deploy=True):
    """One training step, the test, and (deploy) export + predict on `video`; asserts on each
    output. `labels`: the label list predict names classes from. Returns the test results."""
    from paddlevideo.deploy.cli import predict_main
    from paddlevideo.tasks.cli import main
    overrides = [x for o in list(tiny()) + list(extra) for x in ("-o", o)]
    assert main(["-c", config, "-o", f"output_dir={out}", "--max_iters", "1"] + overrides) == 0
    ckpt = sorted(glob.glob(os.path.join(out, "*epoch_00001.pdparams")))
    assert len(ckpt) == 1, os.listdir(out)
    assert main(["-c", config, "-o", f"output_dir={out}", "--test", "-w", ckpt[0],
                 "--test_engine", "dygraph"] + overrides) == 0
    stem = os.path.splitext(os.path.basename(ckpt[0]))[0]
    (tested,) = glob.glob(os.path.join(glob.escape(out), f"test_{stem}__*"))
    with open(os.path.join(tested, "test_results.json")) as f:
        results = json.load(f)
    if deploy:
        model_dir = os.path.join(out, "inference")
        assert export_main(["-c", config, "-p", ckpt[0], "-o", model_dir, "--label_list", labels,
                            "--override"] + [o for o in list(tiny(False)) + list(extra)
                                             if not o.startswith(("DATASET", "epochs", "log_"))]) == 0
        jsonl = os.path.join(out, "predict.jsonl")
        assert predict_main(["-i", video, "--model_dir", model_dir, "--output", jsonl]) == 0
        rows = [json.loads(x) for x in lines(jsonl)]
        names = {x.split(" ", 1)[1] for x in lines(labels)}
        assert len(rows) == 1 and rows[0]["top1"] in names, rows
    return results


def read_frames(src, first, count):
    """`count` frames (BGR) of a real video from frame `first`."""
    import cv2
    cap = cv2.VideoCapture(src)
    frames = []
    while len(frames) < first + count:
        ok, f = cap.read()
        assert ok, src
        frames.append(f)
    return frames[first:]


def write_avi(frames, dst):
    """An MJPG .avi of BGR frames."""
    import cv2
    h, w = frames[0].shape[:2]
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    vw = cv2.VideoWriter(dst, cv2.VideoWriter_fourcc(*"MJPG"), 25, (w, h))
    for f in frames:
        vw.write(f)
    vw.release()


_WEBM = """
import sys, av, numpy as np
for dst in sys.argv[1:]:
    frames = np.load(dst + ".npy")
    with av.open(dst, "w") as c:
        s = c.add_stream("libvpx", rate=12)
        s.width, s.height, s.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        s.options = {"deadline": "realtime", "cpu-used": "8", "b": "2M"}
        for f in frames:
            c.mux(s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        c.mux(s.encode())
"""


def write_webms(clips):
    """VP8 .webm files {path: BGR frames}, written by a fresh interpreter (PyAV's encoders can fail
    to open once decord, with its own FFmpeg, is loaded in this process)."""
    import numpy as np
    for dst, frames in clips.items():
        np.save(dst + ".npy", np.ascontiguousarray(np.stack(frames)[..., ::-1]))
    subprocess.run([sys.executable, "-c", _WEBM, *clips], check=True, timeout=120)
    for dst in clips:
        os.remove(dst + ".npy")


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """UCF101, Kinetics-400 and Something-Something V2 in their official layouts, as a user
    downloads them, around short real clips; the commands run in this folder."""
    example, demo = os.path.join(SHARED, "example.avi"), os.path.join(SHARED, "demo.mp4")
    if not (os.path.isfile(example) and os.path.isfile(demo)):
        pytest.skip(f"{SHARED} (example.avi, demo.mp4) is absent: these flows run on real videos")
    r = str(tmp_path_factory.mktemp("flows"))
    os.makedirs(f"{r}/data")                  # what the repository ships in data/, configs name it
    shutil.copy(os.path.join(DATA, "kinetics400_label_list.txt"), f"{r}/data/")
    arch = read_frames(example, 40, 48)                           # 320x240 (xvid)
    wrestle = read_frames(demo, 100, 48)                          # 340x256 (H.264)

    # UCF101: UCF-101/<Class>/v_<Class>_gGG_cCC.avi, ucfTrainTestlist (1-based labels; the test
    # lists have none). 101 classes, two of them on disk.
    names = [f"Class{i:03d}" for i in range(101)]
    names[2], names[3] = "Archery", "ArmWrestling"
    for g in (1, 2, 8):
        write_avi(arch, f"{r}/UCF-101/Archery/v_Archery_g{g:02d}_c01.avi")
        write_avi(wrestle, f"{r}/UCF-101/ArmWrestling/v_ArmWrestling_g{g:02d}_c01.avi")
    os.makedirs(f"{r}/ucfTrainTestlist")
    with open(f"{r}/ucfTrainTestlist/classInd.txt", "w") as f:
        f.write("".join(f"{i + 1} {n}\r\n" for i, n in enumerate(names)))
    for k in (1, 2, 3):
        with open(f"{r}/ucfTrainTestlist/trainlist0{k}.txt", "w") as f:
            f.write("".join(f"{c}/v_{c}_g{g:02d}_c01.avi {names.index(c) + 1}\r\n"
                            for c in ("Archery", "ArmWrestling") for g in (2, 8)))
        with open(f"{r}/ucfTrainTestlist/testlist0{k}.txt", "w") as f:
            f.write("".join(f"{c}/v_{c}_g01_c01.avi\r\n" for c in ("Archery", "ArmWrestling")))

    # Kinetics-400: the CSVs and one folder per label name (with spaces); one clip is gone.
    os.makedirs(f"{r}/kinetics400")
    for split, ids in (("train", ("trainAAAAAA", "trainBBBBBB")), ("val", ("valCCCCCCCC", "valDDDDDDDD"))):
        write_avi(arch, f"{r}/k400/{split}/archery/{ids[0]}_000010_000020.avi")
        write_avi(wrestle, f"{r}/k400/{split}/arm wrestling/{ids[1]}_000003_000013.avi")
        csv = "train.csv" if split == "train" else "validate.csv"
        with open(f"{r}/kinetics400/{csv}", "w") as f:
            f.write("label,youtube_id,time_start,time_end,split,is_cc\n"
                    f"archery,{ids[0]},10,20,{split},0\n"
                    f'"arm wrestling",{ids[1]},3,13,{split},0\n'
                    f"abseiling,goneEEEEEEE,0,10,{split},0\n")

    # Something-Something V2: <id>.webm, the labels JSON (174 templates) and the split JSONs.
    templates = [f"Doing thing {i} with [something]" for i in range(174)]
    templates[0], templates[1] = ("Pushing [something] from left to right",
                                  "Pushing [something] from right to left")
    os.makedirs(f"{r}/20bn-something-something-v2")
    write_webms({f"{r}/20bn-something-something-v2/{vid}.webm": frames[:24] for vid, frames in
                 (("101", arch), ("102", wrestle), ("201", arch), ("202", wrestle))})
    with open(f"{r}/something-something-v2-labels.json", "w") as f:
        json.dump({t.replace("[", "").replace("]", ""): str(i) for i, t in enumerate(templates)}, f)
    for split, ids in (("train", ("101", "102")), ("validation", ("201", "202"))):
        with open(f"{r}/something-something-v2-{split}.json", "w") as f:
            json.dump([{"id": i, "label": "x", "template": templates[k], "placeholders": ["x"]}
                       for k, i in enumerate(ids)], f)
    # your own videos: one folder per class
    for k in range(3):
        write_avi(arch[k * 8:], f"{r}/my_videos/shooting_arrows/clip{k}.avi")
        write_avi(wrestle[k * 8:], f"{r}/my_videos/arm_wrestling/clip{k}.avi")
    return r


def test_custom_videos(root, monkeypatch):
    """docs/data.md#custom-data: folders per class -> lists -> the UCF101 fine-tuning config with
    the class count and lists given by -o, as that section says."""
    monkeypatch.chdir(root)
    assert tool("custom")(["--videos", "my_videos", "--out", "data/custom", "--val-ratio", "0.34"]) == 0
    assert lines("data/custom/label_list.txt") == ["0 arm_wrestling", "1 shooting_arrows"]
    assert len(lines("data/custom/val.list")) == 2
    results = train_test_export_predict(
        os.path.join(TSM, "tsm_ucf101_videos.yaml"), f"{root}/out/custom",
        "data/custom/label_list.txt", "my_videos/arm_wrestling/clip0.avi",
        ["MODEL.head.num_classes=2", "DATASET.train.file_path=data/custom/train.list",
         "DATASET.valid.file_path=data/custom/val.list",
         "DATASET.test.file_path=data/custom/val.list",
         "DATASET.label_list=data/custom/label_list.txt"], deploy=False)
    assert (results["evaluated"], results["failed"]) == (2, 0)


def test_ucf101_videos_and_frames(root, monkeypatch):
    """docs/data.md#ucf101: lists -> tsm_ucf101_videos.yaml; frames -> tsm_ucf101_frames.yaml."""
    monkeypatch.chdir(root)
    assert tool("ucf101")(["--videos", "UCF-101", "--splits-dir", "ucfTrainTestlist",
                           "--out", "data/ucf101", "--quiet"]) == 0
    train = lines("data/ucf101/ucf101_train_split_1_videos.txt")
    assert train[0] == f"{root}/UCF-101/Archery/v_Archery_g02_c01.avi 2"
    results = train_test_export_predict(
        os.path.join(TSM, "tsm_ucf101_videos.yaml"), f"{root}/out/ucf_videos",
        "data/ucf101/ucf101_label_list.txt", "UCF-101/ArmWrestling/v_ArmWrestling_g01_c01.avi")
    assert (results["evaluated"], results["failed"]) == (2, 0)

    for part in ("train", "val"):
        assert tool("extract_frames")(
            ["--list", f"data/ucf101/ucf101_{part}_split_1_videos.txt", "--prefix", "UCF-101",
             "--out", "data/ucf101/frames", "--frame-list",
             f"data/ucf101/ucf101_{part}_split_1_rawframes.txt", "-j", "2", "--quiet"]) == 0
    extracted = lines("data/ucf101/ucf101_train_split_1_rawframes.txt")
    assert extracted[0] == f"{root}/data/ucf101/frames/Archery/v_Archery_g02_c01 48 2"
    # the lists of every split from the extracted folders, as the UCF101 section says
    assert tool("ucf101")(["--videos", "UCF-101", "--splits-dir", "ucfTrainTestlist",
                           "--out", "data/ucf101", "--frames", "data/ucf101/frames", "--quiet"]) == 0
    assert lines("data/ucf101/ucf101_train_split_3_rawframes.txt") == extracted
    results = train_test_export_predict(
        os.path.join(TSM, "tsm_ucf101_frames.yaml"), f"{root}/out/ucf_frames", None, None,
        deploy=False)
    assert (results["evaluated"], results["failed"]) == (2, 0)


def test_kinetics400_videos_and_frames(root, monkeypatch):
    """docs/data.md#kinetics-400: the shipped class indices, a missing clip tolerated."""
    monkeypatch.chdir(root)
    for csv in ("train.csv", "validate.csv"):
        videos = "k400/train" if csv == "train.csv" else "k400/val"
        assert tool("kinetics400")(["--csv", f"kinetics400/{csv}", "--videos", videos,
                                    "--out", "data/k400", "--quiet"]) == 0
    val = lines("data/k400/val.list")
    assert [int(x.rsplit(" ", 1)[1]) for x in val] == [K400_LABELS["archery"],
                                                       K400_LABELS["arm wrestling"]]
    assert val[1].startswith(f"{root}/k400/val/arm wrestling/")
    assert len(lines("data/k400/val_missing.txt")) == 1
    results = train_test_export_predict(
        os.path.join(TSM, "tsm_k400_videos.yaml"), f"{root}/out/k400_videos",
        os.path.join(REPO, "data", "kinetics400_label_list.txt"), val[0].rsplit(" ", 1)[0])
    assert (results["evaluated"], results["failed"]) == (2, 0)

    for part in ("train", "val"):
        assert tool("extract_frames")(
            ["--list", f"data/k400/{part}.list", "--prefix", f"k400/{part}", "--out",
             f"data/k400/frames/{part}", "--frame-list", f"data/k400/{part}_frames.list",
             "-j", "2", "--quiet"]) == 0
    assert lines("data/k400/val_frames.list")[1].startswith(
        f"{root}/data/k400/frames/val/arm wrestling/valDDDDDDDD_000003_000013 48 6")
    results = train_test_export_predict(
        os.path.join(TSM, "tsm_k400_frames.yaml"), f"{root}/out/k400_frames", None, None,
        deploy=False)
    assert (results["evaluated"], results["failed"]) == (2, 0)


def sthv2_config(kind):
    """The shipped Something-Something V2 config (no overrides needed)."""
    return os.path.join(TSM, f"tsm_sthv2_{kind}.yaml"), []


def test_sthv2_videos_and_frames(root, monkeypatch):
    """docs/data.md#something-something-v2: webm videos and their frames."""
    monkeypatch.chdir(root)
    assert tool("sthv2")(["--labels", "something-something-v2-labels.json",
                          "--train", "something-something-v2-train.json",
                          "--val", "something-something-v2-validation.json",
                          "--videos", "20bn-something-something-v2", "--out", "data/sthv2",
                          "--quiet"]) == 0
    assert lines("data/sthv2/val.list") == [f"{root}/20bn-something-something-v2/201.webm 0",
                                            f"{root}/20bn-something-something-v2/202.webm 1"]
    assert lines("data/sthv2/label_list.txt")[1] == "1 Pushing something from right to left"
    config, extra = sthv2_config("videos")
    results = train_test_export_predict(config, f"{root}/out/sthv2_videos",
                                        "data/sthv2/label_list.txt",
                                        "20bn-something-something-v2/202.webm", extra)
    assert (results["evaluated"], results["failed"]) == (2, 0)

    for part in ("train", "val"):
        assert tool("extract_frames")(
            ["--list", f"data/sthv2/{part}.list", "--prefix", "20bn-something-something-v2",
             "--out", "data/sthv2/frames", "--frame-list", f"data/sthv2/{part}_frames.list",
             "-j", "2", "--quiet"]) == 0
    assert lines("data/sthv2/val_frames.list")[0] == f"{root}/data/sthv2/frames/201 24 0"
    config, extra = sthv2_config("frames")
    results = train_test_export_predict(config, f"{root}/out/sthv2_frames", None, None, extra,
                                        deploy=False)
    assert (results["evaluated"], results["failed"]) == (2, 0)
