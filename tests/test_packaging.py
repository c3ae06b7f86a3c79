"""pyproject.toml: `pip install .` and `pip install -e .` give the package, its commands and the
dependencies of requirements.txt. Built offline (no index, no build isolation) into a fresh
virtual environment that borrows only the build tools from this one."""
import os
import re
import shutil
import site
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _build_tools_or_skip():
    try:
        import setuptools
    except ImportError:
        pytest.skip("setuptools is not installed, and offline pip cannot fetch it to build the "
                    "package (pip install setuptools)")
    major_minor = tuple(int(x) for x in re.findall(r"\d+", setuptools.__version__)[:2])
    if major_minor < (70, 1):                # older setuptools builds wheels with `wheel`
        try:
            import wheel  # noqa: F401
        except ImportError:
            pytest.skip(f"setuptools {setuptools.__version__} needs the `wheel` package to build "
                        f"a wheel (requirements-test.txt installs it)")


def _scripts():
    """name -> 'module:function' from pyproject.toml's [project.scripts]."""
    text = open(os.path.join(REPO, "pyproject.toml"), encoding="utf-8").read()
    block = text.split("[project.scripts]", 1)[1].split("\n[", 1)[0]
    return dict(re.findall(r'^([\w-]+)\s*=\s*"([\w.:]+)"', block, re.M))


def _requirement_names(lines):
    names = set()
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if line:
            names.add(re.match(r"[A-Za-z0-9_.-]+", line).group(0).lower().replace("_", "-"))
    return names


def _venv(root):
    """A virtual environment at `root` that sees this one's packages after its own (pip and the
    build tools), never the checkout."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True,
                   timeout=120)
    python = os.path.join(root, "bin", "python")
    own = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()["
                          "'purelib'])"], capture_output=True, text=True, check=True).stdout.strip()
    borrowed = site.getsitepackages() + [
        p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep)
        if p and not os.path.isdir(os.path.join(p, "paddlevideo"))]
    with open(os.path.join(own, "borrowed_build_tools.pth"), "w") as f:
        f.write("\n".join(borrowed) + "\n")
    return python


@pytest.mark.parametrize("editable", [False, True], ids=["install", "editable"])
def test_pip_install_gives_the_package_its_commands_and_dependencies(tmp_path, editable):
    _build_tools_or_skip()
    src = tmp_path / "src"              # a copy: the build writes build/ and *.egg-info there
    src.mkdir()
    for name in ("pyproject.toml", "requirements.txt", "README.md"):
        shutil.copy(os.path.join(REPO, name), src / name)
    shutil.copytree(os.path.join(REPO, "paddlevideo"), src / "paddlevideo",
                    ignore=shutil.ignore_patterns("__pycache__"))
    python = _venv(tmp_path / "venv")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    cmd = [python, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index",
           "--disable-pip-version-check"] + (["-e"] if editable else []) + [str(src)]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]

    check = ("import importlib.metadata as m, paddlevideo\n"
             "print(paddlevideo.__file__)\n"
             "print('|'.join(m.requires('paddlevideo-tsm')))\n"
             "eps = [e for e in m.entry_points(group='console_scripts') "
             "if e.dist.name == 'paddlevideo-tsm']\n"
             "[e.load() for e in eps]\n"
             "print(' '.join(sorted(e.name + '=' + e.value for e in eps)))\n")
    out = subprocess.run([python, "-c", check], capture_output=True, text=True, env=env,
                         cwd=tmp_path, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    where, requires, scripts = out.stdout.splitlines()
    installed_in = str(src) if editable else str(tmp_path / "venv")
    assert where.startswith(installed_in), where
    with open(os.path.join(REPO, "requirements.txt"), encoding="utf-8") as f:
        assert _requirement_names(requires.split("|")) == _requirement_names(f)
    assert scripts.split() == sorted(f"{k}={v}" for k, v in _scripts().items())
    assert {"paddlevideo-main", "paddlevideo-predict", "paddlevideo-online"} <= set(_scripts())

    main = subprocess.run([str(tmp_path / "venv" / "bin" / "paddlevideo-main"), "--help"],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert main.returncode == 0 and "--test" in main.stdout and "-c CONFIG" in main.stdout, \
        main.stdout + main.stderr
