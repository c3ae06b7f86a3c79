"""int8 post-training quantization through ONNX Runtime: export --int8 (calibrated on real
preprocessed clips of small fabricated videos, checked, refused when it disagrees), the int8
engine, predict --precision int8, and the `auto` rule."""
import importlib.util
import json
import os

import numpy as np
import paddle
import pytest
import yaml

from .conftest import NUM_SEG, REPO, make_model, pipeline, write_config

pytest.importorskip("onnxruntime", reason="int8 runs through onnxruntime (pip install onnxruntime)")
pytest.importorskip("paddle2onnx", reason="int8 starts from the ONNX export (pip install paddle2onnx)")
cv2 = pytest.importorskip("cv2", reason="the test videos are written with OpenCV")

from paddlevideo.deploy.cli import predict_main                      # noqa: E402
from paddlevideo.deploy.quant import Int8Refused, quantize_onnx, required_agreement  # noqa: E402
from paddlevideo.deploy.runtime import (AUTO_MIN_CLIPS, InferenceEngine, cpu_has_vnni,  # noqa: E402
                                        int8_auto_ok)

CALIB, HELD_OUT = 16, 8
# int8 logits vs fp32, max abs difference relative to the fp32 logit scale. Activations carry
# 8 bits (a step of 1/255 of each tensor's calibrated range) through ~20 quantized convolutions
# of this random-weight ResNet-18, whose errors add up: measured 0.05-0.07 over three seeds
# (TSM-R50 in docs/deploy.md). 0.2 leaves 3x room for other seeds and ORT versions, while a broken
# quantization (wrong scales, a layer clipped far off its range) gives differences of order 1.
INT8_REL_TOL = 0.2


def _write_video(path, seed, frames=10, h=80, w=96):
    """A small MJPG video: a smooth random colour field with a bright square moving across."""
    rng = np.random.RandomState(seed)
    base = cv2.resize(rng.randint(0, 256, (4, 5, 3)).astype(np.uint8), (w, h),
                      interpolation=cv2.INTER_CUBIC)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (w, h))
    colour = tuple(int(c) for c in rng.randint(0, 256, 3))
    x0, y0, dx = rng.randint(0, w // 2), rng.randint(0, h // 2), rng.randint(2, 6)
    for t in range(frames):
        img = base.copy()
        x = (x0 + dx * t) % (w - 20)
        cv2.rectangle(img, (x, y0), (x + 20, y0 + 20), colour, -1)
        writer.write(img)
    writer.release()


@pytest.fixture(scope="module")
def videos_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("int8_videos")
    calib, held = root / "calib", root / "held"
    calib.mkdir()
    held.mkdir()
    for i in range(CALIB):
        _write_video(calib / f"c{i:02d}.avi", seed=i)
    for i in range(HELD_OUT):
        _write_video(held / f"h{i:02d}.avi", seed=1000 + i)
    return str(calib), str(held)


def _export_tool():
    spec = importlib.util.spec_from_file_location("pv_export_tool",
                                                  os.path.join(REPO, "tools", "export_model.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _export(tmp, model, *extra):
    """tools/export_model.py in this process on `model`'s checkpoint; returns (code, out dir)."""
    ckpt = str(tmp / "TSM.pdparams")
    paddle.save(model.state_dict(), ckpt)
    cfg = write_config(tmp / "tsm.yaml")
    out = tmp / "out"
    code = _export_tool().main(["-c", cfg, "-p", ckpt, "-o", str(out), *extra])
    return code, str(out)


@pytest.fixture(scope="module")
def exported(tmp_path_factory, videos_dirs):
    calib, _ = videos_dirs
    model = make_model(seed=31)
    code, out = _export(tmp_path_factory.mktemp("int8_model"), model, "--onnx", "--int8", calib,
                        "--calib_clips", str(CALIB))
    assert code == 0
    return model, out


def _held_out_clips(held):
    from paddlevideo.loader import Compose
    compose = Compose(pipeline())
    files = sorted(os.path.join(held, f) for f in os.listdir(held))
    return np.stack([compose({"filename": f, "rng": np.random.default_rng(0)})["imgs"]
                     for f in files]).astype("float32")


def test_export_int8_writes_checked_model(exported):
    _, out = exported
    assert os.path.isfile(os.path.join(out, "TSM.int8.onnx"))
    with open(os.path.join(out, "TSM.infer.yaml")) as f:
        check = yaml.safe_load(f)["int8_check"]
    assert check["passed"] and check["clips"] == CALIB
    assert check["agreement"] >= check["required"] == round(required_agreement(CALIB), 4)
    assert 0 < check["rel_diff"] <= INT8_REL_TOL
    assert check["int8_ms"] > 0 and check["speedup"] > 0


def test_int8_logits_close_and_top1_agrees_on_held_out(exported, videos_dirs):
    _, out = exported
    x = _held_out_clips(videos_dirs[1])
    ref = InferenceEngine(out, backend="onnxruntime", precision="fp32")(x)
    engine = InferenceEngine(out, backend="onnxruntime", precision="int8")
    assert engine.precision == "int8"
    got = engine(x)
    scale = float(np.abs(ref).max())
    diff = np.abs(got - ref).max(axis=1)
    assert diff.max() <= INT8_REL_TOL * scale, f"{diff.max():.3g} vs scale {scale:.3g}"
    # top-1 may only change where fp32's two best logits are closer than int8's own error there
    top2 = np.sort(ref, axis=1)[:, -2:]
    margin = top2[:, 1] - top2[:, 0]
    flipped = ref.argmax(1) != got.argmax(1)
    assert np.all(margin[flipped] <= 2 * diff[flipped])
    assert flipped.sum() <= 1, f"{int(flipped.sum())} of {len(x)} held-out clips changed top-1"


def test_refused_int8_leaves_no_file(tmp_path, videos_dirs, capsys):
    calib, _ = videos_dirs
    code, out = _export(tmp_path, make_model(seed=32), "--int8", calib, "--calib_clips", "8",
                        "--int8_min_agreement", "1.01")
    err = capsys.readouterr().err
    assert code == 1 and "int8 model refused: top-1 agreement" in err and "Traceback" not in err
    assert os.path.isfile(os.path.join(out, "TSM.onnx"))          # --int8 implies --onnx
    assert not os.path.exists(os.path.join(out, "TSM.int8.onnx"))
    assert not [f for f in os.listdir(out) if f.startswith("pv_int8_")]    # no temp left
    with open(os.path.join(out, "TSM.infer.yaml")) as f:
        assert yaml.safe_load(f)["int8_check"]["passed"] is False
    with pytest.raises(Exception, match="TSM.int8.onnx not found; make it with"):
        InferenceEngine(out, backend="onnxruntime", precision="int8")
    # the library call refuses the same way
    x = np.random.RandomState(0).standard_normal((8, NUM_SEG, 3, 64, 64)).astype("float32")
    with pytest.raises(Int8Refused):
        quantize_onnx(os.path.join(out, "TSM.onnx"), x, min_agreement=1.01, speed_runs=0)
    assert not os.path.exists(os.path.join(out, "TSM.int8.onnx"))


def test_bad_calibration_inputs_are_clear(exported, tmp_path, capsys):
    code, _ = _export(tmp_path, make_model(seed=33), "--int8", str(tmp_path / "nowhere"))
    assert code == 1 and "calibration videos not found" in capsys.readouterr().err
    onnx_file = os.path.join(exported[1], "TSM.onnx")
    few = np.zeros((3, NUM_SEG, 3, 64, 64), "float32")
    with pytest.raises(Exception, match="needs at least 8"):
        quantize_onnx(onnx_file, few, out_file=str(tmp_path / "x.int8.onnx"))
    wrong = np.zeros((8, NUM_SEG, 3, 32, 32), "float32")
    with pytest.raises(Exception, match="model's own test pipeline"):
        quantize_onnx(onnx_file, wrong, out_file=str(tmp_path / "x.int8.onnx"))
    assert not os.path.exists(tmp_path / "x.int8.onnx")


def test_predict_int8_end_to_end(exported, videos_dirs, tmp_path, capsys):
    _, out = exported
    held = videos_dirs[1]
    res = {}
    for precision in ("int8", "fp32"):
        path = tmp_path / f"{precision}.jsonl"
        assert predict_main(["-i", held, "--model_dir", out, "--precision", precision,
                             "--output", str(path), "--batch_size", "4"]) == 0
        assert f"predict: ONNX Runtime {precision} (CPU" in capsys.readouterr().out
        res[precision] = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(res["int8"]) == HELD_OUT
    same = sum(a["top1_index"] == b["top1_index"] for a, b in zip(res["int8"], res["fp32"]))
    assert same >= HELD_OUT - 1


def test_auto_rule_and_stale_int8(exported, tmp_path, capsys):
    _, out = exported
    # 16 clips checked: below AUTO_MIN_CLIPS, so `auto` keeps ONNX Runtime fp32
    assert predict_main(["-i", os.path.join(out, "none.avi"), "--model_dir", out]) == 1
    assert "predict: ONNX Runtime fp32 (CPU" in capsys.readouterr().out
    good = {"int8_check": {"passed": True, "clips": AUTO_MIN_CLIPS, "agreement": 1.0,
                           "speedup": 2.0}}
    assert int8_auto_ok(good) == cpu_has_vnni()
    for key, value in (("passed", False), ("clips", 16), ("agreement", 0.98), ("speedup", 1.05)):
        bad = {"int8_check": dict(good["int8_check"], **{key: value})}
        assert not int8_auto_ok(bad)
    assert not int8_auto_ok({}) and not int8_auto_ok(None)
    assert required_agreement(32) == pytest.approx(31 / 32)
    assert required_agreement(100) == required_agreement(400) == 0.99
    # an int8 file without a passing check in the inference config is refused
    stale = tmp_path / "stale"
    stale.mkdir()
    for f in ("TSM.json", "TSM.pdiparams", "TSM.onnx", "TSM.int8.onnx", "TSM.infer.yaml"):
        data = open(os.path.join(out, f), "rb").read()
        if f.endswith(".yaml"):
            info = yaml.safe_load(data)
            del info["int8_check"]
            data = yaml.safe_dump(info).encode()
        (stale / f).write_bytes(data)
    with pytest.raises(Exception, match="no passing int8 check"):
        InferenceEngine(str(stale), backend="onnxruntime", precision="int8")
    # a check that meets the rule (as a 32-clip export would record) makes `auto` take int8
    info = yaml.safe_load(open(os.path.join(out, "TSM.infer.yaml")))
    info["int8_check"].update(clips=AUTO_MIN_CLIPS, agree=AUTO_MIN_CLIPS, agreement=1.0,
                              speedup=2.0)
    (stale / "TSM.infer.yaml").write_text(yaml.safe_dump(info))
    assert predict_main(["-i", os.path.join(out, "none.avi"), "--model_dir", str(stale)]) == 1
    chosen = "int8" if cpu_has_vnni() else "fp32"
    assert f"predict: ONNX Runtime {chosen} (CPU" in capsys.readouterr().out
