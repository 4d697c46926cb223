#!/usr/bin/env bash
# Set up everything and run the whole test suite: unit tests, the store on SQLite and
# PostgreSQL (127.0.0.1:5432), end-to-end tests with a real Synapse, clamd, SMTP
# server and Chromium. Extra arguments go to pytest (e.g. ./test.sh -k widget).
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup --test
exec .venv/bin/python -m pytest -q -ra "$@"
