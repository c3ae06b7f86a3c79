"""Config loading, overrides and the errors a user meets for a bad config."""
import textwrap

import yaml

import pytest

from paddlevideo.modeling import build_model
from paddlevideo.utils.config import ConfigError, get_config

CONFIG = """\
MODEL:
    framework: "Recognizer2D"
    backbone:
        name: "ResNetTSM"
        depth: 18
        num_seg: 4
    head:
        name: "TSMHead"
        num_classes: 5
        in_channels: 512
PIPELINE:
    train:
        sample:
            name: "Sampler"
            num_seg: 4
        transform:
            - MultiScaleCrop:
                target_size: 224
            - RandomFlip:
            - Normalization:
                mean: [0.485, 0.456, 0.406]
                std: [0.229, 0.224, 0.225]
model_name: "TSM"
epochs: 50
"""


def write(tmp_path, text, name="tsm.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def test_loads_with_attribute_access_and_builds(tmp_path):
    cfg = get_config(write(tmp_path, CONFIG))
    assert cfg.MODEL.backbone.depth == 18 and cfg.epochs == 50
    assert cfg.PIPELINE.train.transform[1] == {"RandomFlip": None}
    model = build_model(cfg.MODEL)
    assert model.backbone.num_seg == 4


def test_overrides_are_typed_by_yaml_and_reach_list_items(tmp_path):
    cfg = get_config(write(tmp_path, CONFIG), overrides=[
        "epochs=3", "MODEL.backbone.shift_ratio=0.25", "MODEL.backbone.data_format=NHWC",
        "PIPELINE.train.transform[0].MultiScaleCrop.target_size=112",
        "PIPELINE.train.transform.2.Normalization.mean=[0.5, 0.5, 0.5]",
        "PIPELINE.train.transform[1].RandomFlip.p=0.0", "model_name=x", "output_dir=__import__('os')"])
    assert cfg.epochs == 3 and isinstance(cfg.epochs, int)
    assert cfg.MODEL.backbone.shift_ratio == 0.25
    assert cfg.PIPELINE.train.transform[0].MultiScaleCrop.target_size == 112
    assert cfg.PIPELINE.train.transform[2].Normalization.mean == [0.5, 0.5, 0.5]
    assert cfg.PIPELINE.train.transform[1].RandomFlip.p == 0.0
    assert cfg.output_dir == "__import__('os')"                 # a string, never evaluated


def test_unknown_component_names_its_line_and_nearest_choice(tmp_path):
    cfg = get_config(write(tmp_path, CONFIG.replace('name: "ResNetTSM"', 'name: "ResNetTMS"')))
    with pytest.raises(ConfigError) as err:
        build_model(cfg.MODEL)
    assert "tsm.yaml:4 (MODEL.backbone.name)" in str(err.value)
    assert "unknown backbone 'ResNetTMS'" in str(err.value) and "Did you mean: ResNetTSM" in str(err.value)


def test_misspelled_component_key_names_its_line(tmp_path):
    cfg = get_config(write(tmp_path, CONFIG.replace("depth: 18", "depht: 18")))
    with pytest.raises(ConfigError) as err:
        build_model(cfg.MODEL)
    message = str(err.value)
    assert "tsm.yaml:5 (MODEL.backbone.depht)" in message
    assert "no parameter 'depht'" in message and "Did you mean: depth" in message


def test_misspelled_top_level_and_section_keys(tmp_path):
    with pytest.raises(ConfigError, match=r"tsm.yaml:24 \(epoch\).*Did you mean: epochs"):
        get_config(write(tmp_path, CONFIG.replace("epochs: 50", "epoch: 50")))
    with pytest.raises(ConfigError, match=r"tsm.yaml:3 \(MODEL.backbon\).*Did you mean: backbone"):
        get_config(write(tmp_path, CONFIG.replace("    backbone:", "    backbon:")))
    with pytest.raises(ConfigError, match=r"PIPELINE.train.transfrom.*Did you mean: transform"):
        get_config(write(tmp_path, CONFIG.replace("transform:", "transfrom:")))


def test_a_misspelled_override_is_caught_with_its_origin(tmp_path):
    with pytest.raises(ConfigError, match=r"override -o epoks=3 \(epoks\).*Did you mean: epochs"):
        get_config(write(tmp_path, CONFIG), overrides=["epoks=3"])
    cfg = get_config(write(tmp_path, CONFIG), overrides=["MODEL.backbone.dept=50"])
    with pytest.raises(ConfigError, match=r"override -o MODEL.backbone.dept=50.*Did you mean: depth"):
        build_model(cfg.MODEL)


@pytest.mark.parametrize("override,message", [
    ("epochs", "has no '='"),
    ("MODLE.backbone.depth=50", "no key 'MODLE' under '<top level>'. Did you mean: MODEL"),
    ("PIPELINE.train.transform[7].RandomFlip.p=1", "list of 3 items"),
    ("MODEL.backbone.depth=[1, 2", "not valid YAML"),
    ("epochs.value=3", "is a value, not a section"),
])
def test_bad_overrides(tmp_path, override, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace(".", r"\.")):
        get_config(write(tmp_path, CONFIG), overrides=[override])


def test_duplicate_key_and_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match=r"tsm.yaml:25: key 'epochs' is written twice"):
        get_config(write(tmp_path, CONFIG + "epochs: 3\n"))
    with pytest.raises(ConfigError, match="config file not found"):
        get_config(str(tmp_path / "nope.yaml"))
    with pytest.raises(ConfigError, match="not valid YAML"):
        get_config(write(tmp_path, "MODEL: [unclosed\n"))


def test_component_without_name_lists_the_choices(tmp_path):
    cfg = get_config(write(tmp_path, CONFIG.replace('        name: "TSMHead"\n', "")))
    with pytest.raises(ConfigError, match=r"\(MODEL.head\): the head config has no 'name'; choose one of: TSMHead, TSNHead"):
        build_model(cfg.MODEL)


# ----- values are checked, never coerced ---------------------------------------------------

@pytest.mark.parametrize("override,message", [
    ("epochs=two", "override -o epochs=two (epochs): epochs must be an integer >= 1; got 'two'."),
    ("epochs=0", "epochs must be an integer >= 1; got 0."),
    ("epochs=true", "epochs must be an integer >= 1; got true."),          # bool is not an int
    ("log_level=verbose", "log_level must be one of DEBUG, INFO, WARNING, ERROR"),
    ("MODEL.backbone=resnet", "MODEL.backbone must be a mapping; got 'resnet'."),
])
def test_fixed_section_values_are_checked(tmp_path, override, message):
    with pytest.raises(ConfigError) as err:
        get_config(write(tmp_path, CONFIG), overrides=[override])
    assert message in str(err.value)


def test_component_values_are_checked_with_their_line(tmp_path):
    from paddlevideo.config_check import check_config
    cfg = get_config(write(tmp_path, CONFIG.replace("depth: 18", "depth: 19")))
    with pytest.raises(ConfigError, match=r"tsm.yaml:5 \(MODEL.backbone.depth\): backbone "
                                          r"'ResNetTSM': 'depth' must be one of 18, 34, 50, 101, "
                                          r"152; got 19\.$"):
        check_config(cfg)
    cfg = get_config(write(tmp_path, CONFIG), ["PIPELINE.train.transform[0].MultiScaleCrop.target_size=[224]"])
    with pytest.raises(ConfigError, match=r"'target_size' must be an integer from 1 to 8192 or a list "
                                          r"of 2 integers from 1 to 8192; got \[224\]"):
        check_config(cfg)
    cfg = get_config(write(tmp_path, CONFIG), ["MODEL.head.num_classes=5.0"])
    with pytest.raises(ConfigError, match=r"'num_classes' must be an integer from 1 to 100000; got 5.0"):
        check_config(cfg)


def test_an_int_is_a_number_and_exponents_are_numbers(tmp_path):
    from paddlevideo.config_check import check_config
    text = CONFIG + "OPTIMIZER:\n    learning_rate: 1e-3\n    weight_decay: {name: L2, value: 5e-4}\n"
    cfg = check_config(get_config(write(tmp_path, text), ["MODEL.head.std=1"]))
    assert cfg.OPTIMIZER.learning_rate == 0.001 and cfg.OPTIMIZER.weight_decay.value == 0.0005
    assert get_config(write(tmp_path, text), ["OPTIMIZER.learning_rate=2e-05"]).OPTIMIZER.learning_rate == 2e-05


def test_a_required_parameter_and_a_program_set_one(tmp_path):
    from paddlevideo.config_check import check_config
    cfg = get_config(write(tmp_path, CONFIG.replace("            num_seg: 4\n", "")))
    with pytest.raises(ConfigError, match=r"\(PIPELINE.train.sample\): pipeline op 'Sampler' needs 'num_seg'"):
        check_config(cfg)
    text = CONFIG + "DATASET:\n    train: {format: VideoDataset, file_path: a.list, mode: test}\n"
    with pytest.raises(ConfigError, match=r"\(DATASET.train.mode\): dataset 'VideoDataset': 'mode' is "
                                          r"set by the program"):
        check_config(get_config(write(tmp_path, text)))


def test_a_constructor_refusal_names_the_op(tmp_path):
    from paddlevideo.config_check import check_config
    cfg = get_config(write(tmp_path, CONFIG), ["PIPELINE.train.transform[2].Normalization.std=[0, 1, 1]"])
    with pytest.raises(ConfigError, match=r"\(PIPELINE.train.transform\[2\].Normalization\): "
                                          r"Normalization: mean and std need 3 values and std > 0"):
        check_config(cfg)


# ----- _base_ inheritance -------------------------------------------------------------------

BASE = """\
MODEL:
    framework: Recognizer2D
    backbone: {name: ResNetTSM, depth: 18, num_seg: 4}
    head:
        name: TSMHead
        num_classes: 5
        in_channels: 512
        loss_cfg: {name: CrossEntropyLoss, label_smoothing: 0.1}
PIPELINE:
    train:
        sample: {name: Sampler, num_seg: 4}
        transform:
            - CenterCrop: {target_size: 32}
            - RandomFlip:
    valid: &eval
        sample: {name: Sampler, num_seg: 4, valid_mode: true}
    test: *eval
epochs: 50
"""


def test_children_merge_mappings_and_replace_everything_else(tmp_path):
    write(tmp_path, BASE, "base.yaml")
    (tmp_path / "sub").mkdir()
    child = write(tmp_path, """\
        _base_: ../base.yaml
        MODEL:
            head:
                num_classes: 7
                loss_cfg: {_delete_: true, name: CrossEntropyLoss}
        PIPELINE:
            train:
                transform:
                    - CenterCrop: {target_size: 16}
        epochs: 3
        """, "sub/child.yaml")
    cfg = get_config(child)
    assert cfg.MODEL.backbone == {"name": "ResNetTSM", "depth": 18, "num_seg": 4}    # inherited
    assert cfg.MODEL.head.num_classes == 7 and cfg.MODEL.head.in_channels == 512      # merged
    assert cfg.MODEL.head.loss_cfg == {"name": "CrossEntropyLoss"}                     # replaced
    assert cfg.PIPELINE.train.transform == [{"CenterCrop": {"target_size": 16}}]       # list replaced
    assert cfg.PIPELINE.train.sample.num_seg == 4 and cfg.epochs == 3
    assert "_base_" not in cfg
    # each key says where it was written, in the base or in the child
    assert cfg.MODEL.head.where("num_classes") == f"{child}:4 (MODEL.head.num_classes)"
    assert cfg.MODEL.head.where("in_channels") == f"{tmp_path / 'base.yaml'}:7 (MODEL.head.in_channels)"
    assert cfg.MODEL.backbone.where("depth").endswith("base.yaml:3 (MODEL.backbone.depth)")


def test_errors_name_the_base_or_the_child_line(tmp_path):
    from paddlevideo.config_check import check_config
    write(tmp_path, BASE, "base.yaml")
    child = write(tmp_path, "_base_: base.yaml\nMODEL:\n    head: {num_classes: five}\n", "child.yaml")
    with pytest.raises(ConfigError, match=r"child.yaml:3 \(MODEL.head.num_classes\): .*got 'five'"):
        check_config(get_config(child))
    write(tmp_path, BASE.replace("depth: 18", "depth: 19"), "base.yaml")
    child = write(tmp_path, "_base_: base.yaml\nepochs: 2\n", "child.yaml")
    with pytest.raises(ConfigError, match=r"base.yaml:3 \(MODEL.backbone.depth\): .*got 19"):
        check_config(get_config(child))
    child = write(tmp_path, "_base_: base.yaml\nepoch: 2\n", "child.yaml")
    with pytest.raises(ConfigError, match=r"child.yaml:2 \(epoch\): unknown key 'epoch'"):
        get_config(child)


def test_several_bases_merge_in_order(tmp_path):
    write(tmp_path, BASE, "a.yaml")
    write(tmp_path, "epochs: 7\nMODEL:\n    backbone: {depth: 34}\n", "b.yaml")
    cfg = get_config(write(tmp_path, "_base_: [a.yaml, b.yaml]\nseed: 3\n", "c.yaml"))
    assert (cfg.epochs, cfg.MODEL.backbone.depth, cfg.MODEL.backbone.num_seg, cfg.seed) == (7, 34, 4, 3)


def test_missing_base_cycle_and_bad_base_values(tmp_path):
    child = write(tmp_path, "_base_: nowhere.yaml\nepochs: 2\n", "child.yaml")
    with pytest.raises(ConfigError, match=r"child.yaml:1 \(_base_\): base config not found: .*nowhere.yaml"):
        get_config(child)
    write(tmp_path, "_base_: b.yaml\n", "a.yaml")
    write(tmp_path, "_base_: a.yaml\n", "b.yaml")
    with pytest.raises(ConfigError, match=r"lead back to it \(.*a.yaml -> .*b.yaml -> .*a.yaml\)"):
        get_config(str(tmp_path / "a.yaml"))
    with pytest.raises(ConfigError, match=r"_base_ must be a config path or a list of them"):
        get_config(write(tmp_path, "_base_: 3\n", "c.yaml"))
    write(tmp_path, BASE, "base.yaml")
    with pytest.raises(ConfigError, match=r"d.yaml:3 \(MODEL._delete_\): _delete_ must be true or false"):
        get_config(write(tmp_path, "_base_: base.yaml\nMODEL:\n    _delete_: yes please\n", "d.yaml"))


def test_an_alias_is_a_copy(tmp_path):
    path = write(tmp_path, BASE, "base.yaml")
    cfg = get_config(path, ["PIPELINE.valid.sample.num_seg=8"])
    assert cfg.PIPELINE.valid.sample.num_seg == 8 and cfg.PIPELINE.test.sample.num_seg == 4
    assert cfg.PIPELINE.test.sample.where("num_seg").endswith("base.yaml:16 (PIPELINE.test.sample.num_seg)")


def test_the_resolved_config_is_what_is_saved(tmp_path):
    from paddlevideo.utils.config import dump_config
    write(tmp_path, BASE, "base.yaml")
    cfg = get_config(write(tmp_path, "_base_: base.yaml\nMODEL:\n    head: {_delete_: true, name: "
                                     "TSNHead, num_classes: 3}\n", "child.yaml"))
    text = dump_config(cfg)
    assert "_base_" not in text and "_delete_" not in text and "in_channels" not in text
    assert yaml.safe_load(text)["MODEL"]["head"] == {"name": "TSNHead", "num_classes": 3}


def test_the_old_label_list_key_still_loads_and_says_what_replaced_it(tmp_path, caplog):
    path = write(tmp_path, CONFIG + "INFERENCE:\n    label_list: labels.txt\n")
    with caplog.at_level("WARNING", logger="paddlevideo"):
        cfg = get_config(path)
    assert cfg.DATASET.label_list == "labels.txt"
    assert "INFERENCE.label_list is now DATASET.label_list" in caplog.text and "tsm.yaml:26 (INFERENCE.label_list)" in caplog.text
    text = CONFIG + "DATASET:\n    label_list: other.txt\nINFERENCE:\n    label_list: labels.txt\n"
    with pytest.raises(ConfigError, match=r"tsm.yaml:28 \(INFERENCE.label_list\): .*keep only DATASET.label_list"):
        get_config(write(tmp_path, text))
