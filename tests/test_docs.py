"""The docs cannot rot: every command in README.md and docs/ names files that exist and flags its
tool accepts, every link resolves, and the config reference lists every component and parameter.
(The commands themselves run in the tests of each tool and in scripts/quickstart.sh.)"""
import functools
import glob
import inspect
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
