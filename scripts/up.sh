#!/usr/bin/env bash
# Run broadcaster locally: web + worker on SQLite and a local Redis, with a demo incident.
# With no BROADCASTER_SECRET_KEY set, `broadcaster up` makes a random one and keeps it in
# .broadcaster-secret next to the database (./broadcaster.db), reused on the next run.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bootstrap.sh
HOST="${HOST:-127.0.0.1}"
PORT="${PORT:-8000}"
export BROADCASTER_PUBLIC_URL="${BROADCASTER_PUBLIC_URL:-http://$HOST:$PORT}"
exec broadcaster up --host "$HOST" --port "$PORT"
