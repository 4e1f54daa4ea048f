# Sourced by dev/run and dev/test: a project venv with moto's server (the Secrets Manager peer),
# created once, and MOTO_PYTHON pointing at it.
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ ! -x "$top/.venv/bin/python" ]; then
  echo "dev: creating .venv for moto's Secrets Manager server (once)" >&2
  python3 -m venv "$top/.venv"
fi
if ! "$top/.venv/bin/python" -c "import moto.server" 2>/dev/null; then
  echo "dev: installing moto from PyPI into .venv (about 30 s, once)" >&2
  "$top/.venv/bin/python" -m pip install --disable-pip-version-check --progress-bar off \
    -r "$top/dev/requirements.txt" | grep -E '^(Collecting|Successfully)' >&2 || true
  "$top/.venv/bin/python" -c "import moto.server"
fi
export MOTO_PYTHON="$top/.venv/bin/python"
