"""A quiet terminal: Paddle's lines a user cannot act on never show, real warnings do."""
import io
import os
import subprocess
import sys
import textwrap

import pytest

from paddlevideo.utils.quiet import OMP_LINES, _DropLines

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

MARKS = ["No ccache found", "OMP_NUM_THREADS set to", "PLEASE USE OMP_NUM_THREADS WISELY",
         "Paddle static graph(PIR) not support", "ReduceMeanCheckIfOneDNNSupport",
         "Hardware support for BFLOAT16", "we now always track global mean and variance"]
CLEAN_ENV = ("OMP_NUM_THREADS", "PADDLEVIDEO_OMP_AUTO", "PADDLEVIDEO_QUIET", "GLOG_minloglevel",
             "GLOG_v")

# What an entry point does: threads, quiet, then paddle; a BatchNorm trains (its warning), and
# real warnings of ours and of Python pass.
SCRIPT = textwrap.dedent(f"""
    import logging, sys, warnings
    sys.path.insert(0, {REPO!r})
    from paddlevideo.utils.env import configure_cpu_threads
    from paddlevideo.utils import quiet
    configure_cpu_threads()
    quiet.install()
    import paddle
    print("stdout before", flush=True)
    bn = paddle.nn.BatchNorm2D(3)
    bn.train()
    bn(paddle.rand([2, 3, 4, 4]))
    warnings.warn("a real warning we raise")
    logging.basicConfig()
    logging.getLogger("paddlevideo").warning("a warning our logger prints")
    print("stdout after", flush=True)
""")


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in CLEAN_ENV}
    env.update(extra)
    return env


def test_paddle_noise_is_dropped_and_real_warnings_pass(tmp_path):
    script = tmp_path / "entry.py"
    script.write_text(SCRIPT)
    loud = subprocess.run([sys.executable, str(script)], env=_env(PADDLEVIDEO_QUIET="0"),
                          capture_output=True, text=True, timeout=120)
    quiet = subprocess.run([sys.executable, str(script)], env=_env(), capture_output=True,
                           text=True, timeout=120)
    assert loud.returncode == 0 and quiet.returncode == 0, loud.stderr + quiet.stderr
    # with PADDLEVIDEO_QUIET=0 Paddle prints them: the test sees what it hides
    for mark in ("No ccache found", "OMP_NUM_THREADS set to", "track global mean"):
        assert mark in loud.stderr, (mark, loud.stderr)
    for mark in MARKS:
        assert mark not in quiet.stdout + quiet.stderr, (mark, quiet.stderr)
    assert "a real warning we raise" in quiet.stderr
    assert "a warning our logger prints" in quiet.stderr
    assert quiet.stdout == "stdout before\nstdout after\n"


def test_the_user_choice_of_threads_keeps_paddle_line():
    """OMP_NUM_THREADS set by the user: Paddle's warning about it is theirs to read."""
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {REPO!r})
        from paddlevideo.utils.env import configure_cpu_threads
        from paddlevideo.utils import quiet
        configure_cpu_threads(); quiet.install(); import paddle""")],
        env=_env(OMP_NUM_THREADS="2"), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "OMP_NUM_THREADS set to 2" in out.stderr, out.stderr


def test_drop_lines_keeps_order_partial_lines_and_everything_else():
    target = io.StringIO()
    stream = _DropLines(target, OMP_LINES)
    stream.write("kept 1\nWARNING: OMP_NUM_THREADS set to 2, not 1. The ...")
    stream.write(" rest of it\nPLEASE USE OMP_NUM_THREADS WISELY.\nkept ")
    stream.write("2\nunfinished")
    assert target.getvalue() == "kept 1\nkept 2\n"
    stream.flush()
    assert target.getvalue() == "kept 1\nkept 2\nunfinished"


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
    env = _env()
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
    env = _env()
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
