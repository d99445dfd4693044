"""Live streams are capped per web process and per client address: an SSE flood cannot pin a server."""

from __future__ import annotations

from typing import Any

import httpx

from status_page.live import live_events


async def test_streams_are_capped_per_client_and_per_process(app: Any, client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).status_code in (200, 503)  # the app has started its hub
    hub = live_events(app)
    settings = app.state.settings
    held = [hub.connect("name:" + "x") for _ in range(settings.sse_max_streams_per_client)]
    queues = [h.__enter__() for h in held]
    try:
        # Another address holding its whole share does not count against the test client (127.0.0.1).
        own = [hub.connect("127.0.0.1") for _ in range(settings.sse_max_streams_per_client)]
        for h in own:
            h.__enter__()
        refused = await client.get("/events")
        assert refused.status_code == 429 and refused.json()["error"]["code"] == "rate_limited"
        assert refused.headers["retry-after"] == "30"
        for h in own:
            h.__exit__(None, None, None)
        everyone = [hub.connect(f"name:{n}") for n in range(settings.sse_max_streams)]
        for h in everyone:
            h.__enter__()
        busy = await client.get("/events")
        assert busy.status_code == 503 and busy.headers["retry-after"] == "5"
        for h in everyone:
            h.__exit__(None, None, None)
        assert hub.streams_of("127.0.0.1") == 0
    finally:
        for h in held:
            h.__exit__(None, None, None)
    assert len(queues) == settings.sse_max_streams_per_client
