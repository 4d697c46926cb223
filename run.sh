#!/usr/bin/env bash
# Set up everything and run Bürgerchat on the embedded default (SQLite):
# Synapse, the bridge with its bots, and clamd. Ctrl-C stops all of it.
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup
exec .venv/bin/buergerchat run "$@"
