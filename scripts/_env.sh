# shellcheck shell=bash
# Sourced by scripts/test, scripts/demo and .ci/run. Makes sure the project venv exists and
# has kclient installed in editable mode with the dev extra; sets ROOT and PY.
#   KCLIENT_VENV  venv directory (default: <repo>/.venv)
#   PYTHON        interpreter used to create it (default: python3; needs >= 3.10)
# The install is redone only when pyproject.toml (or the repo path) changes.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${KCLIENT_VENV:-$ROOT/.venv}"
PY="$VENV/bin/python"

if [ ! -x "$PY" ]; then
    base="${PYTHON:-python3}"
    if ! "$base" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
        echo "error: $base is missing or older than Python 3.10" >&2
        exit 1
    fi
    echo "==> creating virtualenv $VENV" >&2
    "$base" -m venv "$VENV"
fi

_kclient_stamp="$VENV/.kclient-dev-install"
_kclient_want="$ROOT $("$PY" -c 'import hashlib, sys; print(hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest())' "$ROOT/pyproject.toml")"
if [ "$(cat "$_kclient_stamp" 2>/dev/null || true)" != "$_kclient_want" ]; then
    echo "==> pip install -e '.[dev]' into $VENV" >&2
    "$PY" -m pip install -q --disable-pip-version-check -e "$ROOT[dev]"
    printf '%s\n' "$_kclient_want" >"$_kclient_stamp"
fi
unset _kclient_stamp _kclient_want
