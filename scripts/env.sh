# Sourced by the scripts: create (or reuse) the virtual environment in $VENV (default .venv) and
# install requirements.txt (+ requirements-test.txt with WITH_TESTS=1) when they changed.
# Sets PY to the environment's python. Set VENV to use another environment, or PY to use a python
# exactly as it is (an environment you manage: no venv is made, nothing is installed).
if [ -n "${PY:-}" ]; then
  command -v "$PY" >/dev/null || { echo "error: PY=$PY is not an executable python" >&2; exit 1; }
  echo "using $PY as it is (PY is set: no virtual environment, no install)"
  return 0 2>/dev/null || exit 0
fi
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
if [ ! -x "$VENV/bin/python" ]; then
  echo "creating virtual environment $VENV with $($PYTHON --version 2>&1)"
  "$PYTHON" -m venv "$VENV"
fi
_reqs="requirements.txt"
[ "${WITH_TESTS:-0}" = 1 ] && _reqs="$_reqs requirements-test.txt"
_stamp="$VENV/.requirements.sha256"
_wanted=$(cat $_reqs | sha256sum | cut -d' ' -f1)
if [ ! -f "$_stamp" ] || ! grep -qx "$_wanted" "$_stamp"; then
  echo "installing $_reqs into $VENV"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  _args=""
  for r in $_reqs; do _args="$_args -r $r"; done
  "$VENV/bin/python" -m pip install --quiet $_args
  echo "$_wanted" >> "$_stamp"
fi
PY="$VENV/bin/python"
