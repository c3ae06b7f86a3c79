"""ONNX export through paddle2onnx, checked with onnxruntime (skipped when they are absent)."""
import os
import subprocess
import sys

import paddle
import pytest
import yaml

from paddlevideo.deploy.export import export_model
from paddlevideo.deploy.runtime import InferenceEngine

from .conftest import (NUM_SEG, REPO, SIZE, assert_close_logits, clips, make_model,
                       write_config)


def test_onnx_equals_dygraph(tmp_path):
    pytest.importorskip("paddle2onnx", reason="optional: pip install paddle2onnx")
    pytest.importorskip("onnxruntime", reason="optional: pip install onnxruntime")
    from paddlevideo.deploy.export import record_check
    from paddlevideo.deploy.onnx_export import export_onnx
    model = make_model(seed=13)
    res = export_model(model, str(tmp_path), "TSM", NUM_SEG, SIZE)
    check = export_onnx(res.model_file, res.params_file, [-1, NUM_SEG, 3, SIZE, SIZE])
    assert check["passed"] and check["max_abs_diff"] <= 1e-4 * check["logit_scale"]
    record_check(res.infer_config, "onnx_check", check)
    x = clips(3, seed=14)
    with paddle.no_grad():
        want = model(paddle.to_tensor(x)).numpy()
    got = InferenceEngine(str(tmp_path), backend="onnxruntime", precision="fp32")(x)
    assert_close_logits(got, want)


# A fresh environment from requirements.txt lacks onnx_graphsurgeon and sympy (this one may have
# them: paddle2onnx's Polygraphy step once installed them here). The harness hides them, records
# every subprocess that mentions pip, and puts a pip that only records itself first on PATH.
HARNESS = '''
import importlib.abc, os, subprocess, sys
LOG = os.environ["PV_INSTALL_LOG"]
with open(LOG, "a") as f:
    f.write("harness loaded\\n")

class Absent(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in ("onnx_graphsurgeon", "sympy"):
            raise ImportError(f"No module named {name!r} (absent in this test)")
        return None

sys.meta_path.insert(0, Absent())
_init = subprocess.Popen.__init__

def recording_init(self, args, *a, **k):
    text = args if isinstance(args, str) else " ".join(map(str, args))
    if "pip" in text:
        with open(LOG, "a") as f:
            f.write("subprocess: " + text + "\\n")
    return _init(self, args, *a, **k)

subprocess.Popen.__init__ = recording_init
'''


def test_default_export_writes_checked_onnx_and_installs_nothing(tmp_path):
    """tools/export_model.py with no ONNX flag writes NAME.onnx (default), checked and recorded
    with its digest, offline, with pip unable to install anything and nothing trying to."""
    pytest.importorskip("paddle2onnx", reason="optional: pip install paddle2onnx")
    pytest.importorskip("onnxruntime", reason="optional: pip install onnxruntime")
    from paddlevideo.deploy.runtime import file_digest
    model = make_model(seed=15)
    ckpt = str(tmp_path / "w.pdparams")
    paddle.save(model.state_dict(), ckpt)
    cfg = write_config(tmp_path / "tsm.yaml")
    site, bin_dir, log = tmp_path / "site", tmp_path / "bin", tmp_path / "installs.log"
    site.mkdir()
    bin_dir.mkdir()
    (site / "sitecustomize.py").write_text(HARNESS)
    for name in ("pip", "pip3"):
        (bin_dir / name).write_text('#!/bin/sh\necho "pip on PATH: $*" >> "$PV_INSTALL_LOG"\n'
                                    'exit 1\n')
        (bin_dir / name).chmod(0o755)
    env = dict(os.environ, PV_INSTALL_LOG=str(log), PYTHONPATH=str(site),
               PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", PIP_NO_INDEX="1",
               PIP_INDEX_URL="http://127.0.0.1:9/simple", PIP_CONFIG_FILE=os.devnull)
    env.pop("POLYGRAPHY_AUTOINSTALL_DEPS", None)
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, os.path.join(REPO, "tools", "export_model.py"), "-c",
                           cfg, "-p", ckpt, "-o", str(out)], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert log.read_text().splitlines() == ["harness loaded"], log.read_text()
    info = yaml.safe_load((out / "TSM.infer.yaml").read_text())
    check = info["onnx_check"]
    assert check["passed"] and check["sha256"] == file_digest(str(out / "TSM.onnx"))
    assert check["max_abs_diff"] <= 1e-4 * check["logit_scale"]
    assert sorted(os.listdir(out)) == ["TSM.infer.yaml", "TSM.json", "TSM.onnx", "TSM.pdiparams"]
    x = clips(2, seed=16)
    with paddle.no_grad():
        want = model(paddle.to_tensor(x)).numpy()
    engine = InferenceEngine(str(out))                        # the default engine: ONNX Runtime
    assert (engine.backend, engine.precision) == ("onnxruntime", "fp32")
    assert_close_logits(engine(x), want)
