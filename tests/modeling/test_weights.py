"""Checkpoint compatibility with PaddleVideo and every style of ImageNet weights."""
import logging
import os
import re

import numpy as np
import paddle
import pytest

from paddlevideo.modeling import build_model
from paddlevideo.modeling.weights import WeightsError, load_weights
from paddlevideo.utils.config import AttrDict


def model_cfg(depth=50, num_classes=400, num_seg=8, **backbone):
    return AttrDict(framework="Recognizer2D",
                    backbone=AttrDict(name="ResNetTSM", depth=depth, num_seg=num_seg, **backbone),
                    head=AttrDict(name="TSMHead", num_classes=num_classes,
                                  in_channels=512 if depth < 50 else 2048))


SPEC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "paddlevideo_tsm_r50_state_dict.tsv")


def read_spec():
    """PaddleVideo's TSM-R50 checkpoint keys and shapes (a copy of shared/spec's, shipped here so
    the compatibility tests run in any clone)."""
    rows = open(SPEC).read().split("\n")
    return {key: [int(d) for d in shape.strip("[]").split(",")]
            for key, shape in (row.split("\t") for row in rows if row)}


def random_state(shapes, seed=0):
    rng = np.random.default_rng(seed)
    return {k: rng.standard_normal(s).astype("float32") * 0.01 for k, s in shapes.items()}


def test_r50_keys_and_shapes_equal_paddlevideo():
    spec = read_spec()
    ours = {k: list(v.shape) for k, v in build_model(model_cfg()).state_dict().items()}
    assert ours == spec
    assert sum(int(np.prod(s)) for s in spec.values()) == 24_380_752


def test_paddlevideo_checkpoint_loads_unchanged(tmp_path):
    state = random_state(read_spec())
    path = str(tmp_path / "TSM_k400.pdparams")
    paddle.save(state, path)
    model = build_model(model_cfg())
    report = load_weights(model, path, require_head=True)
    assert (len(report.matched), report.missing, report.unexpected, report.mismatched) == (267, [], [], [])
    loaded = model.state_dict()
    for key in ("backbone.res4f.conv1._conv.weight", "backbone.res5c.conv2._batch_norm._variance",
                "head.fc.weight"):
        np.testing.assert_array_equal(loaded[key].numpy(), state[key])


def test_nhwc_model_loads_the_same_checkpoint(tmp_path):
    path = str(tmp_path / "TSM_ucf101_amp_nhwc.pdparams")
    paddle.save(random_state(read_spec()), path)
    report = load_weights(build_model(model_cfg(data_format="NHWC")), path, require_head=True)
    assert len(report.matched) == 267


def test_resnet101_follows_the_same_scheme():
    keys = build_model(model_cfg(depth=101)).state_dict()
    assert "backbone.res4a.short._conv.weight" in keys
    assert "backbone.res4b22.conv2._batch_norm._mean" in keys
    assert "backbone.res4b23.conv0._conv.weight" not in keys
    assert "backbone.res5c.conv2._conv.weight" in keys
    assert len(keys) == 522


def test_save_load_round_trip_and_two_models_in_one_process(tmp_path):
    paddle.seed(1)
    first = build_model(model_cfg(18, num_classes=7, num_seg=4))
    paddle.seed(2)
    second = build_model(model_cfg(18, num_classes=7, num_seg=4))
    assert list(first.state_dict()) == list(second.state_dict())
    path = str(tmp_path / "ours.pdparams")
    paddle.save(first.state_dict(), path)
    load_weights(second, path, require_head=True)
    first.eval(), second.eval()
    imgs = paddle.randn([2, 4, 3, 32, 32])
    np.testing.assert_array_equal(first(imgs).numpy(), second(imgs).numpy())


def _imagenet_backbone_relative(model):
    """An ImageNet file as PaddleVideo ships it: backbone keys without prefix + a classifier."""
    state = {k[len("backbone."):]: v.numpy() + 0.5 for k, v in model.state_dict().items()
             if k.startswith("backbone.")}
    state["out.weight"] = np.zeros([512, 1000], "float32")
    state["out.bias"] = np.zeros([1000], "float32")
    return state


def _static_name(key):
    """Our backbone-relative name -> PaddleClas's old static name (the inverse of the loader's map)."""
    unit_of = {"conv0": "2a", "conv1": "2b", "conv2": "2c", "short": "1"}
    bn_of = {"weight": "scale", "bias": "offset", "_mean": "mean", "_variance": "variance"}
    parts = key.split(".")
    if parts[0] == "conv":
        return "conv1_weights" if parts[1] == "_conv" else f"bn_conv1_{bn_of[parts[2]]}"
    block, unit = parts[0], unit_of[parts[1]]
    if parts[2] == "_conv":
        return f"{block}_branch{unit}_weights"
    return f"bn{block[3:]}_branch{unit}_{bn_of[parts[3]]}"


@pytest.mark.parametrize("style", ["backbone_relative", "static"])
def test_both_imagenet_key_styles_load_onto_the_backbone(style, tmp_path, caplog):
    paddle.seed(0)
    source = build_model(model_cfg(18, num_classes=5, num_seg=4))
    state = _imagenet_backbone_relative(source)
    if style == "static":
        state = {(_static_name(k) if not k.startswith("out.") else k.replace("out.weight", "fc_0.w_0")
                  .replace("out.bias", "fc_0.b_0")): v for k, v in state.items()}
        assert "res2a_branch2a_weights" in state and "bn3a_branch1_variance" in state
    path = str(tmp_path / f"{style}.pdparams")
    paddle.save(state, path)
    target = build_model(model_cfg(18, num_classes=5, num_seg=4))
    with caplog.at_level(logging.INFO, logger="paddlevideo"):
        report = load_weights(target, path)
    assert len(report.matched) == 100 and len(report.unexpected) == 2
    assert report.missing == ["head.fc.weight", "head.fc.bias"]
    assert "100 matched, 2 missing, 2 unexpected" in caplog.text
    np.testing.assert_array_equal(target.backbone.res3a.short._batch_norm._mean.numpy(),
                                  source.backbone.res3a.short._batch_norm._mean.numpy() + 0.5)


def test_file_matching_nothing_fails_loudly(tmp_path):
    path = str(tmp_path / "other.pdparams")
    paddle.save({"encoder.layer0.weight": np.zeros([3, 3], "float32")}, path)
    with pytest.raises(WeightsError, match="matches none of the model's"):
        load_weights(build_model(model_cfg(18, num_classes=5)), path)


def test_missing_backbone_key_is_an_error(tmp_path):
    model = build_model(model_cfg(18, num_classes=5))
    state = {k: v.numpy() for k, v in model.state_dict().items()}
    del state["backbone.res4b.conv1._conv.weight"]
    path = str(tmp_path / "partial.pdparams")
    paddle.save(state, path)
    with pytest.raises(WeightsError, match="lacks 1 backbone tensors.*res4b.conv1._conv.weight"):
        load_weights(build_model(model_cfg(18, num_classes=5)), path)


def test_other_depth_is_an_error(tmp_path):
    path = str(tmp_path / "r34.pdparams")
    paddle.save(build_model(model_cfg(34, num_classes=5)).state_dict(), path)
    with pytest.raises(WeightsError, match="80 backbone tensors the model does not have.*deeper"):
        load_weights(build_model(model_cfg(18, num_classes=5)), path)


def _k400_checkpoint(tmp_path):
    paddle.seed(0)
    kinetics = build_model(model_cfg(18, num_classes=400))
    path = str(tmp_path / "k400.pdparams")
    paddle.save(kinetics.state_dict(), path)
    return kinetics, path


def test_training_starts_a_fresh_head_for_other_classes_and_says_so_once(tmp_path, caplog):
    kinetics, path = _k400_checkpoint(tmp_path)
    ucf = build_model(model_cfg(18, num_classes=101))
    fresh_fc = ucf.head.fc.weight.numpy().copy()
    with caplog.at_level(logging.INFO, logger="paddlevideo"):
        report = load_weights(ucf, path)
    assert [k for k, _, _ in report.mismatched] == ["head.fc.weight", "head.fc.bias"]
    fresh = [r.getMessage() for r in caplog.records if "starts fresh" in r.getMessage()]
    assert len(fresh) == 1 and "101 classes" in fresh[0] and "400 classes" in fresh[0], fresh
    np.testing.assert_array_equal(ucf.head.fc.weight.numpy(), fresh_fc)
    np.testing.assert_array_equal(ucf.backbone.res5b.conv1._conv.weight.numpy(),
                                  kinetics.backbone.res5b.conv1._conv.weight.numpy())


def test_testing_with_a_head_of_other_classes_is_an_error_naming_both_counts(tmp_path):
    _, path = _k400_checkpoint(tmp_path)
    ucf = build_model(model_cfg(18, num_classes=101))
    before = ucf.backbone.conv._conv.weight.numpy().copy()
    with pytest.raises(WeightsError) as err:
        load_weights(ucf, path, require_head=True)
    message = str(err.value)
    assert "\n" not in message and path in message
    assert "head has 400 classes but the model's has 101" in message
    assert "MODEL.head.num_classes: 400" in message
    np.testing.assert_array_equal(ucf.backbone.conv._conv.weight.numpy(), before)  # untouched


def test_testing_a_backbone_only_file_requires_the_head(tmp_path):
    model = build_model(model_cfg(18, num_classes=5))
    path = str(tmp_path / "imagenet.pdparams")
    paddle.save(_imagenet_backbone_relative(model), path)
    with pytest.raises(WeightsError, match="no weights for the model's 5-class head") as err:
        load_weights(model, path, require_head=True)
    assert path in str(err.value) and "\n" not in str(err.value)


def test_a_folder_as_weights_names_the_checkpoints_inside(tmp_path):
    folder = tmp_path / "output" / "TSM"
    folder.mkdir(parents=True)
    model = build_model(model_cfg(18, num_classes=5))
    for name in ("TSM_epoch_00001.pdparams", "TSM_best.pdparams"):
        paddle.save(model.state_dict(), str(folder / name))
    with pytest.raises(WeightsError, match="is a folder; pass the checkpoint inside it, e.g. "
                       + re.escape(str(folder / "TSM_best.pdparams"))) as err:
        load_weights(model, str(folder), require_head=True)
    assert "TSM_epoch_00001.pdparams" in str(err.value)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(WeightsError, match="folder with no .pdparams checkpoint"):
        load_weights(model, str(empty))


def test_missing_file_names_the_choices():
    with pytest.raises(WeightsError, match="not found.*ResNet50_pretrain"):
        load_weights(build_model(model_cfg(18, num_classes=5)), "/nonexistent/weights.pdparams")


def test_half_and_bfloat16_checkpoints_load_as_their_values(tmp_path):
    """paddle.save stores bfloat16 as uint16 arrays: they load as the numbers, not raw bits."""
    paddle.seed(0)
    source = build_model(model_cfg(18, num_classes=5))
    for dtype in ("float16", "bfloat16"):
        state = {k: v.astype(dtype) for k, v in source.state_dict().items()}
        path = str(tmp_path / f"{dtype}.pdparams")
        paddle.save(state, path)
        target = build_model(model_cfg(18, num_classes=5))
        load_weights(target, path, require_head=True)
        want = state["backbone.res3a.conv1._conv.weight"].astype("float32").numpy()
        np.testing.assert_array_equal(target.backbone.res3a.conv1._conv.weight.numpy(), want)


def test_an_optimizer_file_given_as_weights_is_a_clear_error(tmp_path):
    path = str(tmp_path / "TSM_best.pdopt")
    paddle.save({"LR_Scheduler": {"last_epoch": 3}, "paddlevideo_meta": {"epochs_done": 3}}, path)
    with pytest.raises(WeightsError, match="holds no tensors"):
        load_weights(build_model(model_cfg(18, num_classes=5)), path)
