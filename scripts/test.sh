#!/usr/bin/env bash
# Run the whole test suite on SQLite, then on PostgreSQL. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bootstrap.sh

# Browser tests drive Debian's chromium through Playwright.
if ! command -v chromium >/dev/null && [ "$(id -u)" = 0 ]; then
  echo "installing chromium" >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null || true
fi
# ...and inject axe-core (npm, pinned by tests/browser/package-lock.json) to check accessibility.
if [ ! -f tests/browser/node_modules/axe-core/axe.min.js ]; then
  if ! command -v npm >/dev/null && [ "$(id -u)" = 0 ]; then
    echo "installing npm" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm) >/dev/null || true
  fi
  echo "installing axe-core into tests/browser/node_modules" >&2
  npm ci --prefix tests/browser --no-audit --no-fund --silent || true
fi

pg_up() { python -c "
import asyncio, asyncpg, os, sys
async def main():
    c = await asyncpg.connect(os.environ.get('BROADCASTER_TEST_PG_DSN', 'postgresql://postgres@127.0.0.1:5432/test'), timeout=3)
    await c.close()
try: asyncio.run(main())
except Exception: sys.exit(1)
"; }
if ! pg_up && command -v pg_ctlcluster >/dev/null; then
  echo "starting PostgreSQL" >&2
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
  for _ in $(seq 50); do pg_up && break; sleep 0.2; done
fi

mkdir -p artifacts
echo "== lint and types =="
ruff check .
ruff format --check .
mypy
lint-imports --no-cache
# No copied code between modules (issue 16): pylint's duplicate-code alone, 6-line windows.
pylint --disable=all --enable=duplicate-code --min-similarity-lines=6 \
  --ignore-imports=yes --ignore-signatures=yes --ignore-comments=yes --ignore-docstrings=yes \
  --ignore-paths='^broadcaster/db/migrations/' broadcaster/ channels/ status_page/
if ! pg_up; then
  echo "PostgreSQL is not reachable on 127.0.0.1:5432: the PostgreSQL run cannot be done" >&2
  exit 1
fi
# The two databases run side by side (CI's budget is 12 minutes; one after the other takes ~16).
# Each run has its own database, queue names and event stream, so they do not see each other.
# Tests that do not depend on the database engine run once, the slow ones split between the two
# runs so both end near the same time: pure code, API conformance, provider misbehaviour and live
# streams on SQLite; worker signals and kills (where PostgreSQL's row locks matter most) on PostgreSQL;
# the processes that start `up` and the console's languages on SQLite; a database outage, the
# Statuspage import and the per-language messages on PostgreSQL.
SQLITE_SKIP=(
  --ignore=tests/faults/test_worker_stops.py
  --ignore=tests/integration/test_worker_killed.py
  --ignore=tests/integration/test_maintenance_worker_killed.py
  --deselect=tests/faults/test_scenarios.py::test_redis_restarted_mid_fanout
  --deselect=tests/faults/test_scenarios.py::test_database_unreachable_for_10_s
  --ignore=tests/integration/test_import_statuspage.py
  --ignore=tests/integration/test_message_languages.py
)
POSTGRES_SKIP=(
  -m "not browser"
  --ignore=tests/unit
  --ignore=tests/security/test_schemathesis.py
  --ignore=tests/faults/test_live_stream.py
  --deselect=tests/faults/test_scenarios.py::test_http_provider_misbehaves
  --deselect=tests/faults/test_scenarios.py::test_smtp_sink_down
  --ignore=tests/integration/test_mirror_processes.py
  --ignore=tests/integration/test_console_languages.py
  --ignore=tests/security/test_secret_key.py
  --ignore=tests/security/test_sandbox_settings.py
  --ignore=tests/integration/test_import_cachet.py
  --ignore=tests/integration/test_subscribers_csv.py
)
echo "== tests on SQLite and on PostgreSQL, side by side (logs: artifacts/tests-*.log) =="
BROADCASTER_TEST_DATABASE=sqlite python -m pytest -q -p no:cacheprovider --durations=25 "${SQLITE_SKIP[@]}" "$@" \
  >artifacts/tests-sqlite.log 2>&1 &
sqlite_pid=$!
BROADCASTER_TEST_DATABASE=postgres python -m pytest -q -p no:cacheprovider --durations=25 "${POSTGRES_SKIP[@]}" "$@" \
  >artifacts/tests-postgres.log 2>&1 &
postgres_pid=$!
sqlite_status=0; postgres_status=0
wait "$sqlite_pid" || sqlite_status=$?
wait "$postgres_pid" || postgres_status=$?
echo "== SQLite ==";     cat artifacts/tests-sqlite.log
echo "== PostgreSQL =="; cat artifacts/tests-postgres.log
if [ "$sqlite_status" != 0 ] || [ "$postgres_status" != 0 ]; then
  echo "tests failed: SQLite exit $sqlite_status, PostgreSQL exit $postgres_status" >&2
  exit 1
fi
