"""A quiet terminal: Paddle's five lines a user cannot act on never show, real warnings do, the
order of the output and a terminal's isatty() stay as they were."""
import os
import subprocess
import sys
import textwrap

import pytest

from paddlevideo.utils.quiet import is_noise

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Paddle 3.3's lines, as it prints them
NOISE = {
    "ccache": "No ccache found. Please be aware that recompiling all source files may be required.",
    "omp": "WARNING: OMP_NUM_THREADS set to 2, not 1. The computation speed will not be optimized "
           "if you use data parallel. It will fail if this PaddlePaddle binary is compiled with "
           "OpenBlas since OpenBlas does not support multi-threads.",
    "omp2": "PLEASE USE OMP_NUM_THREADS WISELY.",
    "pir": "W1202 01:05:46.161420 15180 eager_utils.cc:3584] Paddle static graph(PIR) not support "
           "input out tensor for now!!!!!",
    "reduce_mean": "ReduceMeanCheckIfOneDNNSupport",
    "bf16": "I1202 01:06:15.250195 16449 analysis_config.cc:713] Hardware support for BFLOAT16 is "
            "enabled",
}
MARKS = ["No ccache found", "OMP_NUM_THREADS set to", "PLEASE USE OMP_NUM_THREADS WISELY",
         "Paddle static graph(PIR) not support", "ReduceMeanCheckIfOneDNNSupport",
         "Hardware support for BFLOAT16"]                # what gives each of them away
REAL = ["a real warning we raise", "a warning our logger prints",
        "W1202 01:05:46.161420 15180 conv_kernel.cc:12] a real Paddle C++ warning",
        "first half, second half", "stdout after stderr"]

# Writes each noise line where and how Paddle writes it, and real lines in between.
_LINE = {name: repr(text.encode() + b"\n") for name, text in NOISE.items()}
_LINE["real_glog"] = repr(REAL[2].encode() + b"\n")
SCRIPT = textwrap.dedent(f"""
    import logging, os, sys, time, warnings
    sys.path.insert(0, {REPO!r})
    from paddlevideo.utils import quiet
    print("filter", quiet.install(), sys.stdout.isatty(), sys.stderr.isatty(), flush=True)
    warnings.warn({NOISE['ccache']!r})                          # paddle.utils.cpp_extension
    print({NOISE['omp']!r}, file=sys.stderr)                     # paddle.base.__bootstrap__
    print({NOISE['omp2']!r}, file=sys.stderr)
    os.write(2, {_LINE['pir']})                                  # glog WARNING
    warnings.warn({REAL[0]!r})
    logging.getLogger("paddlevideo").warning({REAL[1]!r})
    os.write(1, {_LINE['reduce_mean']})                          # C++ std::cout
    os.write(2, {_LINE['real_glog']})
    os.write(2, {_LINE['bf16']})                                 # glog INFO
    print("first half,", end="", flush=True)
    time.sleep(0.3)                                             # a partial line is not held
    print(" second half", flush=True)
    sys.stderr.write("stderr before stdout" + chr(10)); sys.stderr.flush()
    print({REAL[4]!r}, flush=True)
""")


def run_script(tmp_path, quiet=True, terminal=False):
    script = tmp_path / "noisy.py"
    script.write_text(SCRIPT)
    env = dict(os.environ, PADDLEVIDEO_OMP_AUTO="1", PADDLEVIDEO_QUIET="1" if quiet else "0")
    env.pop("PADDLEVIDEO_QUIET_CHANNELS", None)
    if not terminal:
        out = subprocess.run([sys.executable, str(script)], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, env=env, timeout=60)
        return out.returncode, out.stdout.decode()
    import pty
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, str(script)], stdin=slave, stdout=slave,
                            stderr=slave, env=env)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:                      # EIO: every writer of the terminal has closed it
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    return proc.wait(timeout=60), b"".join(chunks).decode().replace("\r\n", "\n")


def test_the_five_lines_are_recognised_and_nothing_else():
    for name, line in NOISE.items():
        if name != "ccache":                 # a Python warning: the warnings filter drops it
            assert is_noise(line) and is_noise(line + "\n"), name
    assert not is_noise(NOISE["omp"], drop_omp=False)        # the user chose the thread count
    for line in REAL + ["ReduceMeanCheckIfOneDNNSupport failed: unsupported axis",
                        "E1202 01:05:46.161420 15180 eager_utils.cc:3584] Paddle static graph(PIR)"
                        " not support input out tensor for now!!!!!"]:
        assert not is_noise(line), line
    assert not is_noise("bar 40%\rReduceMeanCheckIfOneDNNSupport")   # the bar is kept
    assert not is_noise("") and not is_noise("\n")                  # blank lines are kept


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the line filter needs os.fork (POSIX)")
@pytest.mark.parametrize("terminal", [False, True], ids=["pipe", "terminal"])
def test_noise_is_dropped_real_warnings_pass_in_order(tmp_path, terminal):
    code, loud = run_script(tmp_path, quiet=False, terminal=terminal)
    assert code == 0 and all(line in loud for line in NOISE.values()), loud   # it was printed
    code, out = run_script(tmp_path, terminal=terminal)
    assert code == 0, out
    assert out.startswith(f"filter True {terminal} {terminal}\n"), out        # isatty() kept
    for name, line in NOISE.items():
        assert line not in out, (name, out)
    positions = [out.find(line) for line in REAL]
    assert -1 not in positions and positions == sorted(positions), out
    assert out.index("stderr before stdout") < out.index(REAL[4])            # order kept


def test_a_tool_prints_none_of_the_five_lines(tmp_path):
    """tools/main.py --test on real videos through Paddle Inference (which traces the model and
    runs oneDNN: the PIR and ReduceMean lines); a broken video still gets its warning."""
    import paddle
    from paddlevideo.modeling import build_model
    from paddlevideo.utils.config import get_config
    data = tmp_path / "demo"
    subprocess.run([sys.executable, "data/make_demo.py", "--out", str(data), "--per-class", "1",
                    "--val-per-class", "1", "--test-per-class", "1", "--size", "32", "--frames",
                    "8", "--quiet"], cwd=REPO, check=True, timeout=120)
    (data / "videos" / "test" / "broken.avi").write_bytes(b"RIFF\x00\x00not a video")
    with open(data / "test.list", "a") as f:
        f.write("videos/test/broken.avi 3\n")
    config = os.path.join(REPO, "configs/recognition/tsm/tsm_demo.yaml")
    weights = str(tmp_path / "w.pdparams")
    paddle.save(build_model(get_config(config).MODEL, load_pretrained=False).state_dict(), weights)
    env = {k: v for k, v in os.environ.items()
           if k not in ("OMP_NUM_THREADS", "PADDLEVIDEO_OMP_AUTO", "PADDLEVIDEO_QUIET",
                        "PADDLEVIDEO_QUIET_CHANNELS", "GLOG_minloglevel")}
    out = subprocess.run([sys.executable, "tools/main.py", "--test", "-c", config, "-w", weights,
                          "-o", f"DATASET.test.file_path={data}/test.list",
                          "-o", f"DATASET.test.data_prefix={data}",
                          "-o", f"DATASET.label_list={data}/label_list.txt",
                          "-o", f"output_dir={tmp_path}/out", "-o", "DATASET.test_num_workers=0",
                          "-o", "DATASET.max_bad_ratio=0.1"],        # 1 of 11 broken on purpose
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    text = out.stdout + out.stderr
    assert out.returncode == 0, text[-3000:]
    assert "[TEST] engine: inference" in text                # the path that printed them
    for mark in MARKS:
        assert mark not in text, (mark, text[-3000:])
    assert "1 of 11 test samples failed to load" in text and "broken.avi" in text


@pytest.mark.parametrize("tool", [
    ["tools/summary.py", "-c", "configs/recognition/tsm/tsm_demo.yaml"],
    ["tools/list_weights.py", "TSM_k400"],
    ["tools/print_config.py", "-c", "configs/recognition/tsm/tsm_demo.yaml"],
    ["tools/convert_weights.py", "missing.pth", "out.pdparams"]])
def test_every_other_tool_is_quiet_too(tool, tmp_path):
    """The small tools import Paddle too: none of its noise, their own output intact."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("OMP_NUM_THREADS", "PADDLEVIDEO_OMP_AUTO", "PADDLEVIDEO_QUIET",
                        "PADDLEVIDEO_QUIET_CHANNELS", "GLOG_minloglevel")}
    out = subprocess.run([sys.executable] + tool, cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=120)
    text = out.stdout + out.stderr
    for mark in MARKS:
        assert mark not in text, (mark, text[-2000:])
    if "convert_weights" in tool[0]:         # a one-line error, no traceback
        assert out.returncode == 1 and text.strip().startswith("error:"), text
        assert "Traceback" not in text
    else:
        assert out.returncode == 0 and text.strip(), text[-2000:]
