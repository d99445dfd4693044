"""schemathesis against /api/openapi.json: no 500, no answer outside the documented schema.

The app runs in a real uvicorn server (its own thread and loop, lifespan on) over a real
database and Redis; every operation gets a bounded number of generated requests, valid and
invalid, authenticated with a bearer token. ``BROADCASTER_SCHEMATHESIS_EXAMPLES`` raises
the bound (default 25 per operation and mode, well under a minute).
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import delete

from broadcaster.db import make_engine, metadata
from broadcaster.domain.tokens import create_token
from broadcaster.runtime import Runtime
from sandbox.serve import free_port
from status_page.app import create_app
from tests.conftest import make_settings

EXAMPLES = int(os.environ.get("BROADCASTER_SCHEMATHESIS_EXAMPLES", "20"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]


async def _prepare(settings: Any) -> str:
    engine = make_engine(settings.database_url, pool=False)
    async with engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            await conn.execute(delete(table))
    await engine.dispose()
    runtime = Runtime.build(settings)
    try:
        async with runtime.engine.begin() as conn:
            token = await create_token(conn, "schemathesis")
        from tests.support.posting import post_body as post

        await post(runtime, {"title": "Seeded", "status": "investigating", "message": "Seeded."})
    finally:
        await runtime.aclose()
    return token


@pytest.fixture
def served(database_url: str) -> Iterator[tuple[str, str]]:
    settings = make_settings(
        database_url, smtp_host="127.0.0.1", smtp_port=free_port(), email_from="status@example.com"
    )
    token = asyncio.run(_prepare(settings))
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings), host="127.0.0.1", port=port, log_level="warning", lifespan="on", access_log=False
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the app did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", token
    finally:
        server.should_exit = True
        thread.join(timeout=20)


@pytest.mark.slow
def test_api_conforms_to_its_openapi_document(served: tuple[str, str]) -> None:
    base, token = served
    schema = schemathesis.openapi.from_url(f"{base}/api/openapi.json")
    headers = {"Authorization": f"Bearer {token}"}
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15
    started = time.monotonic()
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @hypothesis_settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                derandomize=True,
                suppress_health_check=list(HealthCheck),
                phases=[Phase.explicit, Phase.generate],
            )
            @given(case=operation.as_strategy(generation_mode=mode))
            def exercise(case: schemathesis.Case) -> None:
                case.call_and_validate(base_url=base, headers=headers, checks=CHECKS, timeout=10)

            try:
                exercise()
            except Unsatisfiable:  # nothing to make invalid: an operation without parameters or body
                assert mode is GenerationMode.NEGATIVE
            except Exception as exc:  # collect every operation's failure, then report them together
                failures.append(f"{operation.method.upper()} {operation.path} ({mode.value}): {exc}"[:1500])
    print(
        f"\nschemathesis: {len(operations)} operations x 2 modes x <= {EXAMPLES} examples "
        f"in {time.monotonic() - started:.1f} s, {len(failures)} failing"
    )
    assert not failures, "\n\n".join(failures)
