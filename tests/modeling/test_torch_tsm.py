"""PyTorch TSM checkpoints convert to exactly the original network: real files of the original
code (R18, with the original's logits) and, for R50/R101, files written in torch's formats from
random weights, checked against a NumPy model of the original network, in dygraph, in Paddle
Inference and in ONNX Runtime."""
import functools
import logging
import os

import numpy as np
import paddle
import pytest

import paddlevideo.modeling.weights as weights_module
from paddlevideo.modeling import build_model
from paddlevideo.modeling.torch_tsm import convert_torch_checkpoint, fold_swap
from paddlevideo.modeling.weights import WeightsError, load_weights
from paddlevideo.utils.config import AttrDict

from .torch_files import save_torch
from .tsm_reference import forward, random_state, shift, to_mmaction2

TORCH_TSM = ("reference", "torch_tsm")


def tsm(depth, classes, num_seg=8, **backbone):
    return build_model(AttrDict(framework="Recognizer2D",
                                backbone=AttrDict(name="ResNetTSM", depth=depth,
                                                  num_seg=num_seg, **backbone),
                                head=AttrDict(name="TSMHead", num_classes=classes,
                                              in_channels=512 if depth < 50 else 2048)))


def logits(model, clips):
    model.eval()
    with paddle.no_grad():
        return model(paddle.to_tensor(clips)).numpy()


def assert_original(got, want):
    """The issue's bar: max |diff| <= 1e-3 x the logits' std, and the same top-1."""
    diff = float(np.abs(got - want).max())
    assert diff <= 1e-3 * float(want.std()), (diff, float(want.std()))
    np.testing.assert_array_equal(got.argmax(-1), want.argmax(-1))


# --- the shift identity the conversion rests on ------------------------------------------------

def test_paddles_shift_of_the_swapped_stream_is_the_swapped_original_shift():
    x = np.random.default_rng(0).standard_normal((2 * 8, 32, 3, 3)).astype("float32")
    swap = fold_swap(32)
    assert list(swap[:9]) == [4, 5, 6, 7, 0, 1, 2, 3, 8] and (swap[swap] == np.arange(32)).all()
    ours = paddle.nn.functional.temporal_shift(paddle.to_tensor(x[:, swap]), seg_num=8,
                                               shift_ratio=0.125).numpy()
    np.testing.assert_array_equal(ours, shift(x, 8)[:, swap])
    unswapped = paddle.nn.functional.temporal_shift(paddle.to_tensor(x), seg_num=8,
                                                    shift_ratio=0.125).numpy()
    assert not np.array_equal(unswapped, shift(x, 8))          # the directions do differ


# --- real files written by torch from the original code (shared/reference/torch_tsm) ---------

def test_numpy_reference_is_the_original_pytorch_model(shared_dir):
    from paddlevideo.utils.safe_load import load_torch
    folder = os.path.join(shared_dir, *TORCH_TSM)
    state = load_torch(os.path.join(folder, "tsm_r18_mhl.pth"))["state_dict"]
    clips = np.load(os.path.join(folder, "tsm_r18_input.npy"))
    want = np.load(os.path.join(folder, "tsm_r18_logits.npy"))
    np.testing.assert_allclose(forward(state, clips, 18), want, atol=1e-5)
    assert set(to_mmaction2(state)) == set(
        load_torch(os.path.join(folder, "tsm_r18_mmaction2.pth"))["state_dict"])


@pytest.mark.parametrize("name", ["tsm_r18_mhl.pth", "tsm_r18_mhl_zip.pth",
                                  "tsm_r18_mmaction2.pth"])
def test_real_pytorch_checkpoints_give_the_original_logits(name, shared_dir, caplog):
    folder = os.path.join(shared_dir, *TORCH_TSM)
    model = tsm(18, 174)
    with caplog.at_level(logging.INFO, logger="paddlevideo"):
        report = load_weights(model, os.path.join(folder, name), require_head=True)
    assert (len(report.matched), report.missing, report.unexpected) == (102, [], [])
    assert "swapped channel folds 0 and 1" in caplog.text and "shift in 8 of 8 blocks" in caplog.text
    assert_original(logits(model, np.load(os.path.join(folder, "tsm_r18_input.npy"))),
                    np.load(os.path.join(folder, "tsm_r18_logits.npy")))


# --- R50 and R101: torch-format files of random weights vs the NumPy original ----------------

CASES = {50: ("legacy", "mit-han-lab"), 101: ("zip", "mmaction2")}


@pytest.fixture(scope="module")
def original(tmp_path_factory):
    """{depth: (file, clips, the original's logits)}: R50 in the original code's legacy format,
    R101 under mmaction2's names in the zip format, 10 classes, 8 frames of 32 x 32."""
    made = {}
    folder = tmp_path_factory.mktemp("torch_files")
    for depth, (fmt, source) in CASES.items():
        state = random_state(depth, 10, seed=depth)
        clips = np.random.default_rng(depth).standard_normal((1, 8, 3, 32, 32)).astype("float32")
        want = forward(state, clips, depth).astype("float32")
        obj = ({"epoch": 50, "arch": f"resnet{depth}", "state_dict": state, "best_prec1": 71.2}
               if source == "mit-han-lab" else
               {"meta": {"mmaction2_version": "1.2.0"}, "state_dict": to_mmaction2(state)})
        made[depth] = (save_torch(obj, str(folder / f"r{depth}_{source}.pth"), fmt), clips, want)
    return made


@pytest.mark.parametrize("depth", [50, 101])
def test_converted_r50_and_r101_are_the_original_network(depth, original):
    path, clips, want = original[depth]
    model = tsm(depth, 10)
    report = load_weights(model, path, require_head=True)
    assert report.missing == [] and report.unexpected == []
    assert_original(logits(model, clips), want)


def test_converted_r50_is_the_original_in_paddle_inference_and_onnx_runtime(original, tmp_path):
    """The export is the native graph with other weights; ResNet-101's export is measured by
    benchmarks/converted_weights.py (slow for CI)."""
    from paddlevideo.deploy import InferenceEngine, export_model
    from paddlevideo.deploy.onnx_export import export_onnx
    from paddlevideo.deploy.runtime import onnx_path, ort_session
    path, clips, want = original[50]
    model = tsm(50, 10)
    load_weights(model, path, require_head=True)
    result = export_model(model, str(tmp_path), "TSM", num_seg=8, target_size=32, verify=False)
    assert_original(InferenceEngine(str(tmp_path), precision="fp32", cpu_threads=1)(clips), want)
    export_onnx(result.model_file, result.params_file, input_shape=[-1, 8, 3, 32, 32], threads=1)
    session = ort_session(onnx_path(result.model_file), 1)
    assert_original(session.run(None, {session.get_inputs()[0].name: clips})[0], want)


def test_without_the_fold_swap_the_network_is_not_the_original(original, monkeypatch):
    """The permutation is what makes it exact: skip it and the logits move far off."""
    path, clips, want = original[50]
    monkeypatch.setattr(weights_module, "convert_torch_checkpoint",
                        functools.partial(convert_torch_checkpoint, permute=False))
    model = tsm(50, 10)
    load_weights(model, path, require_head=True)
    assert float(np.abs(logits(model, clips) - want).max()) > 0.05 * float(want.std())


# --- what does not convert is refused by name ------------------------------------------------

def _variant(kind):
    state = random_state(18, 5)
    if kind == "non-local blocks":
        state["module.base_model.layer2.0.nl.g.weight"] = np.zeros((64, 128, 1, 1, 1), "float32")
    elif kind == "non-local blocks (mmaction2)":
        state = to_mmaction2(state)
        state["backbone.layer2.0.non_local_block.g.conv.weight"] = np.zeros((1,), "float32")
    elif kind == "temporal pooling":
        state = {k.replace("base_model.layer2.", "base_model.layer2.net."): v
                 for k, v in state.items()}
    elif kind == "BN-Inception":
        state = {"module.base_model.conv1_7x7_s2.weight": np.zeros((64, 3, 7, 7), "float32"),
                 "module.new_fc.weight": np.zeros((5, 1024), "float32")}
    elif kind == "not an RGB model":
        state["module.base_model.conv1.weight"] = np.zeros((64, 10, 7, 7), "float32")
    return {"epoch": 1, "arch": "resnet18", "state_dict": state}


@pytest.mark.parametrize("kind", ["non-local blocks", "non-local blocks (mmaction2)",
                                  "temporal pooling", "BN-Inception",
                                  "not an RGB model"])
def test_unsupported_variants_are_refused_by_name(kind, tmp_path):
    path = save_torch(_variant(kind), str(tmp_path / "variant.pth"))
    with pytest.raises(WeightsError) as err:
        load_weights(tsm(18, 5), path)
    message = str(err.value)
    assert path in message and kind.split(" (")[0] in message and "\n" not in message


def _tsn_file(tmp_path):
    """The R18 weights as a TSN checkpoint of the original code: no `.net` (no shift)."""
    state = {k.replace(".conv1.net.", ".conv1."): v for k, v in random_state(18, 5).items()}
    return save_torch({"state_dict": state}, str(tmp_path / "tsn.pth"))


def test_shift_placement_must_match_to_test_a_converted_checkpoint(tmp_path, caplog):
    tsn = _tsn_file(tmp_path)
    with pytest.raises(WeightsError, match="trained without the temporal shift.*shifts 8 blocks"):
        load_weights(tsm(18, 5), tsn, require_head=True)
    with caplog.at_level(logging.WARNING, logger="paddlevideo"):
        load_weights(tsm(18, 5), tsn)                        # training from it is allowed
    assert "trained without the temporal shift" in caplog.text
    no_shift = build_model(AttrDict(framework="Recognizer2D",
                                    backbone=AttrDict(name="ResNet", depth=18, num_seg=8),
                                    head=AttrDict(name="TSNHead", num_classes=5,
                                                  in_channels=512)))
    load_weights(no_shift, tsn, require_head=True)           # a TSN config runs it exactly
    tsm_file = save_torch({"state_dict": random_state(18, 5)}, str(tmp_path / "tsm.pth"))
    with pytest.raises(WeightsError, match="model shifts none"):
        load_weights(no_shift, tsm_file, require_head=True)
    with pytest.raises(WeightsError, match="shift_ratio: 0.25"):
        load_weights(tsm(18, 5, shift_ratio=0.25), tsm_file, require_head=True)


def test_torchvision_imagenet_file_loads_without_permutation(tmp_path, caplog):
    state = {k[len("module.base_model."):].replace(".conv1.net.", ".conv1."): v
             for k, v in random_state(18, 5).items() if k.startswith("module.base_model.")}
    state["fc.weight"] = np.zeros((1000, 512), "float32")
    state["fc.bias"] = np.zeros((1000,), "float32")
    path = save_torch(state, str(tmp_path / "resnet18-0123abcd.pth"))
    model = tsm(18, 5)
    with caplog.at_level(logging.INFO, logger="paddlevideo"):
        report = load_weights(model, path)
    assert sorted(report.unexpected) == ["fc.bias", "fc.weight"]
    assert "torchvision's ImageNet ResNet" in caplog.text and "swapped" not in caplog.text
    assert "has no head weights: the model's 5-class head starts fresh" in caplog.text
    np.testing.assert_array_equal(model.backbone.res2a.conv0._conv.weight.numpy(),
                                  state["layer1.0.conv1.weight"])
    np.testing.assert_array_equal(model.backbone.conv._batch_norm._variance.numpy(),
                                  state["bn1.running_var"])


# --- tools/convert_weights.py and tools/list_weights.py ---------------------------------------

def _tool(name):
    import importlib.util
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    spec = importlib.util.spec_from_file_location(name, os.path.join(repo, "tools", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_convert_tool_writes_a_paddlevideo_checkpoint_of_the_original_network(tmp_path, capsys):
    from paddlevideo.utils.safe_load import load_state
    state = random_state(18, 7, seed=3)
    clips = np.random.default_rng(3).standard_normal((1, 8, 3, 32, 32)).astype("float32")
    src = save_torch({"meta": {}, "state_dict": to_mmaction2(state)}, str(tmp_path / "mm.pth"))
    out = str(tmp_path / "converted" / "TSM_r18.pdparams")
    assert _tool("convert_weights").main([src, out]) == 0
    printed = capsys.readouterr().out
    assert "mmaction2's TSM checkpoint, ResNet-18, 7 classes" in printed
    assert "swapped channel folds 0 and 1" in printed and f"wrote {out}" in printed
    written = load_state(out, return_numpy=True)
    assert set(written) == set(tsm(18, 7).state_dict()) and written["head.fc.weight"].shape == (512, 7)
    model = tsm(18, 7)
    load_weights(model, out, require_head=True)            # a plain Paddle file from now on
    assert_original(logits(model, clips), forward(state, clips, 18))


def test_convert_tool_refuses_what_it_cannot_map_in_one_line(tmp_path, capsys):
    src = save_torch(_variant("non-local blocks"), str(tmp_path / "nl.pth"))
    out = tmp_path / "nl.pdparams"
    assert _tool("convert_weights").main([src, str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("error:") and "non-local blocks" in err
    assert not out.exists()


def test_list_command_shows_every_registered_name(capsys):
    from paddlevideo.modeling.zoo import PRETRAINED
    tool = _tool("list_weights")
    assert tool.main([]) == 0
    table = capsys.readouterr().out
    assert all(name in table for name in PRETRAINED)
    assert tool.main(["TSM_mm_sthv2_r101_8f"]) == 0
    one = capsys.readouterr().out
    assert PRETRAINED["TSM_mm_sthv2_r101_8f"].url in one and "efcc0d1b" in one and "63.70" in one
    assert tool.main(["TSM_nope"]) == 1 and "not registered: TSM_nope" in capsys.readouterr().err


def test_registered_zoo_records_are_consistent():
    import re
    from paddlevideo.modeling.zoo import FORMATS, PRETRAINED, alias_target
    tsm_names = [n for n, s in PRETRAINED.items() if s.format in ("mit-han-lab", "mmaction2")
                 and s.arch == "resnet"]
    assert len(tsm_names) >= 18
    for name, spec in PRETRAINED.items():
        assert spec.name == name and spec.format in FORMATS, name
        if spec.format == "alias":
            for depth, target in spec.by_depth:
                assert PRETRAINED[target].depth == depth and PRETRAINED[target].dataset == "ImageNet"
            assert alias_target(spec, 50) == "ResNet50_pretrain"
            continue
        assert spec.url.startswith("https://"), name
        assert spec.depth in (18, 34, 50, 101, 152) if spec.arch == "resnet" else \
            spec.arch == "mobilenetv2" and spec.depth is None, name
        carried = re.search(r"-([0-9a-f]{8})\.pth$", spec.url)
        if spec.format in ("mmaction2", "torchvision"):
            assert carried and spec.sha256 == carried.group(1), name     # the name's hash prefix
        if name in tsm_names:
            assert spec.classes in (400, 174) and spec.segments in (8, 16) and spec.top1, name
            assert spec.protocol and spec.dataset, name
            assert (spec.classes == 400) == (spec.dataset == "Kinetics-400"), name
            assert f"r{spec.depth}" in name, name
            assert name.startswith("TSN_") or f"{spec.segments}f" in name, name
    for depth in (50, 101):                          # R50 and R101; 8 and 16 frames; K400, SSv1/v2
        assert any(PRETRAINED[n].depth == depth for n in tsm_names)
    assert {PRETRAINED[n].segments for n in tsm_names} == {8, 16}
    assert {PRETRAINED[n].dataset for n in tsm_names} == {
        "Kinetics-400", "Something-Something V1", "Something-Something V2"}
