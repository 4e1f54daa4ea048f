# Sourced by dev/run and dev/test: a project venv with moto's server (the Secrets Manager peer) and
# oauthlib (the stand-in X API's OAuth 1.0a verifier),
# created once, and MOTO_PYTHON pointing at it.
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ ! -x "$top/.venv/bin/python" ]; then
  echo "dev: creating .venv for moto's Secrets Manager server (once)" >&2
  python3 -m venv "$top/.venv"
fi
if ! "$top/.venv/bin/python" -c "import moto.server, oauthlib" 2>/dev/null; then
  # Measured: 36 s with pip's cache warm, about 50 s from a cold one, on 2 cores.
  echo "dev: installing moto from PyPI into .venv (once; under a minute)" >&2
  started=$SECONDS
  # Quiet: pip's errors still reach stderr, and a failed install stops the script here.
  "$top/.venv/bin/python" -m pip install --quiet --disable-pip-version-check --progress-bar off \
    -r "$top/dev/requirements.txt" >&2
  "$top/.venv/bin/python" -c "import moto.server, oauthlib"
  echo "dev: moto installed in $((SECONDS - started)) s" >&2
fi
export MOTO_PYTHON="$top/.venv/bin/python"
