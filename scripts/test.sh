#!/usr/bin/env bash
# The project's checks: installs what they need, then lint, format, types and every test.
# Extra arguments go to pytest (e.g. scripts/test.sh tests/volctl -x).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
bin=.venv/bin
"$bin/ruff" check .
"$bin/ruff" format --check .
"$bin/mypy"
exec "$bin/pytest" "$@"
