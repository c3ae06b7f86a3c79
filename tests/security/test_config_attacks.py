"""Hostile configs: alias bombs, deep nesting, self-referencing aliases and values out of range.

Each is refused before anything runs: one line naming the file:line or the key, exit 1, no output
folder made. The alias bomb runs in a child process with a time and memory limit, so code that
expands it fails the test in seconds instead of filling the machine.
"""
import os
import subprocess
import sys
import textwrap

import pytest

from paddlevideo.tasks.cli import main
from paddlevideo.utils.config import MAX_CONFIG_FILES, ConfigError, load_config
from paddlevideo.utils.yaml_bounds import MAX_ALIAS_NODES, MAX_DEPTH

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEMO = os.path.join(REPO, "configs", "recognition", "tsm", "tsm_demo.yaml")


def billion_laughs(path, levels=9, width=9):
    """`a: &a [1, ...]`, `b: &b [*a, ...]`, ...: a few hundred bytes, width**levels values."""
    names = "abcdefghijklmnopqrstuvwxyz"[:levels]
    lines = [f"{names[0]}: &{names[0]} [" + ", ".join(["1"] * width) + "]"]
    for prev, name in zip(names, names[1:]):
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * width) + "]")
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def run_cli(argv, capsys):
    """(exit code, stderr lines) of tools/main.py's main run in this process."""
    code = main(argv)
    return code, capsys.readouterr().err.strip().splitlines()


def assert_one_line(code, err, *needles):
    assert code == 1, err
    assert len(err) == 1 and err[0].startswith("error: "), err
    for needle in needles:
        assert needle in err[0], (needle, err[0])


_BOUNDED_LOAD = textwrap.dedent("""\
    import resource, sys
    limit = 1 << 30                                     # 1 GiB of address space
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    from paddlevideo.utils.config import ConfigError, load_config
    try:
        load_config(sys.argv[1])
    except ConfigError as e:
        print(e)
        sys.exit(1)
    print("loaded")
    """)


def test_billion_laughs_is_refused_in_bounded_time_and_memory(tmp_path):
    path = billion_laughs(tmp_path / "laughs.yaml")
    assert os.path.getsize(path) < 500                  # 9**9 = 387 million values once expanded
    try:
        r = subprocess.run([sys.executable, "-c", _BOUNDED_LOAD, path], capture_output=True,
                           text=True, cwd=REPO, timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail("loading a 306-byte alias bomb ran past 30 s")
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr[-2000:]
    # the aliases of lines 2-5 repeat 74,718 nodes; the first *e on line 6 adds 66,430 more
    line = r.stdout.strip()
    assert line.startswith(f"{path}:6: the alias *e ") and f"{MAX_ALIAS_NODES:,}" in line, line


def test_billion_laughs_through_main_is_one_line(tmp_path):
    path = billion_laughs(tmp_path / "laughs.yaml")
    try:
        r = subprocess.run([sys.executable, os.path.join(REPO, "tools", "main.py"), "-c", path],
                           capture_output=True, text=True, cwd=tmp_path, timeout=120)
    except subprocess.TimeoutExpired:
        pytest.fail("tools/main.py on a 306-byte alias bomb ran past 120 s")
    err = r.stderr.strip().splitlines()
    assert r.returncode == 1 and len(err) == 1, r.stderr[-2000:]
    assert err[0].startswith(f"error: {path}:6: the alias *e") and "billion laughs" in err[0]
    assert os.listdir(tmp_path) == ["laughs.yaml"]      # no output folder


def test_modest_anchors_still_load_and_each_alias_is_its_own_copy(tmp_path):
    # a real config's use: one pipeline written once and reused, 50 times over
    lines = ["step: &step {name: Scale, short_size: 256, sizes: [1, 2, 3, 4]}"]
    lines += [f"use{i}: *step" for i in range(50)]
    path = tmp_path / "anchors.yaml"
    path.write_text("\n".join(lines) + "\n")
    cfg = load_config(str(path))
    cfg.use0.short_size = 128
    assert cfg.step.short_size == 256 and cfg.use49.short_size == 256
    assert cfg.use7.sizes == [1, 2, 3, 4] and cfg.use7.sizes is not cfg.step.sizes
    # just under the budget: 96,861 nodes repeated by aliases load (and quickly)
    path = billion_laughs(tmp_path / "edge.yaml", levels=4)
    with open(path, "a") as f:
        f.write("e: [" + ", ".join(["*d"] * 12) + "]\n")
    assert len(load_config(path).e) == 12


@pytest.mark.parametrize("text", [
    "x: " + "[" * 20000 + "]" * 20000 + "\n",
    "x: " + "{a: " * 20000 + "1" + "}" * 20000 + "\n",
])
def test_deep_nesting_is_one_line_not_a_recursion_error(tmp_path, capsys, text):
    path = tmp_path / "deep.yaml"
    path.write_text(text)
    code, err = run_cli(["-c", str(path)], capsys)
    assert_one_line(code, err, f"{path}:1:", f"deeper than {MAX_DEPTH} levels")


def test_nesting_at_the_bound_loads_and_past_it_is_refused(tmp_path):
    path = tmp_path / "deep.yaml"
    path.write_text("x: " + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1) + "\n")
    assert isinstance(load_config(str(path)).x, list)       # the top mapping is one level
    path.write_text("x: " + "[" * MAX_DEPTH + "]" * MAX_DEPTH + "\n")
    with pytest.raises(ConfigError, match="deeper than"):
        load_config(str(path))


def test_deep_override_value_is_one_line(tmp_path, capsys):
    value = "[" * 20000 + "]" * 20000
    code, err = run_cli(["-c", DEMO, "-o", f"output_dir={tmp_path}/out",
                         "-o", f"MODEL.head.loss_cfg={value}"], capsys)
    assert_one_line(code, err, "override -o MODEL.head.loss_cfg=", f"deeper than {MAX_DEPTH}")
    assert not os.path.exists(tmp_path / "out")


def test_override_alias_bomb_is_refused(tmp_path, capsys):
    value = "[&a [1,1,1,1,1,1,1,1,1,1], &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a], " \
            "&c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b], &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c], " \
            "&e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d], [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]]"
    code, err = run_cli(["-c", DEMO, "-o", f"output_dir={tmp_path}/out",
                         "-o", f"MODEL.head.loss_cfg={value}"], capsys)
    assert_one_line(code, err, "override -o MODEL.head.loss_cfg=", "billion laughs")
    assert not os.path.exists(tmp_path / "out")


def test_an_alias_inside_its_own_anchor_is_refused(tmp_path, capsys):
    path = tmp_path / "loop.yaml"
    path.write_text("model_name: loop\nloop: &a\n  - 1\n  - *a\n")
    code, err = run_cli(["-c", str(path)], capsys)
    assert_one_line(code, err, f"{path}:4:", "*a is inside its own anchor &a")


BAD_VALUES = [
    ("MODEL.head.drop_ratio=1.5", "'drop_ratio' must be a finite number >= 0 and < 1; got 1.5"),
    ("seed=-1", "seed must be an integer from 0 to 4294967295; got -1"),
    ("seed=99999999999999999999", "seed must be an integer from 0 to 4294967295"),
    ("OPTIMIZER.learning_rate.learning_rate=.inf", "'learning_rate' must be a finite number > 0; "
                                                   "got .inf"),
    ("OPTIMIZER.grad_clip.value=.nan", "OPTIMIZER.grad_clip.value must be a finite number > 0; "
                                       "got .nan"),
    ("OPTIMIZER.weight_decay.value=.inf", "OPTIMIZER.weight_decay.value must be a finite number "
                                          ">= 0; got .inf"),
    ("DATASET.num_workers=100000", "DATASET.num_workers must be an integer from 0 to 64"),
    ("DATASET.batch_size=0", "DATASET.batch_size must be an integer >= 1"),
    ("epochs=0", "epochs must be an integer >= 1"),
    ("MODEL.backbone.num_seg=100000", "'num_seg' must be an integer from 1 to 1024"),
    ("MODEL.backbone.shift_ratio=0.5", "'shift_ratio' must be a finite number > 0 and < 0.5"),
    ("PIPELINE.train.sample.num_seg=0", "'num_seg' must be an integer from 1 to 1024"),
    ("PIPELINE.test.transform[0].Scale.short_size=1000000000", "'short_size' must be an integer "
                                                               "from 1 to 8192"),
    ("PIPELINE.test.transform[1].CenterCrop.target_size=-3", "'target_size' must be an integer "
                                                             "from 1 to 8192"),
    ("OPTIMIZER.momentum=1.0", "OPTIMIZER.momentum must be a finite number >= 0 and < 1"),
    ("OPTIMIZER.learning_rate.warmup_epochs=-1", "'warmup_epochs' must be a finite number >= 0"),
    ("keep_checkpoints=0", "keep_checkpoints must be an integer >= 1"),
    ("max_bad_ratio=1.5", "max_bad_ratio must be a finite number from 0 to 1 or null"),
    ("log_interval=0", "log_interval must be an integer >= 1"),
    ("MODEL.head.num_classes=1000000000", "'num_classes' must be an integer from 1 to 100000"),
]


@pytest.mark.parametrize("override,message", BAD_VALUES, ids=[o for o, _ in BAD_VALUES])
def test_out_of_range_values_stop_before_anything_runs(tmp_path, capsys, override, message):
    key = override.partition("=")[0]
    code, err = run_cli(["-c", DEMO, "-o", f"output_dir={tmp_path}/out", "-o", override], capsys)
    assert_one_line(code, err, f"override -o {override} (", message)
    assert f"({key})" in err[0]
    assert not os.path.exists(tmp_path / "out")


@pytest.mark.parametrize("flag,message", [
    (["--seed", "-1"], "--seed must be an integer from 0 to 4294967295; got -1"),
    (["--seed", "4294967296"], "--seed must be an integer from 0 to 4294967295"),
    (["--max_iters", "0"], "--max_iters must be an integer >= 1; got 0"),
])
def test_out_of_range_flags_stop_before_anything_runs(tmp_path, capsys, flag, message):
    code, err = run_cli(["-c", DEMO, "-o", f"output_dir={tmp_path}/out", *flag], capsys)
    assert_one_line(code, err, message)
    assert not os.path.exists(tmp_path / "out")


def test_an_exported_models_infer_yaml_is_read_with_the_same_bounds(tmp_path):
    from paddlevideo.deploy.errors import DeployError
    from paddlevideo.deploy.runtime import read_infer_config
    deep = tmp_path / "deep.infer.yaml"
    deep.write_text("input: " + "[" * 20000 + "]" * 20000 + "\n")
    with pytest.raises(DeployError, match=f"deeper than {MAX_DEPTH} levels"):
        read_infer_config(str(deep))
    bomb = billion_laughs(tmp_path / "bomb.infer.yaml")
    with open(bomb, "a") as f:
        f.write("input: *i\n")
    with pytest.raises(DeployError, match="billion laughs"):
        read_infer_config(bomb)


def test_bases_that_list_each_other_twice_are_bounded(tmp_path, capsys):
    # 12 files, each listing the next twice: 4,096 reads (seconds) where the old code read them
    # all; 30 such files would be 2**30 reads
    for i in range(12):
        (tmp_path / f"b{i}.yaml").write_text(f"_base_: [b{i + 1}.yaml, b{i + 1}.yaml]\n"
                                             f"model_name: m{i}\n")
    (tmp_path / "b12.yaml").write_text("model_name: last\n")
    code, err = run_cli(["-c", str(tmp_path / "b0.yaml")], capsys)
    assert_one_line(code, err, f"more than {MAX_CONFIG_FILES} reads")
