"""Parse documented command lines with each script's own argparse parser, and stop there.

    python tests/parse_only.py COMMANDS.json RESULTS.json

COMMANDS.json holds [[script, [arg, ...]], ...]. Each script runs as `__main__` until its first
`parse_args`; the parsed namespace (or argparse's error) is reported and nothing else runs, so
a documented flag that was renamed, lost its value or its choice fails here and not for a user.
"""
import argparse
import contextlib
import io
import json
import os
import runpy
import sys


class Parsed(Exception):
    def __init__(self, namespace):
        super().__init__()
        self.namespace = namespace


def _stop_after_parse(self, args=None, namespace=None):
    ns, extra = self.parse_known_args(args, namespace)
    if extra:
        self.error("unrecognized arguments: " + " ".join(extra))
    raise Parsed(ns)


def parse(script, args):
    """{"ok": bool, "namespace": {...} or "error": "..."} for `python script args`."""
    sys.argv = [script] + list(args)
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            runpy.run_path(script, run_name="__main__")
    except Parsed as p:
        return {"ok": True, "namespace": {k: v for k, v in vars(p.namespace).items()
                                          if isinstance(v, (str, int, float, bool, list, type(None)))}}
    except SystemExit as e:
        if e.code in (0, None) and ("--help" in args or "-h" in args):
            return {"ok": True, "namespace": {}}
        lines = err.getvalue().strip().splitlines()
        return {"ok": False, "error": lines[-1] if lines else f"exit {e.code}"}
    return {"ok": False, "error": "the script never called parse_args"}


if __name__ == "__main__":
    argparse.ArgumentParser.parse_args = _stop_after_parse
    commands_file, results_file = sys.argv[1:3]
    with open(commands_file) as f:
        commands = json.load(f)
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    os.chdir(repo)
    sys.path.insert(0, repo)
    results = [parse(script, args) for script, args in commands]
    with open(results_file, "w") as f:
        json.dump(results, f)
