"""MobileNetV2 TSM: the original's online gesture network and offline Kinetics network, converted
from the files the original code wrote (shared/reference/torch_tsm/mobilenetv2), give its logits;
mmaction2's and torchvision's key names map onto the same network."""
import logging
import os

import numpy as np
import paddle
import pytest

import paddlevideo.modeling.weights as weights_module
from paddlevideo.modeling import OnlineTSM, build_model
from paddlevideo.modeling.backbones.mobilenet_v2_tsm import BLOCKS
from paddlevideo.modeling.torch_tsm import convert_torch_checkpoint
from paddlevideo.modeling.weights import WeightsError, load_weights
from paddlevideo.utils.config import AttrDict

from .torch_files import save_torch

MBV2 = ("reference", "torch_tsm", "mobilenetv2")
STAGES = (1, 2, 3, 4, 3, 3, 1)          # MobileNetV2's blocks per stage (mmaction2's layer1..7)


def mobilenet(mode, classes, num_seg=8):
    model = build_model(AttrDict(framework="Recognizer2D",
                                 backbone=AttrDict(name="MobileNetV2TSM", num_seg=num_seg,
                                                   shift_mode=mode),
                                 head=AttrDict(name="TSMHead", num_classes=classes,
                                               in_channels=1280)))
    model.eval()
    return model


def run_stream(model, frames):
    """Per-frame logits [T, K] and the final buffers of one stream from zero buffers."""
    buffers, out = None, []
    with paddle.no_grad():
        for frame in frames:
            logits, buffers = model.forward_step(paddle.to_tensor(frame[None]), buffers)
            out.append(logits.numpy()[0])
    return np.stack(out), buffers


def assert_within(got, want, tol):
    """max |diff| <= tol x std of the original's logits, and the same top-1 on every row."""
    diff = float(np.abs(got - want).max())
    assert diff <= tol * float(want.std()), (diff, float(want.std()))
    np.testing.assert_array_equal(got.argmax(-1), want.argmax(-1))


@pytest.fixture
def fixtures(shared_dir):
    folder = os.path.join(shared_dir, *MBV2)
    if not os.path.isdir(folder):
        pytest.skip(f"{folder} is absent: it holds the original code's MobileNetV2 TSM files")
    return folder


# --- the network itself (no files needed) ------------------------------------------------------

def test_shift_sits_in_the_ten_residual_blocks_and_buffers_have_the_demos_shapes():
    model = mobilenet("unidirectional", 27)
    shifted, settings = model.backbone.shift_layout()
    assert shifted == (3, 5, 6, 8, 9, 10, 12, 13, 15, 16)
    assert settings == {("unidirectional", 0.125, "residual")}
    # the original demo's zero buffers: [1, 3, 56, 56], [1, 4, 28, 28] x2, [1, 8, 14, 14] x3, ...
    assert model.buffer_shapes(224) == [[3, 56, 56], [4, 28, 28], [4, 28, 28], [8, 14, 14],
                                        [8, 14, 14], [8, 14, 14], [12, 14, 14], [12, 14, 14],
                                        [20, 7, 7], [20, 7, 7]]
    assert len(BLOCKS) == 17 and model.backbone.out_channels == 1280


def test_online_steps_equal_the_offline_unidirectional_network():
    paddle.seed(3)
    model = mobilenet("unidirectional", 5, num_seg=4)
    for layer in model.sublayers():                 # BN statistics away from the identity
        if isinstance(layer, paddle.nn.BatchNorm2D):
            layer._mean.set_value(paddle.rand(layer._mean.shape) * 0.2)
            layer._variance.set_value(paddle.rand(layer._variance.shape) + 0.5)
    clip = np.random.default_rng(4).standard_normal((1, 4, 3, 64, 64)).astype("float32")
    with paddle.no_grad():
        offline = model.frame_logits(paddle.to_tensor(clip)).numpy()[0]
        clip_logits = model(paddle.to_tensor(clip)).numpy()[0]
    online, _ = run_stream(model, clip[0])
    np.testing.assert_allclose(online, offline, atol=1e-4 * np.abs(offline).max())
    np.testing.assert_allclose(online.mean(0), clip_logits, atol=1e-4 * np.abs(offline).max())
    alone = np.stack([run_stream(model, clip[0][t:t + 1])[0][0] for t in range(4)])
    assert np.abs(alone[1:] - offline[1:]).max() > 1e-3 * np.abs(offline).max()   # buffers matter


def test_bidirectional_mobilenet_refuses_to_stream():
    from paddlevideo.utils.config import ConfigError
    with pytest.raises(ConfigError, match="unidirectional"):
        OnlineTSM(mobilenet("bidirectional", 5))


# --- the original code's files ----------------------------------------------------------------

@pytest.mark.parametrize("name", ["mobilenetv2_jester_online.pth.tar",
                                  "mobilenetv2_jester_online_zip.pth.tar"])
def test_online_demo_file_gives_the_originals_per_frame_logits(name, fixtures, caplog):
    model = mobilenet("unidirectional", 27)
    with caplog.at_level(logging.INFO, logger="paddlevideo"):
        report = load_weights(model, os.path.join(fixtures, name), require_head=True)
    assert report.missing == [] and report.unexpected == []
    assert "online demo" in caplog.text and "unidirectional shift in 10 of 17" in caplog.text
    assert "swapped" not in caplog.text
    logits, buffers = run_stream(model, np.load(os.path.join(fixtures, "online_frames.npy")))
    assert_within(logits, np.load(os.path.join(fixtures, "online_logits.npy")), 1e-4)
    flat = np.concatenate([b.numpy().ravel() for b in buffers])
    want = np.load(os.path.join(fixtures, "online_buffers.npy"))
    np.testing.assert_allclose(flat, want, atol=1e-4 * float(np.abs(want).max()))


def test_offline_kinetics_file_gives_the_originals_clip_logits(fixtures, caplog):
    model = mobilenet("bidirectional", 400)
    with caplog.at_level(logging.INFO, logger="paddlevideo"):
        load_weights(model, os.path.join(fixtures, "tsm_mobilenetv2_mhl.pth"), require_head=True)
    assert "swapped channel folds 0 and 1 of 5 residual streams" in caplog.text
    clip = np.load(os.path.join(fixtures, "tsm_mobilenetv2_input.npy"))
    with paddle.no_grad():
        got = model(paddle.to_tensor(clip)).numpy()
    assert_within(got, np.load(os.path.join(fixtures, "tsm_mobilenetv2_logits.npy")), 1e-3)


def test_without_the_fold_swap_the_offline_network_is_not_the_originals(fixtures, monkeypatch):
    import functools
    monkeypatch.setattr(weights_module, "convert_torch_checkpoint",
                        functools.partial(convert_torch_checkpoint, permute=False))
    model = mobilenet("bidirectional", 400)
    load_weights(model, os.path.join(fixtures, "tsm_mobilenetv2_mhl.pth"), require_head=True)
    with paddle.no_grad():
        got = model(paddle.to_tensor(np.load(os.path.join(fixtures, "tsm_mobilenetv2_input.npy"))))
    want = np.load(os.path.join(fixtures, "tsm_mobilenetv2_logits.npy"))
    assert float(np.abs(got.numpy() - want).max()) > 0.01 * float(want.std())


@pytest.mark.parametrize("name, mode", [("mobilenetv2_jester_online.pth.tar", "bidirectional"),
                                        ("tsm_mobilenetv2_mhl.pth", "unidirectional"),
                                        ("tsm_mobilenetv2_mhl.pth", "none")])
def test_a_file_whose_shift_differs_from_the_model_is_refused(name, mode, fixtures):
    classes = 27 if "jester" in name else 400
    model = build_model(AttrDict(
        framework="Recognizer2D",
        backbone=AttrDict(name="MobileNetV2TSM", shift_mode=mode),
        head=AttrDict(name="TSMHead", num_classes=classes, in_channels=1280)))
    with pytest.raises(WeightsError) as err:
        load_weights(model, os.path.join(fixtures, name), require_head=True)
    assert name in str(err.value) and "\n" not in str(err.value)


# --- mmaction2's and torchvision's names (synthetic files from the original's weights) ---------

def _stage_of(index):
    """features.index -> (mmaction2 layer, position in it)."""
    start = 1
    for layer, count in enumerate(STAGES, start=1):
        if index < start + count:
            return layer, index - start
        start += count
    raise AssertionError(index)


def to_mmaction2(state):
    """The original's offline keys (module.base_model.features...) under mmaction2's
    MobileNetV2TSM names (ConvModule conv/bn; TemporalShift wraps the first ConvModule as
    `.net`)."""
    out = {}
    for key, value in state.items():
        key = key[len("module."):]
        if key.startswith("new_fc."):
            out["cls_head.fc_cls." + key.split(".")[-1]] = value
            continue
        parts = key.split(".")[2:]                  # after base_model.features
        index, param = int(parts[0]), parts[-1]
        if index in (0, 18):
            unit = "conv1" if index == 0 else "conv2"
            out[f"backbone.{unit}.{'conv' if parts[1] == '0' else 'bn'}.{param}"] = value
            continue
        position = int(parts[2])
        module, is_bn = position // 3, position % 3 == 1
        layer, at = _stage_of(index)
        net = "net." if module == 0 and BLOCKS[index - 1][3] != 1 and index in \
            (3, 5, 6, 8, 9, 10, 12, 13, 15, 16) else ""
        out[f"backbone.layer{layer}.{at}.conv.{module}.{net}{'bn' if is_bn else 'conv'}.{param}"] \
            = value
    return out


def to_torchvision(state):
    """The online demo's keys under torchvision's MobileNetV2 names, with a 1000-class head."""
    out = {}
    for key, value in state.items():
        parts = key.split(".")
        if parts[0] == "classifier":
            continue
        if parts[1] in ("0", "18"):
            out[key] = value
            continue
        index, position, param = int(parts[1]), int(parts[3]), parts[-1]
        expands = BLOCKS[index - 1][3] != 1
        module, is_bn = position // 3, position % 3 == 1
        last = module == (2 if expands else 1)
        name = f"{module}" if last and not is_bn else f"{module + 1}" if last else \
            f"{module}.{int(is_bn)}"
        out[f"features.{index}.conv.{name}.{param}"] = value
    rng = np.random.default_rng(0)
    out["classifier.1.weight"] = rng.standard_normal((1000, 1280)).astype("float32")
    out["classifier.1.bias"] = np.zeros(1000, "float32")
    return out


def test_mmaction2_names_give_the_originals_clip_logits(fixtures, tmp_path, caplog):
    from paddlevideo.utils.safe_load import load_torch
    state = load_torch(os.path.join(fixtures, "tsm_mobilenetv2_mhl.pth"))["state_dict"]
    renamed = to_mmaction2(state)
    assert "backbone.layer2.1.conv.0.net.conv.weight" in renamed
    assert "backbone.layer1.0.conv.1.bn.running_var" in renamed
    path = save_torch({"meta": {}, "state_dict": renamed}, str(tmp_path / "mm_mbv2.pth"))
    model = mobilenet("bidirectional", 400)
    with caplog.at_level(logging.INFO, logger="paddlevideo"):
        report = load_weights(model, path, require_head=True)
    assert report.missing == [] and "mmaction2's TSM checkpoint, MobileNetV2" in caplog.text
    with paddle.no_grad():
        got = model(paddle.to_tensor(np.load(os.path.join(fixtures, "tsm_mobilenetv2_input.npy"))))
    assert_within(got.numpy(), np.load(os.path.join(fixtures, "tsm_mobilenetv2_logits.npy")), 1e-3)


def test_torchvision_names_initialise_the_backbone_without_a_head(fixtures, tmp_path, caplog):
    from paddlevideo.utils.safe_load import load_torch
    online = load_torch(os.path.join(fixtures, "mobilenetv2_jester_online.pth.tar"))
    path = save_torch(to_torchvision(online), str(tmp_path / "mobilenet_v2-b0353104.pth"))
    model = mobilenet("unidirectional", 27)
    with caplog.at_level(logging.INFO, logger="paddlevideo"):
        report = load_weights(model, path)                     # training: the head starts fresh
    assert "torchvision's ImageNet MobileNetV2" in caplog.text and "swapped" not in caplog.text
    assert sorted(report.missing) == ["head.fc.bias", "head.fc.weight"]
    reference = mobilenet("unidirectional", 27)
    load_weights(reference, os.path.join(fixtures, "mobilenetv2_jester_online.pth.tar"))
    ours, theirs = model.backbone.state_dict(), reference.backbone.state_dict()
    for key in theirs:
        np.testing.assert_array_equal(ours[key].numpy(), theirs[key].numpy(), err_msg=key)
    with pytest.raises(WeightsError, match="no weights for the model's 27-class head"):
        load_weights(mobilenet("unidirectional", 27), path, require_head=True)


def test_a_mobilenet_file_with_a_foreign_key_is_refused_in_one_line(fixtures, tmp_path):
    from paddlevideo.utils.safe_load import load_torch
    state = dict(load_torch(os.path.join(fixtures, "mobilenetv2_jester_online.pth.tar")))
    state["features.3.conv.9.weight"] = np.zeros((1,), "float32")
    path = save_torch(state, str(tmp_path / "odd.pth.tar"))
    with pytest.raises(WeightsError) as err:
        load_weights(mobilenet("unidirectional", 27), path)
    assert "features.3.conv.9.weight" in str(err.value) and "\n" not in str(err.value)


def test_convert_tool_writes_the_demo_network_as_a_paddlevideo_checkpoint(fixtures, tmp_path,
                                                                         capsys):
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        "convert_weights_tool", os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
            os.path.abspath(__file__)))), "tools", "convert_weights.py"))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    out = str(tmp_path / "jester_online.pdparams")
    assert tool.main([os.path.join(fixtures, "mobilenetv2_jester_online.pth.tar"), out]) == 0
    assert "unidirectional shift in 10 of 17 blocks" in capsys.readouterr().out
    model = mobilenet("unidirectional", 27)
    report = load_weights(model, out, require_head=True)
    assert report.missing == [] and report.unexpected == []
    frames = np.load(os.path.join(fixtures, "online_frames.npy"))[:4]
    logits, _ = run_stream(model, frames)
    assert_within(logits, np.load(os.path.join(fixtures, "online_logits.npy"))[:4], 1e-4)


@pytest.mark.parametrize("damage", ["flat conv", "missing expand conv"])
def test_a_damaged_offline_file_is_refused_in_one_line(damage, fixtures, tmp_path):
    from paddlevideo.utils.safe_load import load_torch
    obj = load_torch(os.path.join(fixtures, "tsm_mobilenetv2_mhl.pth"))
    state = dict(obj["state_dict"])
    key = "module.base_model.features.4.conv.0.weight"           # reads the shifted 24-ch stream
    if damage == "flat conv":
        state[key] = state[key].reshape(-1)
    else:
        del state[key]
    path = save_torch({"arch": "mobilenetv2", "state_dict": state}, str(tmp_path / "bad.pth"))
    with pytest.raises(WeightsError) as err:
        load_weights(mobilenet("bidirectional", 400), path, require_head=True)
    assert path in str(err.value) and "\n" not in str(err.value)
    assert ("shape" if damage == "flat conv" else "lacks") in str(err.value)


def test_a_mobilenet_file_into_a_resnet_model_says_which_backbone_it_needs(fixtures):
    resnet = build_model(AttrDict(framework="Recognizer2D",
                                  backbone=AttrDict(name="ResNetTSM", depth=18,
                                                    shift_mode="unidirectional"),
                                  head=AttrDict(name="TSMHead", num_classes=27, in_channels=512)))
    with pytest.raises(WeightsError, match="holds a MobileNetV2 but the model's backbone is "
                                           "ResNetTSM: use a config whose backbone is "
                                           "MobileNetV2TSM"):
        load_weights(resnet, os.path.join(fixtures, "mobilenetv2_jester_online.pth.tar"))


def test_a_resnet_file_into_a_mobilenet_model_says_which_backbone_it_needs(shared_dir):
    path = os.path.join(shared_dir, "reference", "torch_tsm", "tsm_r18_mhl.pth")
    with pytest.raises(WeightsError, match="holds a ResNet but the model's backbone is "
                                           "MobileNetV2TSM"):
        load_weights(mobilenet("bidirectional", 174), path)
