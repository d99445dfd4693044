#!/usr/bin/env bash
# Build the wheel, install it in a fresh venv and run it from an empty directory, with no
# source tree on sys.path: migrate, demo, serve, then fetch the pages that need templates,
# static assets and migrations from inside the wheel. Exits non-zero on the first failure.
#   bash scripts/check_wheel.sh            # needs Redis on 127.0.0.1:6379 and the package registry
# Environment: PYTHON (default python3), CHECK_PORT (default 8765), CHECK_REDIS_URL.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PYTHON="${PYTHON:-python3}"
PORT="${CHECK_PORT:-8765}"
WORK=$(mktemp -d /tmp/broadcaster-wheelcheck.XXXXXX)
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  if [ -x "$WORK/venv/bin/python" ] && [ -n "${BROADCASTER_QUEUE_NAME:-}" ]; then
    # No worker runs here: drop the demo's queued jobs and this run's keys.
    "$WORK/venv/bin/python" - <<'PY' || true
import os, redis
r = redis.Redis.from_url(os.environ["BROADCASTER_REDIS_URL"])
queue = os.environ["BROADCASTER_QUEUE_NAME"]
jobs = [j.decode() for j in r.zrange(queue, 0, -1)]
keys = [f"arq:{kind}:{j}" for j in jobs for kind in ("job", "retry", "result", "in-progress")]
r.delete(queue, *keys, *r.scan_iter(f"{queue}:*"))
PY
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'echo "FAIL: line $LINENO: $BASH_COMMAND" >&2' ERR
fail() { echo "FAIL: $*" >&2; [ -f "$WORK/serve.log" ] && tail -n 30 "$WORK/serve.log" >&2; exit 1; }
step() { echo "== $*"; }

step "build the wheel from a copy of the sources"
# A copy, so that a stale build/ or egg-info in the checkout cannot leak files into the wheel.
mkdir -p "$WORK/src" "$ROOT/dist"
tar -C "$ROOT" --exclude='__pycache__' --exclude='*.pyc' -cf - pyproject.toml README.md broadcaster channels status_page \
  | tar -C "$WORK/src" -xf -
if "$PYTHON" -c "import build" 2>/dev/null; then
  "$PYTHON" -m build --wheel --outdir "$WORK/dist" "$WORK/src" >"$WORK/build.log" 2>&1 || { cat "$WORK/build.log"; fail "build"; }
else
  "$PYTHON" -m pip wheel --quiet --no-deps -w "$WORK/dist" "$WORK/src" >"$WORK/build.log" 2>&1 \
    || { cat "$WORK/build.log"; fail "pip wheel"; }
fi
grep -i "warning" "$WORK/build.log" | grep -iv "^$" | sed 's/^/  build: /' || true
WHEEL=$(ls "$WORK"/dist/broadcaster-*.whl)
rm -f "$ROOT"/dist/broadcaster-*.whl && cp "$WHEEL" "$ROOT/dist/"
echo "  $(basename "$WHEEL"): $(du -k "$WHEEL" | cut -f1) kB"

step "the wheel holds the package data (templates, migrations, assets, sample data) and no tests"
"$PYTHON" - "$WHEEL" "$ROOT" <<'PY' || fail "wheel contents"
import sys, zipfile
from pathlib import Path

wheel, root = sys.argv[1], Path(sys.argv[2])
names = set(zipfile.ZipFile(wheel).namelist())
expected = {str(p.relative_to(root)) for d in ("broadcaster", "channels", "status_page")
            for p in (root / d).rglob("*") if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}
missing = sorted(expected - names)
stray = sorted(n for n in names if n.startswith(("tests/", "bench/", "templates/")))
counts = {prefix: sum(n.startswith(prefix) for n in names) for prefix in (
    "broadcaster/templates/", "broadcaster/db/migrations/", "status_page/console/static/", "broadcaster/crisis/data/")}
print("  " + ", ".join(f"{k}: {v} files" for k, v in counts.items()))
if missing or stray:
    print("  in the source tree but not in the wheel:", missing, "\n  should not be in the wheel:", stray)
    sys.exit(1)
PY

step "install into a fresh venv"
"$PYTHON" -m venv "$WORK/venv"
"$WORK/venv/bin/pip" install --quiet --disable-pip-version-check "$WHEEL" >"$WORK/install.log" 2>&1 \
  || { cat "$WORK/install.log"; fail "pip install"; }
BIN="$WORK/venv/bin"

mkdir -p "$WORK/run" && cd "$WORK/run"  # empty: nothing of the checkout is reachable from here
unset PYTHONPATH VIRTUAL_ENV
for name in $(env | grep -o '^BROADCASTER_[A-Z0-9_]*' || true); do echo "  note: ignoring $name from the shell"; unset "$name"; done
export BROADCASTER_DATABASE_URL="sqlite+aiosqlite:///$WORK/run/broadcaster.db"
# Database 14 of the local Redis (the tests use 0), emptied of this run's keys on exit.
export BROADCASTER_REDIS_URL="${CHECK_REDIS_URL:-redis://127.0.0.1:6379/14}"
# A queue of its own, so that no other worker on this Redis picks up the demo's jobs.
export BROADCASTER_QUEUE_NAME="wheelcheck-$$"
export BROADCASTER_PUBLIC_URL="http://127.0.0.1:$PORT"
export BROADCASTER_SMTP_HOST=127.0.0.1 BROADCASTER_SMTP_PORT=1 BROADCASTER_EMAIL_FROM=status@example.com

where=$("$BIN/python" -c "import broadcaster, channels, status_page; print(broadcaster.__file__, channels.__file__, status_page.__file__)")
case "$where" in *"$ROOT"*) fail "imported from the source tree: $where";; esac
"$BIN/python" -c "import sys; assert not any(p.startswith('$ROOT') for p in sys.path), sys.path" || fail "sys.path"
echo "  imported from ${where%% *}"

step "broadcaster migrate && broadcaster demo"
"$BIN/broadcaster" migrate || fail "migrate"
"$BIN/broadcaster" demo >"$WORK/demo.out" || fail "demo"
TOKEN=$(tail -n 1 "$WORK/demo.out")
COMMANDER_PW=$(sed -n 's/^commander login (shown once): commander \/ //p' "$WORK/demo.out")
AGENT_PW=$(sed -n 's/^agent login (shown once): agent \/ //p' "$WORK/demo.out")
[ -n "$TOKEN" ] && [ -n "$COMMANDER_PW" ] && [ -n "$AGENT_PW" ] || { cat "$WORK/demo.out"; fail "demo output"; }
sed 's/^/  /; s/\/ .*/\/ …/' "$WORK/demo.out" | grep -v "^  $TOKEN$"

step "broadcaster serve --port $PORT"
"$BIN/broadcaster" serve --host 127.0.0.1 --port "$PORT" >"$WORK/serve.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 100); do
  curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
  kill -0 "$SERVER_PID" 2>/dev/null || fail "serve exited"
  sleep 0.1
done
URL="http://127.0.0.1:$PORT"

# fetch NAME EXPECTED_STATUS MARKER CURL_ARGS...: the status, and a string only the template writes.
fetch() {
  local name=$1 want=$2 marker=$3; shift 3
  local body="$WORK/body" status
  status=$(curl -sS -o "$body" -w '%{http_code}' "$@") || fail "$name: curl"
  [ "$status" = "$want" ] || { head -c 400 "$body" >&2; echo >&2; fail "$name: HTTP $status, expected $want"; }
  if [ -n "$marker" ]; then grep -q -- "$marker" "$body" || { head -c 400 "$body" >&2; fail "$name: no '$marker'"; }; fi
  echo "  $name → $status, $(wc -c <"$body") bytes${marker:+, has '$marker'}"
}
JAR="$WORK/cookies" AGENT_JAR="$WORK/agent-cookies"

fetch "GET /" 200 "Elevated error rates on the API" "$URL/"
fetch "GET the page's hashed status.css" 200 "" "$URL$(grep -o '/assets/status\.[0-9a-f]*\.css' "$WORK/body" | head -1)"
# The console's login page (template console/login.html) is served at /login; /console and /desk send you there.
fetch "GET /login" 200 'name="csrf_token"' "$URL/login"
fetch "GET /console (anonymous)" 303 "" -H 'accept: text/html' "$URL/console"
fetch "GET /desk (anonymous)" 303 "" -H 'accept: text/html' "$URL/desk"

login() {  # login JAR USER PASSWORD NEXT
  local csrf
  curl -sS -b "$1" -c "$1" "$URL/login" -o "$WORK/login.html"
  csrf=$(sed -n 's/.*name="csrf_token" value="\([^"]*\)".*/\1/p' "$WORK/login.html" | head -1)
  [ -n "$csrf" ] || fail "no CSRF token on /login"
  fetch "POST /login ($2)" 303 "" -b "$1" -c "$1" --data-urlencode "csrf_token=$csrf" \
    --data-urlencode "username=$2" --data-urlencode "password=$3" --data-urlencode "next=$4" "$URL/login"
}
login "$JAR" commander "$COMMANDER_PW" /console
fetch "GET /console (commander)" 200 "Elevated error rates on the API" -b "$JAR" -H 'accept: text/html' "$URL/console"
fetch "GET /console/static/console.css" 200 "" -b "$JAR" "$URL/console/static/console.css"
login "$AGENT_JAR" agent "$AGENT_PW" /desk
fetch "GET /desk (agent)" 200 "No data has been lost" -b "$AGENT_JAR" -H 'accept: text/html' "$URL/desk"

fetch "POST /api/v1/preview" 200 '"email"' -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' \
  -d '{"title": "Wheel check", "status": "investigating", "impact": "minor", "message": "Checking **the wheel**."}' \
  "$URL/api/v1/preview"
"$BIN/python" - "$WORK/body" <<'PY' || fail "email preview"
import json, sys

preview = json.load(open(sys.argv[1]))
email = preview["email"]
text = json.dumps(email)
assert "Wheel check" in text and "<html" in text.lower() and "<strong>the wheel</strong>" in text, email
print(f"  email preview rendered from its templates: fields {sorted(email)}; channels {sorted(preview)}")
PY

grep -iE "traceback|error" "$WORK/serve.log" && fail "errors in the server log" || true
echo "OK: the wheel serves its pages from an empty directory"
