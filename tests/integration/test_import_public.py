"""``import statuspage --from-public``: a second broadcaster instance (its own database) serves ``/api/v2`` on
loopback, and this one copies its components and incidents from that JSON alone."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from asgi_lifespan import LifespanManager

from broadcaster.db.migrate import upgrade_async
from broadcaster.domain.components import create_component
from broadcaster.runtime import Runtime
from broadcaster.schemas import ComponentIn
from sandbox.serve import serve_app
from status_page.app import create_app
from tests.conftest import make_settings
from tests.integration.test_import_statuspage import report_counts
from tests.support.importing import run_cli, table_counts
from tests.support.posting import post_body

PATHS = ("components", "incidents", "scheduled-maintenances")


def at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def shape(components: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return sorted((c["name"], c["status"], c["group"], c["position"]) for c in components)


async def seed_other_page(rt: Runtime) -> None:
    """Three components (two in a group), two incidents with follow-ups, one maintenance: posted the normal way."""
    async with rt.engine.begin() as conn:
        api = await create_component(conn, ComponentIn(name="API", group="Backend"))
        db = await create_component(conn, ComponentIn(name="Database", group="Backend"))
        web = await create_component(conn, ComponentIn(name="Website"))
    opening = {"title": "API errors", "status": "investigating", "message": "Looking."}
    first, _ = await post_body(rt, {**opening, "components": {api["id"]: "major_outage"}})
    await post_body(rt, {"status": "identified", "message": "Found it."}, first.incident_id)
    await post_body(rt, {"status": "resolved", "message": "**Fixed**."}, first.incident_id)
    slow = {"title": "Slow pages", "status": "monitoring", "message": "Watching."}
    await post_body(rt, {**slow, "components": {web["id"]: "degraded_performance"}})
    await post_body(
        rt,
        {
            "title": "Database upgrade",
            "kind": "maintenance",
            "status": "scheduled",
            "message": "Upgrading on Sunday.",
            "scheduled_for": "2031-01-05T02:00:00Z",
            "scheduled_until": "2031-01-05T04:00:00Z",
            "components": {db["id"]: "operational"},
        },
    )


async def test_from_public_copies_another_instances_components_and_incidents(
    settings: Any, runtime: Runtime, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    other_url = f"sqlite+aiosqlite:///{tmp_path / 'other.db'}"
    await upgrade_async(other_url)
    other = make_settings(other_url, page_name="Other Status", page_id="otherpage01")
    other_rt = Runtime.build(other)
    try:
        await seed_other_page(other_rt)
        app = create_app(other, other_rt)
        async with LifespanManager(app), serve_app(app) as base:
            theirs = {p: await _get(base, p) for p in PATHS}
            result = await run_cli(settings, "import", "statuspage", "--from-public", base)
            again = await run_cli(settings, "import", "statuspage", "--from-public", base)
    finally:
        await other_rt.aclose()
    assert result.returncode == 0, result.stderr
    counts = report_counts(result.stdout)
    assert counts["groups"][0] == 1 and counts["components"][0] == 3
    assert counts["incidents"][0] == 2 and counts["maintenances"][0] == 1 and counts["updates"][0] == 5
    assert counts["page"] == (1, 0, 0, 0)
    assert {k: c[0] for k, c in report_counts(again.stdout).items()} == dict.fromkeys(counts, 0)

    ours = {p: (await client.get(f"/api/v2/{p}.json")).json() for p in PATHS}
    assert ours["components"]["page"]["name"] == "Other Status"  # the page's name came along
    assert shape(ours["components"]["components"]) == shape(theirs["components"]["components"])
    for key, name in (("incidents", "incidents"), ("scheduled-maintenances", "scheduled_maintenances")):
        mine = {i["name"]: i for i in ours[key][name]}
        assert sorted(mine) == sorted(i["name"] for i in theirs[key][name])
        for source in theirs[key][name]:
            copy = mine[source["name"]]
            assert (copy["status"], copy["impact"], at(copy["created_at"])) == (
                source["status"],
                source["impact"],
                at(source["created_at"]),
            )
            assert [(u["status"], u["body"], at(u["created_at"])) for u in copy["incident_updates"]] == [
                (u["status"], u["body"], at(u["created_at"])) for u in source["incident_updates"]
            ]
            assert sorted(c["name"] for c in copy["components"]) == sorted(c["name"] for c in source["components"])
    rows = await table_counts(runtime.engine)
    assert (rows["outbox"], rows["deliveries"], rows["subscribers"]) == (0, 0, 0)


async def _get(base: str, path: str) -> Any:
    async with httpx.AsyncClient(base_url=base) as client:
        return (await client.get(f"/api/v2/{path}.json")).json()
