"""``broadcaster demo`` seeds a usable page once, with logins that work."""

from __future__ import annotations

from sqlalchemy import func, select

from broadcaster.db import components, incidents, users
from broadcaster.demo import seed
from broadcaster.domain.users import check_login


async def test_demo_seeds_once_with_working_logins(settings, runtime) -> None:
    first = await seed(settings)
    logins = [line for line in first if " login (shown once): " in line]
    assert len(logins) == 2
    second = await seed(settings)
    assert "demo data already present" in second
    assert not [line for line in second if "login" in line], "passwords are only ever shown once"
    async with runtime.engine.connect() as conn:
        for line in logins:
            username, password = line.split(": ", 1)[1].split(" / ")
            assert await check_login(conn, username, password) is not None
        assert (await conn.execute(select(func.count()).select_from(users))).scalar() == 2
        assert (await conn.execute(select(func.count()).select_from(incidents))).scalar() == 1
        assert (await conn.execute(select(func.count()).select_from(components))).scalar() >= 7
