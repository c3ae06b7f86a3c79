"""The package's import graph: no cycles (function-local imports included), no private name taken
from another module, one implementation of each shared helper, and the inference runtime loads
without the rest of the deploy side."""
import ast
import os
import subprocess
import sys

from .conftest import REPO

PACKAGE = "paddlevideo"


def _modules():
    """{module name: (path, is_package)} for every .py file of the package."""
    found = {}
    for root, _, files in os.walk(os.path.join(REPO, PACKAGE)):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(root, name)
                parts = os.path.relpath(path, REPO)[:-3].split(os.sep)
                is_package = parts[-1] == "__init__"
                found[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return found


def _imports(modules):
    """(edges {module: {imported package module}}, [(module, source, private name)])."""
    edges, private = {m: set() for m in modules}, []
    for module, (path, is_package) in modules.items():
        base = module.split(".") if is_package else module.split(".")[:-1]
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), path)
        for node in ast.walk(tree):           # every import, at any depth (lazy ones count too)
            if isinstance(node, ast.Import):
                edges[module] |= {a.name for a in node.names if a.name in modules}
            elif isinstance(node, ast.ImportFrom):
                source = ".".join(base[:len(base) - node.level + 1] + [node.module or ""]) \
                    .strip(".") if node.level else (node.module or "")
                if not source.startswith(PACKAGE):
                    continue
                for alias in node.names:
                    if f"{source}.{alias.name}" in modules:
                        edges[module].add(f"{source}.{alias.name}")
                        continue
                    if source in modules:
                        edges[module].add(source)
                    if alias.name.startswith("_") and not alias.name.startswith("__"):
                        private.append((module, source, alias.name))
    return edges, private


def _cycles(edges):
    cycles, state = [], {}

    def visit(node, stack):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(edges[node]):
            if state.get(nxt) == "open":
                cycles.append(" -> ".join(stack[stack.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node, [])
    return cycles


def test_checker_sees_cycles_and_private_names(tmp_path):
    """The checker itself: a two-module cycle through a function-local import, and a private
    name imported across modules, are both found."""
    modules = {"paddlevideo.a": (str(tmp_path / "a.py"), False),
               "paddlevideo.b": (str(tmp_path / "b.py"), False)}
    (tmp_path / "a.py").write_text("from .b import helper\n")
    (tmp_path / "b.py").write_text("def helper():\n    from .a import _secret\n")
    edges, private = _imports(modules)
    assert _cycles(edges) == ["paddlevideo.a -> paddlevideo.b -> paddlevideo.a"]
    assert private == [("paddlevideo.b", "paddlevideo.a", "_secret")]


def test_no_import_cycles_and_no_private_names_across_modules():
    edges, private = _imports(_modules())
    assert len(edges) > 40 and any(edges.values())
    assert not _cycles(edges), "import cycles:\n" + "\n".join(_cycles(edges))
    assert not private, "private names imported from another module: " + str(private)


def test_one_implementation_of_each_shared_helper():
    """Each helper that once had 2-4 copies is defined (or does its job) in one module."""
    sources = {m: open(p, encoding="utf-8").read() for m, (p, _) in _modules().items()}
    defined = {}
    for module, text in sources.items():
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                defined.setdefault(node.name, []).append(module)
    for name in ("softmax", "first_line", "available_cores", "paddle_predictor", "ort_session",
                 "read_infer_config", "write_infer_config", "check_same_logits",
                 "model_from_config", "save_program"):
        assert len(defined.get(name, [])) == 1, f"{name} defined in {defined.get(name)}"
    # the work itself, wherever a copy might hide under another name
    for needle, home in (("/proc/cpuinfo", "paddlevideo.deploy.runtime"),
                         ("create_predictor(", "paddlevideo.deploy.runtime"),
                         ("InferenceSession(", "paddlevideo.deploy.runtime"),
                         ("sched_getaffinity", "paddlevideo.utils.env")):
        holders = sorted(m for m, text in sources.items() if needle in text)
        assert holders == [home], f"{needle!r} appears in {holders}, expected only {home}"


def test_runtime_loads_without_the_rest_of_deploy():
    """`main.py --test` needs the runtime only: importing it (and the task runner) must not load
    export, ONNX, int8, predict or online code."""
    code = ("import sys, paddlevideo.tasks.runner; "
            "print(sorted(m for m in sys.modules if m.startswith('paddlevideo.deploy')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    loaded = out.stdout.strip().splitlines()[-1]
    assert loaded == str(["paddlevideo.deploy", "paddlevideo.deploy.errors",
                          "paddlevideo.deploy.runtime"])


def test_predict_with_onnx_runtime_does_not_load_paddle():
    """Predict's modules (and the runtime) import Paddle only when a Paddle engine is built, so
    a prediction with ONNX Runtime starts in about a second."""
    code = ("import sys, paddlevideo.deploy.cli, paddlevideo.deploy.predictor, "
            "paddlevideo.deploy.inputs, paddlevideo.deploy.export; print('paddle' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "False"


# The layers of docs/architecture.md: a package imports only from its own layer's package or
# from lower layers; the four component packages of layer 1 do not import one another.
LAYERS = [{"utils"}, {"modeling", "loader", "solver", "metrics"}, {"config_check"}, {"explain"},
          {"deploy"}, {"tasks"}]


def _layer(package):
    return next(i for i, names in enumerate(LAYERS) if package in names)


def test_imports_flow_one_way_between_the_packages():
    edges, _ = _imports(_modules())
    wrong = []
    for module, targets in edges.items():
        parts = module.split(".")
        if len(parts) < 2:                      # paddlevideo/__init__.py
            continue
        for target in targets:
            here, there = parts[1], target.split(".")[1] if "." in target else None
            if there is None or here == there:
                continue
            if _layer(there) > _layer(here) or (_layer(there) == _layer(here) == 1):
                wrong.append(f"{module} imports {target}")
    assert not wrong, wrong
