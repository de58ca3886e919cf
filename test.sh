#!/usr/bin/env bash
# Set up (first run only) and run the whole CPU test suite:  bash test.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/bootstrap.sh dev
exec .venv/bin/python -m pytest -q "$@"
