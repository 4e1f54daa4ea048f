# Sourced by dev/run and dev/test: a project venv with moto's server (the Secrets Manager peer),
# created once, and MOTO_PYTHON pointing at it.
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ ! -x "$top/.venv/bin/python" ]; then
  python3 -m venv "$top/.venv"
fi
if ! "$top/.venv/bin/python" -c "import moto.server" 2>/dev/null; then
  "$top/.venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$top/dev/requirements.txt"
fi
export MOTO_PYTHON="$top/.venv/bin/python"
