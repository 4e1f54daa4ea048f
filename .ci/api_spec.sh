#!/usr/bin/env bash
# openapi.yaml against the function itself: validated as OpenAPI 3.1, then schemathesis (every
# check) against dev/run's local API in demo mode, with the demo user's Auth0 access token that
# dev/run writes to its token file. Needs .venv-scan (.ci/scan-requirements.txt); .ci/run installs it.
set -euo pipefail
cd "$(dirname "$0")/.."
scan="$PWD/.venv-scan/bin"
"$scan/openapi-spec-validator" openapi.yaml

out=$(mktemp)
RUST_LOG=warn dev/run --port 0 --no-spa >"$out" 2>"$out.err" &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; rm -f "$out" "$out.err"' EXIT
for _ in $(seq 600); do
  grep -q '^READY ' "$out" && break
  if ! kill -0 "$pid" 2>/dev/null; then cat "$out" "$out.err" >&2; echo "dev/run exited before it was ready" >&2; exit 1; fi
  sleep 1
done
grep -q '^READY ' "$out" || { cat "$out.err" >&2; echo "dev/run was not ready in 10 minutes" >&2; exit 1; }
ready=$(sed -n 's/^READY //p' "$out")
api=$(python3 -c 'import json, sys; print(json.loads(sys.argv[1])["api"])' "$ready")
# The demo user's token is in the file the ready screen names.
token=$(cat "$(python3 -c 'import json, sys; print(json.loads(sys.argv[1]).get("token_file", ""))' "$ready")")
[ -n "$token" ] || { echo "dev/run printed no demo token" >&2; exit 1; }
echo "schemathesis against $api (dev/run's demo), as the demo user"
# A fixed seed: a failure reproduces; --max-examples bounds the run (about a minute).
"$scan/st" run openapi.yaml --url "$api" -H "Authorization: Bearer $token" \
  --checks all --max-examples 100 --seed 25 --generation-database none --no-color |
  # Its ===-framed pytest-style closing line ("2 warnings in 4s") would read as a test run that
  # executed no test; the same text, unframed.
  sed -E 's/^=+ (.*[^= ]) =+$/-- \1 --/'
