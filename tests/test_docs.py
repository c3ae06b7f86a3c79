"""The docs cannot rot: every command in README.md and docs/ names files that exist and flags its
tool accepts, every link resolves, and the config reference lists every component and parameter.
(The commands themselves run in the tests of each tool and in scripts/quickstart.sh.)"""
import functools
import glob
import inspect
import json
import os
import re
import shlex
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = [os.path.join(REPO, "README.md")] + sorted(glob.glob(os.path.join(REPO, "docs", "*.md")))


def _commands():
    """(doc, script, arguments) for each `python X.py ...` or `bash X.sh ...` in code."""
    found = []
    for doc in DOCS:
        text = open(doc, encoding="utf-8").read()
        blocks = re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.S)
        blocks += re.findall(r"((?:\n    .*)+)", text)                     # indented blocks
        blocks += re.findall(r"`((?:python|bash) [^`]+)`", text)             # inline commands
        for block in blocks:
            joined = re.sub(r"\\\n\s*", " ", block)
            for line in joined.splitlines():
                line = line.strip().split(" #")[0].strip()
                line = re.sub(r"^[A-Z_]+=\S+ ", "", line)           # FRESH=1 bash ...
                line = line.replace(".venv/bin/python", "python")
                m = re.match(r"(?:python -m [\w.]+ (?:--\S+ \S+ )*)?(python|bash) (\S+\.(?:py|sh))(.*)", line)
                if m and not m.group(2).startswith(("-", "/")):
                    found.append((os.path.relpath(doc, REPO), m.group(2), m.group(3)))
    return found


COMMANDS = _commands()


@functools.lru_cache(maxsize=None)
def _help(script):
    out = subprocess.run([sys.executable, script, "--help"], cwd=REPO, capture_output=True,
                         text=True, timeout=120)
    return out.stdout + out.stderr


def test_docs_have_commands():
    scripts = {c[1] for c in COMMANDS}
    for expected in ("scripts/quickstart.sh", "scripts/test.sh", "tools/main.py", "tools/export_model.py",
                     "tools/predict.py", "tools/online_predict.py", "tools/summary.py"):
        assert expected in scripts


@pytest.mark.parametrize("doc,script,args", COMMANDS, ids=[f"{c[0]}:{c[1]}" for c in COMMANDS])
def test_command_names_existing_files_and_accepted_flags(doc, script, args):
    assert os.path.isfile(os.path.join(REPO, script)), f"{doc}: {script} does not exist"
    for token in shlex.split(args.replace("[", " ").replace("]", " ").replace("|", " ")):
        if re.match(r"^configs/\S+\.yaml$", token):
            assert os.path.isfile(os.path.join(REPO, token)), f"{doc}: {token} does not exist"
    if script.endswith(".py"):
        flags = {f.split("=")[0] for f in re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", args)}
        help_text = _help(script)
        assert "usage" in help_text.lower(), f"{script} --help failed:\n{help_text[-2000:]}"
        for flag in flags:
            assert re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", help_text), \
                f"{doc}: `{script}` does not accept {flag}"


def _as_python(script, args):
    """The python command a documented command line comes down to, or None (no arguments to
    check, or a synopsis with [optional] or a|b parts rather than a command to paste)."""
    argv = shlex.split(args)
    if any(t.startswith("[") or "|" in t or t.endswith("...") for t in argv):
        return None
    if script == "scripts/train/train_tsm.sh":
        config = argv.pop(0) if argv and not argv[0].startswith("-") else None
        return "tools/main.py", ["-c", config or "configs/recognition/tsm/tsm_k400_videos.yaml",
                                 "--validate"] + argv
    if script == "scripts/test/test_tsm.sh":
        weights = argv.pop(0)
        config = argv.pop(0) if argv and not argv[0].startswith("-") else None
        return "tools/main.py", ["--test", "-c", config or "configs/recognition/tsm/tsm_k400_videos.yaml",
                                 "-w", weights] + argv
    if script == "scripts/reproduce_demo.sh":
        return "scripts/reproduce_demo.py", argv
    if script.endswith(".py"):
        return script, argv
    return None


def test_pasted_commands_parse_and_their_configs_build(tmp_path):
    """Each command a user can paste is parsed by its script's own parser (a lost value, a renamed
    flag or choice fails), and a tools/main.py config with its -o overrides loads and builds."""
    from paddlevideo.loader import Compose
    from paddlevideo.metrics import build_metric
    from paddlevideo.modeling import build_model
    from paddlevideo.utils.config import get_config
    runs = set()
    for doc, script, args in COMMANDS:
        command = _as_python(script, args)
        if command is not None:
            runs.add((doc, command[0], tuple(command[1])))
    runs = sorted(runs)
    assert len(runs) >= 25
    (tmp_path / "commands.json").write_text(json.dumps([[s, list(a)] for _, s, a in runs]))
    subprocess.run([sys.executable, os.path.join(REPO, "tests", "parse_only.py"),
                    str(tmp_path / "commands.json"), str(tmp_path / "parsed.json")],
                   check=True, timeout=600)
    parsed = json.loads((tmp_path / "parsed.json").read_text())
    failures = [f"{doc}: `python {s} {' '.join(a)}`: {r['error']}"
                for (doc, s, a), r in zip(runs, parsed) if not r["ok"]]
    assert not failures, "\n".join(failures)
    built = set()
    for (doc, script, _), result in zip(runs, parsed):
        config = result["namespace"].get("config")
        if script != "tools/main.py" or not os.path.isfile(os.path.join(REPO, config or "")):
            continue
        overrides = tuple(result["namespace"]["override"])
        if (config, overrides) in built:
            continue
        cfg = get_config(os.path.join(REPO, config), list(overrides))
        build_model(cfg.MODEL, load_pretrained=False)
        build_metric(cfg.METRIC, cfg.MODEL.head.num_classes)
        for mode in ("train", "valid", "test"):
            Compose(cfg.PIPELINE[mode])
        built.add((config, overrides))
    assert any(o for _, o in built), "no documented -o override was checked"


def test_links_and_anchors_resolve():
    def anchors(path):
        heads = re.findall(r"^#+ (.+)$", open(path, encoding="utf-8").read(), flags=re.M)
        return {re.sub(r"[^\w\- ]", "", h.lower()).strip().replace(" ", "-") for h in heads}
    for doc in DOCS:
        for target in re.findall(r"\]\(([^)\s]+)\)", open(doc, encoding="utf-8").read()):
            if target.startswith(("http://", "https://", "#")):
                continue
            path, _, anchor = target.partition("#")
            full = os.path.normpath(os.path.join(os.path.dirname(doc), path))
            assert os.path.exists(full), f"{doc}: link to missing {target}"
            if anchor:
                assert anchor in anchors(full), f"{doc}: no heading for #{anchor} in {path}"


def test_config_reference_lists_every_component_and_parameter():
    import paddlevideo.loader  # noqa: F401  (fill the registries)
    import paddlevideo.metrics  # noqa: F401
    import paddlevideo.modeling  # noqa: F401
    from paddlevideo.loader.registry import DATASETS, PIPELINES
    from paddlevideo.metrics.registry import METRICS
    from paddlevideo.modeling.registry import BACKBONES, HEADS, LOSSES, RECOGNIZERS
    from paddlevideo.solver.lr import LR_SCHEDULES
    from paddlevideo.utils.config import SECTION_KEYS, TOP_LEVEL_KEYS
    text = open(os.path.join(REPO, "docs", "config.md"), encoding="utf-8").read()
    injected = {"self", "pipeline", "mode", "backbone", "head", "steps_per_epoch", "epochs"}
    missing = []
    for registry in (BACKBONES, HEADS, RECOGNIZERS, LOSSES, DATASETS, PIPELINES, METRICS, LR_SCHEDULES):
        for name in registry.names():
            if not registry.get(name).__module__.startswith("paddlevideo."):
                continue                        # registered by a test, not shipped
            if f"`{name}`" not in text:
                missing.append(name)
            for param in inspect.signature(registry.get(name).__init__).parameters:
                if param not in injected and f"`{param}`" not in text:
                    missing.append(f"{name}.{param}")
    for key in list(TOP_LEVEL_KEYS) + [k for keys in SECTION_KEYS.values() for k in keys]:
        if f"`{key}`" not in text:
            missing.append(key)
    assert not missing, f"docs/config.md does not mention: {missing}"
