#!/usr/bin/env bash
# Shared set-up for scripts/up.sh and scripts/test.sh: a virtualenv with the project, and a Redis.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
# shellcheck disable=SC1091
. .venv/bin/activate
if ! python -c "import broadcaster, pytest, aiosmtpd" 2>/dev/null || [ pyproject.toml -nt .venv/.installed ]; then
  echo "installing broadcaster and its dependencies into .venv (log: .venv/install.log)" >&2
  if ! { python -m pip install --quiet --upgrade pip && python -m pip install --quiet -e ".[dev]"; } \
      >.venv/install.log 2>&1; then
    tail -n 40 .venv/install.log >&2
    exit 1
  fi
  touch .venv/.installed
fi

redis_up() { python - <<'PY'
import socket, sys
s = socket.socket(); s.settimeout(1)
try:
    s.connect(("127.0.0.1", 6379)); s.sendall(b"PING\r\n"); sys.exit(0 if s.recv(16).startswith(b"+PONG") else 1)
except OSError:
    sys.exit(1)
PY
}
if ! redis_up; then
  if ! command -v redis-server >/dev/null; then
    echo "installing redis-server" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server) >/dev/null
  fi
  echo "starting redis-server on 127.0.0.1:6379" >&2
  mkdir -p /tmp/broadcaster-redis
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir /tmp/broadcaster-redis --logfile /tmp/broadcaster-redis/redis.log
  for _ in $(seq 50); do redis_up && break; sleep 0.1; done
fi
