"""The benchmark scripts cannot rot: each runs end to end with --smoke (the same code at tiny sizes,
meaningless figures) into a temporary --out folder, writes well-formed results there and leaves the
published benchmarks/results alone. Nothing here is about speed."""
import glob
import hashlib
import importlib.util
import json
import math
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(REPO, "benchmarks", "results")
SCRIPTS = ["shift_op", "data_pipeline", "train_speed", "inference", "converted_weights",
           "gpu_check", "online_mobilenet", "serve", "explain", "timeline"]


def _published():
    """{file: (mtime, sha256)} of benchmarks/results and its subfolders."""
    out = {}
    for path in sorted(glob.glob(os.path.join(RESULTS, "**", "*"), recursive=True)):
        if os.path.isdir(path):
            continue
        with open(path, "rb") as f:
            out[path] = (os.stat(path).st_mtime_ns, hashlib.sha256(f.read()).hexdigest())
    return out


def _smoke(name, tmp_path):
    """Run benchmarks/NAME.py --smoke --out TMP; return its JSON results and markdown. Its
    temporary files go to a folder of their own, which must hold none of them afterwards."""
    out, scratch = tmp_path / "out", tmp_path / "tmp"
    out.mkdir()
    scratch.mkdir()
    before = _published()
    env = dict(os.environ, TMPDIR=str(scratch))
    proc = subprocess.run([sys.executable, os.path.join("benchmarks", f"{name}.py"), "--smoke",
                           "--out", str(out)], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, (proc.stdout[-2000:], proc.stderr[-3000:])
    assert _published() == before, "a smoke run changed benchmarks/results"
    assert sorted(os.listdir(out)) == [f"{name}.json", f"{name}.md"]
    left = [f for f in os.listdir(scratch) if not f.startswith(".")]   # onnxruntime keeps a .ses
    assert left == [], f"temporary files left behind: {left}"
    markdown = (out / f"{name}.md").read_text()
    assert "Smoke run (--smoke)" in markdown and "meaningless" in markdown
    return json.loads((out / f"{name}.json").read_text()), markdown


def _positive(value, what):
    assert isinstance(value, (int, float)) and math.isfinite(value) and value > 0, f"{what}: {value}"


@pytest.mark.parametrize("name", SCRIPTS)
def test_smoke_flag_is_documented_as_meaningless(name):
    proc = subprocess.run([sys.executable, os.path.join("benchmarks", f"{name}.py"), "--help"],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "--smoke" in proc.stdout and "--out" in proc.stdout and "meaningless" in proc.stdout


def test_shift_op_smoke(tmp_path):
    results, markdown = _smoke("shift_op", tmp_path)
    assert results["meta"]["smoke"] is True and results["meta"]["repeats"] == 1
    assert len(results["rows"]) >= 2
    for row in results["rows"]:
        for impl in ("fused", "composed"):
            for step in ("forward", "backward"):
                _positive(row[f"{impl}_{step}_ms"], f"{row['case']} {impl} {step}")
            assert math.isfinite(row[f"{impl}_peak_mb"]) and row[f"{impl}_peak_mb"] >= 0
        _positive(row["forward_speedup"], "forward_speedup")
        _positive(row["backward_speedup"], "backward_speedup")
        assert row["case"] in markdown


def test_data_pipeline_smoke(tmp_path):
    results, _ = _smoke("data_pipeline", tmp_path)
    assert results["smoke"] is True
    per_clip = results["per_clip"]
    assert "example.avi" in per_clip                    # the real one, or a tiny stand-in
    demo = [k for k in per_clip if k.startswith("demo set")]
    assert len(demo) == 1
    decoders = {f"{mode}/{b}" for mode in ("test", "train") for b in ("decord", "cv2", "pyav")}
    assert decoders <= set(per_clip["example.avi"]) and decoders == set(per_clip[demo[0]])
    assert any("reference" in k for k in per_clip["example.avi"])
    for video, rows in per_clip.items():
        for case, r in rows.items():
            _positive(r["median_ms"], f"{video} {case}")
            _positive(r["min_ms"], f"{video} {case}")
            assert r["n"] == 1
    assert len(results["dataloader"]) == 2
    for what, rows in results["dataloader"].items():
        assert set(rows) == {"0 workers", "2 workers"}
        for r in rows.values():
            _positive(r["clips"], what)
            _positive(r["clips_per_s"], what)
    assert "load_after" in results["machine"]


def test_train_speed_smoke(tmp_path):
    results, markdown = _smoke("train_speed", tmp_path)
    assert results["smoke"] is True and "smoke" in results["model"]
    for part in ("train_demo", "train_demo_sync", "train_r50"):
        r = results[part]
        assert "error" not in r and "skipped" not in r, r
        assert r["steps_timed"] == 1 and r["batch_size"] == 2
        _positive(r["clips_per_sec"], part)
        _positive(r["sec_per_step"], part)
        assert math.isfinite(r["reader_share"]) and r["reader_share"] >= 0
    _positive(results["host_sync_step_ratio"], "host_sync_step_ratio")
    memory = results["train_memory"]
    assert "error" not in memory, memory.get("error")
    assert [row["epoch"] for row in memory["epochs"]] == [1, 2, 3]
    # no loader worker outlives its epoch, none outlives training
    assert [row["children"] for row in memory["epochs"]] == [0, 0, 0]
    assert memory["after_training"]["children"] == 0
    for row in memory["epochs"]:
        _positive(row["pss_main_mb"], "pss_main_mb")
    for part in ("test_dygraph_1", "test_dygraph_all", "test_fast_1", "test_fast"):
        r = results[part]
        assert "error" not in r, r.get("error")
        _positive(r["sec_per_clip"], part)
        assert len(r["times"]) == 1 and "probs" not in r
    # the --test engine answers as dygraph does: the same probabilities to float32 rounding, and
    # the same top-1 unless dygraph's top two are closer than that (random weights: near ties)
    diff = results["test_fast_vs_dygraph_max_prob_diff"]
    assert 0 <= diff < 1e-4
    assert results["test_fast_same_top1"] or results["test_fast_top1_margin"] <= 2 * diff
    assert "--test engine, all cores" in markdown and "host read every step" in markdown


def test_inference_smoke(tmp_path):
    results, _ = _smoke("inference", tmp_path)
    assert results["smoke"] is True and "smoke" in results["model"]
    onnx = all(importlib.util.find_spec(m) for m in ("onnxruntime", "paddle2onnx"))
    assert set(results["latency_ms"]) == {"1 thread(s), batch 1", "1 thread(s), batch 2"}
    for key, row in results["latency_ms"].items():
        expected = {"dygraph", "PaddleVideo-style export fp32", "ours fp32 (BN folded)"}
        if onnx:                                   # ONNX and int8 steps ran, not skipped
            expected |= {"ONNX Runtime fp32", "ONNX Runtime int8"}
        assert expected <= set(row), (key, sorted(row))
        for name, ms in row.items():
            _positive(ms, f"{key} {name}")
    if onnx:
        assert results["int8_check"]["clips"] >= 8
    for name, a in results["agreement"].items():
        assert math.isfinite(a["max_abs_logit_diff_random"]), name
    fp32 = results["online"]["fp32"]
    _positive(fp32["frame_ms"], "online frame")
    _positive(fp32["clip_ms"], "online clip")


def test_online_mobilenet_smoke(tmp_path):
    if not os.path.isfile(os.path.join(os.path.dirname(REPO), "shared", "videos", "demo.mp4")):
        pytest.skip("../shared/videos/demo.mp4 is absent: the end-to-end row needs a real video")
    results, markdown = _smoke("online_mobilenet", tmp_path)
    assert results["meta"]["smoke"] is True and results["meta"]["threads"] == 2
    rows = results["rows"]
    _positive(rows["Paddle Inference fp32"]["step_ms"], "Paddle Inference step")
    (e2e,) = [r for k, r in rows.items() if k.startswith("end to end")]
    _positive(e2e["fps"], "end to end")
    if all(importlib.util.find_spec(m) for m in ("onnxruntime", "paddle2onnx")):
        _positive(rows["ONNX Runtime fp32"]["step_ms"], "ONNX Runtime step")
        assert rows["ONNX Runtime fp32"]["top1_agreement"] == 1.0
        assert "top1_agreement" in rows["ONNX Runtime int8"]
    if importlib.util.find_spec("torch") is None:
        assert any("torch is not installed" in n for n in results["notes"])


def test_converted_weights_smoke(tmp_path):
    results, markdown = _smoke("converted_weights", tmp_path)
    assert results["meta"]["smoke"] is True and results["meta"]["repeats"] == 1
    (row,) = results["rows"]
    assert row["same_graph"] is True and row["permuted_tensors"] > 0
    for key in ("native_ms", "converted_ms", "ratio"):
        _positive(row[key], key)
    assert "TSM-R18" in markdown


def test_gpu_check_smoke(tmp_path):
    """On the CPU: fp32 trains through the real loop in both layouts, AMP is recorded as needing a
    GPU (never silently run in fp32), and the export's engine agrees with dygraph."""
    results, markdown = _smoke("gpu_check", tmp_path)
    assert results["smoke"] is True
    variants = results["variants"]
    for name in ("fp32_nchw", "fp32_nhwc"):
        _positive(variants[name]["images_per_sec"], name)
        _positive(variants[name]["peak_memory_mb"], name)
        assert variants[name]["top1_agreement"] == 1.0, variants[name]
    assert variants["fp32_nchw"]["max_rel_logit_diff"] == 0.0     # the reference itself
    assert "needs a GPU" in variants["o2_fp16_nhwc"]["skipped"]
    check = results["export"]["inference_cpu_fp32"]
    assert check["top1_agreement"] == 1.0 and check["max_rel_logit_diff"] < 1e-4
    assert "TSM-R18" in markdown


def test_serve_smoke(tmp_path):
    results, markdown = _smoke("serve", tmp_path)
    assert results["smoke"] is True and results["requests"] == 6
    assert [r["batch"] for r in results["offline"]["runs"]] == [1, 4, 8]
    assert [r["clients"] for r in results["server_runs"]] == [1, 4, 16]
    for r in results["server_runs"]:
        _positive(r["throughput"], "throughput")
        assert r["p99_ms"] >= r["p50_ms"] > 0 and r["same_top1_as_offline"] is True
    for value in results["ratios"].values():
        _positive(value, "ratio")


def test_explain_smoke(tmp_path):
    data, _ = _smoke("explain", tmp_path)
    assert data["smoke"] and data["goal_ratio"] == 3.0
    for row in data["rows"]:
        _positive(row["forward"], "forward ms")
        _positive(row["ratio"], "ratio")


def test_timeline_smoke(tmp_path):
    data, _ = _smoke("timeline", tmp_path)
    row, = data["rows"]
    for key in ("tool_windows_per_s", "decode_limit_windows_per_s",
                "inference_limit_windows_per_s", "loop_windows_per_s"):
        _positive(row[key], key)
