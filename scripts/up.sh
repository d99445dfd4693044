#!/usr/bin/env bash
# Run broadcaster locally: web + worker on SQLite and a local Redis, with a demo incident.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bootstrap.sh
exec broadcaster up --host "${HOST:-127.0.0.1}" --port "${PORT:-8000}"
