#!/usr/bin/env bash
# Set up everything and run the whole test suite: lint (ruff) and types (mypy), unit
# tests, the store on SQLite and PostgreSQL (127.0.0.1:5432), end-to-end tests with a
# real Synapse, clamd, SMTP server and Chromium. Extra arguments go to pytest (e.g.
# ./test.sh -k widget).
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup --test
echo "test.sh: ruff (lint and format) and mypy (bridge, bots)"
.venv/bin/ruff check --quiet .
.venv/bin/ruff format --check --quiet .
.venv/bin/mypy --no-error-summary bridge bots
# The 25 slowest tests are listed at the end: the suite must stay under 30 minutes
# on 2 cores, and this says where its time goes.
exec .venv/bin/python -m pytest -q -ra --durations=25 "$@"
