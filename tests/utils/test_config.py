"""Config loading, overrides and the errors a user meets for a bad config."""
import textwrap

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
        "PIPELINE.train.transform[1].RandomFlip.p=0.0", "output_dir=out/x", "model_name=__import__('os')"])
    assert cfg.epochs == 3 and isinstance(cfg.epochs, int)
    assert cfg.MODEL.backbone.shift_ratio == 0.25
    assert cfg.PIPELINE.train.transform[0].MultiScaleCrop.target_size == 112
    assert cfg.PIPELINE.train.transform[2].Normalization.mean == [0.5, 0.5, 0.5]
    assert cfg.PIPELINE.train.transform[1].RandomFlip.p == 0.0
    assert cfg.model_name == "__import__('os')"                 # a string, never evaluated


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
    with pytest.raises(ConfigError, match=r"tsm.yaml:23 \(epoch\).*Did you mean: epochs"):
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
    with pytest.raises(ConfigError, match=r"tsm.yaml:24: key 'epochs' is written twice"):
        get_config(write(tmp_path, CONFIG + "epochs: 3\n"))
    with pytest.raises(ConfigError, match="config file not found"):
        get_config(str(tmp_path / "nope.yaml"))
    with pytest.raises(ConfigError, match="not valid YAML"):
        get_config(write(tmp_path, "MODEL: [unclosed\n"))


def test_component_without_name_lists_the_choices(tmp_path):
    cfg = get_config(write(tmp_path, CONFIG.replace('        name: "TSMHead"\n', "")))
    with pytest.raises(ConfigError, match=r"\(MODEL.head\): the head config has no 'name'; choose one of: TSMHead, TSNHead"):
        build_model(cfg.MODEL)
