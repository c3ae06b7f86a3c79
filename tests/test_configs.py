"""The shipped configs: each resolves, passes the whole check and builds its model, solver, metric
and pipelines; each run writes to its own folder; the lists and label lists are read where the
prep tools write them; variants state only what differs; wrong values stop tools/main.py with one
line."""
import glob
import os
import subprocess
import sys

import pytest
import yaml

from paddlevideo.config_check import load_and_check_config
from paddlevideo.metrics import build_metric
from paddlevideo.modeling import PRETRAINED, build_model
from paddlevideo.solver import build_optimizer
from paddlevideo.tasks.common import output_dir_of
from paddlevideo.utils.config import get_config, to_plain

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = sorted(glob.glob(os.path.join(REPO, "configs", "recognition", "**", "*.yaml"),
                           recursive=True))
NAMES = [os.path.relpath(p, REPO) for p in CONFIGS]
BASES = sorted(glob.glob(os.path.join(REPO, "configs", "_base_", "*.yaml")))
K400 = os.path.join(REPO, "configs", "recognition", "tsm", "tsm_k400_videos.yaml")


def config(name):
    return os.path.join(REPO, "configs", "recognition", name)


def test_the_promised_configs_exist():
    names = {os.path.relpath(p, os.path.join(REPO, "configs", "recognition")) for p in CONFIGS}
    for kind in ("videos", "frames"):
        for data in ("k400", "ucf101"):
            assert f"tsm/tsm_{data}_{kind}.yaml" in names
            assert f"tsm/tsm_{data}_{kind}_nhwc.yaml" in names
        assert f"tsm/tsm_sthv2_{kind}.yaml" in names
    assert {"tsn/tsn_k400_videos.yaml", "tsm/tsm_online_k400_videos.yaml", "tsm/tsm_demo.yaml",
            "tsn/tsn_demo.yaml", "tsm/tsm_online_demo.yaml", "tsm/tsm_mobilenetv2_k400_videos.yaml",
            "tsm/tsm_mobilenetv2_online_jester_frames.yaml"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=NAMES)
def test_config_checks_and_builds(path):
    from paddlevideo.loader import Compose
    cfg = load_and_check_config(path)
    backbone = cfg.MODEL.backbone
    pretrained = backbone.get("pretrained")
    if "demo" in path:
        assert pretrained is None and backbone.depth == 18
    elif "ucf101" in path:
        assert pretrained == "TSM_k400" and cfg.MODEL.head.num_classes == 101
    elif "sthv2" in path:
        assert pretrained == "ImageNet" and cfg.MODEL.head.num_classes == 174
    elif "mobilenetv2" in path:
        assert pretrained == "MobileNetV2_torchvision" and backbone.name == "MobileNetV2TSM"
        assert cfg.MODEL.head.num_classes == (27 if "jester" in path else 400)
        assert cfg.MODEL.head.in_channels == 1280
    else:
        assert pretrained == "ResNet50_pretrain"
    # "ImageNet" is the depth-following name (common decision 5) that the weights area resolves
    assert pretrained is None or pretrained in PRETRAINED or pretrained == "ImageNet"
    if path.endswith("_nhwc.yaml"):
        assert backbone.data_format == "NHWC"
    if "online" in path:
        assert backbone.shift_mode == "unidirectional"
    model = build_model(cfg.MODEL, load_pretrained=False)       # no network in tests
    optimizer, schedule = build_optimizer(cfg.OPTIMIZER, model, steps_per_epoch=10,
                                          epochs=cfg.epochs)
    assert schedule.get_lr() > 0
    build_metric(cfg.METRIC, cfg.MODEL.head.num_classes)
    for mode in ("train", "valid", "test"):
        pipeline = Compose(cfg.PIPELINE[mode])
        assert pipeline.num_seg == backbone.num_seg
        assert cfg.DATASET[mode].format in ("VideoDataset", "FrameDataset")
    # validation and test are declared once and read clips the same way
    assert to_plain(cfg.PIPELINE.valid) == to_plain(cfg.PIPELINE.test)
    assert cfg.model_name and cfg.epochs > 0
    assert "_base_" not in cfg and "_delete_" not in str(to_plain(cfg))


def test_every_config_writes_to_its_own_folder():
    """The K400 -> UCF101 fine-tune must not overwrite the K400 run (nor any run another)."""
    folders = {}
    for path, name in zip(CONFIGS, NAMES):
        cfg = get_config(path)
        folder = os.path.normpath(output_dir_of(cfg))
        assert folder not in folders, f"{name} and {folders[folder]} both write to {folder}"
        folders[folder] = name
        if "demo" not in path:          # the demo follows model_name (-o model_name=X moves it)
            assert cfg.output_dir == "output/" + os.path.basename(path)[:-len(".yaml")]
    assert len(folders) == len(CONFIGS)


@pytest.mark.parametrize("path", [p for p in CONFIGS if p.endswith("_nhwc.yaml")],
                         ids=lambda p: os.path.basename(p))
def test_nhwc_variants_differ_from_their_base_only_by_data_format(path):
    base = path.replace("_nhwc.yaml", ".yaml")
    nhwc, nchw = to_plain(get_config(path)), to_plain(get_config(base))
    assert nhwc["MODEL"]["backbone"].pop("data_format") == "NHWC"
    assert "data_format" not in nchw["MODEL"]["backbone"]
    assert nhwc.pop("output_dir") != nchw.pop("output_dir")
    assert nhwc == nchw


def test_frames_variants_differ_from_their_videos_config_only_by_the_frames_switch():
    for data in ("k400", "ucf101", "sthv2"):
        frames = to_plain(get_config(config(f"tsm/tsm_{data}_frames.yaml")))
        videos = to_plain(get_config(config(f"tsm/tsm_{data}_videos.yaml")))
        for mode in ("train", "valid", "test"):
            assert frames["PIPELINE"][mode].pop("decode") == {"name": "FrameDecoder"}
            assert videos["PIPELINE"][mode].pop("decode") == {"name": "VideoDecoder",
                                                               "backend": "decord"}
            ds_f, ds_v = frames["DATASET"][mode], videos["DATASET"][mode]
            assert (ds_f.pop("format"), ds_v.pop("format")) == ("FrameDataset", "VideoDataset")
            assert ds_f.pop("suffix") == "img_{:05}.jpg"
            assert ds_f.pop("file_path") != ds_v.pop("file_path")
        assert frames.pop("output_dir") != videos.pop("output_dir")
        assert frames == videos


# Where the prep tools write (common decision 4) and the label lists (decision 3).
LISTS = {
    "k400_videos": ("data/k400/train.list", "data/k400/val.list", "data/kinetics400_label_list.txt"),
    "k400_frames": ("data/k400/train_frames.list", "data/k400/val_frames.list",
                    "data/kinetics400_label_list.txt"),
    "ucf101_videos": ("data/ucf101/ucf101_train_split_1_videos.txt",
                      "data/ucf101/ucf101_val_split_1_videos.txt", "data/ucf101/ucf101_label_list.txt"),
    "ucf101_frames": ("data/ucf101/ucf101_train_split_1_rawframes.txt",
                      "data/ucf101/ucf101_val_split_1_rawframes.txt",
                      "data/ucf101/ucf101_label_list.txt"),
    "sthv2_videos": ("data/sthv2/train.list", "data/sthv2/val.list", "package:sthv2"),
    "sthv2_frames": ("data/sthv2/train_frames.list", "data/sthv2/val_frames.list",
                     "package:sthv2"),
    "jester_frames": ("data/jester/train.list", "data/jester/val.list", "data/jester/label_list.txt"),
    "demo": ("data/demo/train.list", "data/demo/val.list", "data/demo/label_list.txt"),
}


@pytest.mark.parametrize("path", CONFIGS, ids=NAMES)
def test_configs_read_the_lists_where_the_prep_tools_write_them(path):
    stem = os.path.basename(path)[:-len(".yaml")]
    key = "demo" if "demo" in stem else next(k for k in LISTS if k in stem)
    train, val, labels = LISTS[key]
    cfg = get_config(path)
    assert cfg.DATASET.train.file_path == train and cfg.DATASET.valid.file_path == val
    assert cfg.DATASET.test.file_path == (val if key != "demo" else "data/demo/test.list")
    assert cfg.DATASET.label_list == labels
    prefix = "data/demo" if key == "demo" else ""        # the lists hold absolute paths
    assert all(cfg.DATASET[m].data_prefix == prefix for m in ("train", "valid", "test"))


def test_the_shipped_kinetics_label_list_has_the_heads_400_classes():
    with open(os.path.join(REPO, "data", "kinetics400_label_list.txt")) as f:
        assert sum(1 for line in f if line.strip()) == 400 == get_config(K400).MODEL.head.num_classes


def test_ucf101_config_runs_on_what_the_prep_tool_writes(tmp_path, monkeypatch):
    """After `python data/ucf101.py --videos UCF-101 --splits-dir ucfTrainTestlist --out
    data/ucf101` in a folder, the shipped config finds its lists and its 101-name label list
    there with no edit, and a label list of another class count is refused."""
    classes = [f"Class{i:03d}" for i in range(101)]
    (tmp_path / "ucfTrainTestlist").mkdir()
    (tmp_path / "ucfTrainTestlist" / "classInd.txt").write_text(
        "".join(f"{i + 1} {c}\n" for i, c in enumerate(classes)))
    for name in ("trainlist01.txt", "testlist01.txt"):
        clip = f"{classes[0]}/v_{classes[0]}_g01_c0{len(name) % 3}.avi"
        (tmp_path / "UCF-101" / classes[0]).mkdir(parents=True, exist_ok=True)
        (tmp_path / "UCF-101" / clip).write_bytes(b"x")
        (tmp_path / "ucfTrainTestlist" / name).write_text(clip + (" 1\n" if "train" in name else "\n"))
    monkeypatch.chdir(tmp_path)
    subprocess.run([sys.executable, os.path.join(REPO, "data", "ucf101.py"), "--videos", "UCF-101",
                    "--splits-dir", "ucfTrainTestlist", "--out", "data/ucf101", "--splits", "1"],
                   check=True, capture_output=True, timeout=120)
    cfg = load_and_check_config(config("tsm/tsm_ucf101_videos.yaml"))   # label count checked
    for path in [cfg.DATASET[m].file_path for m in ("train", "valid", "test")] + [cfg.DATASET.label_list]:
        assert os.path.isfile(path), path
    with open("data/ucf101/ucf101_label_list.txt", "a") as f:
        f.write("101 OneTooMany\n")
    with pytest.raises(Exception, match=r"names 102 classes but MODEL.head.num_classes is 101"):
        load_and_check_config(config("tsm/tsm_ucf101_videos.yaml"))


def test_sthv2_follows_the_original_tsm_recipe():
    cfg = get_config(config("tsm/tsm_sthv2_videos.yaml"))
    train = cfg.PIPELINE.train.transform
    names = [next(iter(op)) for op in train]
    assert "RandomFlip" not in names                         # left/right decides classes
    assert train[0].MultiScaleCrop.scales == [1, 0.875, 0.75, 0.66]
    assert train[0].MultiScaleCrop.target_size == 224
    assert cfg.MODEL.backbone.num_seg == cfg.PIPELINE.train.sample.num_seg == 8
    assert cfg.MODEL.head.drop_ratio == 0.5 and cfg.MODEL.head.num_classes == 174
    lr = cfg.OPTIMIZER.learning_rate
    assert (lr.name, lr.boundaries, cfg.epochs) == ("PiecewiseDecay", [20, 40], 50)
    # lr 0.01 for the recipe's global batch 64, scaled to the shipped global batch of 128
    assert lr["values"] == [0.02, 0.002, 0.0002] and cfg.DATASET.batch_size * 8 == 128
    assert cfg.OPTIMIZER.weight_decay.value == 0.0005 and cfg.OPTIMIZER.grad_clip.value == 20.0
    assert cfg.OPTIMIZER.name == "Momentum" and cfg.OPTIMIZER.momentum == 0.9
    r101 = load_and_check_config(config("tsm/tsm_sthv2_frames.yaml"), ["MODEL.backbone.depth=101"])
    assert build_model(r101.MODEL, load_pretrained=False).backbone.depth == 101


def test_every_base_file_is_used():
    used = set()
    for path in CONFIGS:
        with open(path) as f:
            bases = yaml.safe_load(f).get("_base_", [])
        for base in [bases] if isinstance(bases, str) else bases:
            used.add(os.path.normpath(os.path.join(os.path.dirname(path), base)))
    assert set(BASES) <= used


MAIN_ERRORS = [
    (["-o", "epochs=two"], "override -o epochs=two (epochs): epochs must be an integer >= 1; got 'two'."),
    (["-o", "MODEL.head.num_classes=two"],
     "override -o MODEL.head.num_classes=two (MODEL.head.num_classes): head 'TSMHead': "
     "'num_classes' must be an integer from 1 to 100000; got 'two'."),
    (["-o", "MODEL.backbone.depth=19"],
     "(MODEL.backbone.depth): backbone 'ResNetTSM': 'depth' must be one of 18, 34, 50, 101, 152; got 19."),
    (["-o", "PIPELINE.train.decode.backend=ffmpeg"],
     "(PIPELINE.train.decode.backend): pipeline op 'VideoDecoder': 'backend' must be one of decord, "
     "cv2, pyav, opencv, av; got 'ffmpeg'."),
    (["-o", "DATASET.batch_size=4.5"],
     "(DATASET.batch_size): DATASET.batch_size must be an integer >= 1; got 4.5."),
    (["-o", "PIPELINE.valid.sample.num_seg=16"],
     "override -o PIPELINE.valid.sample.num_seg=16 (PIPELINE.valid.sample.num_seg): PIPELINE.valid "
     "samples 16 frames per clip (num_seg 16) but the backbone takes num_seg=8 "
     "(configs/recognition/tsm/tsm_k400_videos.yaml:13 (MODEL.backbone.num_seg)); make them equal."),
    (["-o", "DATASET.test.format=FrameDataset"],
     "override -o DATASET.test.format=FrameDataset (DATASET.test.format): FrameDataset reads frame "
     "folders and needs `decode: {name: FrameDecoder}` in PIPELINE.test, but "
     "configs/recognition/tsm/tsm_k400_videos.yaml:59 (PIPELINE.test.decode) has VideoDecoder."),
    (["-o", "INFERENCE.short_size=320"],
     "(INFERENCE.short_size): INFERENCE.short_size is 320 but PIPELINE.test gives 256, and the "
     "exported model preprocesses as PIPELINE.test does"),
    (["-o", "INFERENCE.num_seg=16"],
     "(INFERENCE.num_seg): INFERENCE.num_seg is 16 but the backbone takes num_seg=8"),
    (["-o", "DATASET.label_list=data/demo_labels.txt"],
     "names 3 classes but MODEL.head.num_classes is 400 (" + K400 + ":16 (MODEL.head.num_classes))"),
]


@pytest.mark.parametrize("args,message", MAIN_ERRORS, ids=[a[-1] for a, _ in MAIN_ERRORS])
def test_wrong_values_stop_main_with_one_line(args, message, capsys, monkeypatch, tmp_path):
    """tools/main.py's main(): exit 1 and one `error:` line naming the key, before anything runs
    (the K400 data is absent here, so getting past the check would fail on the lists instead)."""
    from paddlevideo.tasks.cli import main
    monkeypatch.chdir(REPO)
    if "label_list" in args[-1]:
        (tmp_path / "data").mkdir()
        (tmp_path / "data" / "demo_labels.txt").write_text("0 a\n1 b\n2 c\n")
        monkeypatch.chdir(tmp_path)
        args = ["-c", K400] + args
    else:
        args = ["-c", os.path.relpath(K400, REPO)] + args
    assert main(args) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err


def test_a_frames_config_with_a_video_decoder_in_yaml_names_both_lines(tmp_path, capsys):
    from paddlevideo.tasks.cli import main
    path = tmp_path / "mine.yaml"
    path.write_text(f"_base_: {K400}\nDATASET:\n  train:\n    format: FrameDataset\n")
    assert main(["-c", str(path)]) == 1
    err = capsys.readouterr().err.strip()
    assert err == (f"error: {path}:4 (DATASET.train.format): FrameDataset reads frame folders and "
                   f"needs `decode: {{name: FrameDecoder}}` in PIPELINE.train, but {K400}:40 "
                   f"(PIPELINE.train.decode) has VideoDecoder.")


def test_print_config_shows_the_resolved_config_and_where_each_value_was_set(capsys):
    from paddlevideo.tasks.cli import print_config_main
    nhwc = config("tsm/tsm_ucf101_frames_nhwc.yaml")
    assert print_config_main(["-c", nhwc, "-o", "epochs=3"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed == to_plain(get_config(nhwc, ["epochs=3"])) and printed["epochs"] == 3
    assert print_config_main(["-c", nhwc, "--origins"]) == 0
    lines = {line.split(":")[0]: line for line in capsys.readouterr().out.splitlines()}
    assert lines["MODEL.backbone.data_format"].endswith(f"# {nhwc}:6")
    assert lines["MODEL.head.num_classes"].endswith(config("tsm/tsm_ucf101_videos.yaml") + ":10")
    assert lines["PIPELINE.test.decode.name"].endswith(
        os.path.join(REPO, "configs", "_base_", "frames.yaml") + ":15")
    assert lines["MODEL.backbone.depth"].endswith(f"# {K400}:12")


def test_a_multi_crop_metric_must_match_the_test_views(tmp_path):
    path = tmp_path / "mc.yaml"
    path.write_text(f"_base_: {config('tsm/tsm_demo.yaml')}\nMETRIC:\n  name: MultiCropMetric\n"
                    f"  num_ensemble_views: 2\n")
    with pytest.raises(Exception, match=r"mc.yaml:3 \(METRIC\): METRIC MultiCropMetric promises 2 "
                                         r"clips x 1 crops per video, but the pipeline gives 1 clips"):
        load_and_check_config(str(path))
    assert load_and_check_config(str(path), ["PIPELINE.test.sample.num_clips=2"]).METRIC.name == \
        "MultiCropMetric"
