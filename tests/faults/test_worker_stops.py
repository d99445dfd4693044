"""A worker killed or stopped in the middle of a fan-out, on webhooks and on email (aiosmtpd).

SIGKILL: the rows it held go back in line once its heartbeat expires (seconds, not the
lease, which is set far out of reach here), and only what was on the wire is sent twice:
at most the webhook concurrency, at most one mail per SMTP session. SIGTERM: it finishes
what is on the wire, records every outcome, hands the rest back and exits well within its
completion wait; nothing is sent twice. Each row of the report gives lost, duplicates and
the seconds from the fault until every recipient was sent to.
"""

from __future__ import annotations

import inspect
import re
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from channels.webhook import WebhookChannel
from sandbox.serve import serve_app
from sandbox.smtp import recording_smtp
from tests.faults.harness import fault_settings, scenario
from tests.faults.receivers import ChaosReceiver

pytestmark = pytest.mark.slow

WEBHOOKS = 400
MAILS = 2000
SMTP_SESSIONS = 8
WEBHOOK_CONCURRENCY = int(inspect.signature(WebhookChannel).parameters["concurrency"].default)
WITHIN_S = 30.0
JOB_TIMEOUT_S = 30.0


@dataclass
class Audience:
    channel: str
    addresses: list[str]
    received: Callable[[], Counter[str]]
    settings: dict[str, Any]
    in_flight: int  # what one worker can have on the wire at once


@asynccontextmanager
async def audience(channel: str) -> AsyncIterator[Audience]:
    """Webhook receivers (a quarter of a second each) or an SMTP server, and their addresses."""
    if channel == "webhook":
        receiver = ChaosReceiver(delay_s=0.25)
        async with serve_app(receiver.app()) as base:
            yield Audience(
                channel,
                [f"{base}/hook/{n}" for n in range(WEBHOOKS)],
                lambda: receiver.received(base),
                {"batch_size": 100, "max_jobs": 2},
                WEBHOOK_CONCURRENCY,
            )
        return
    with recording_smtp() as smtp:

        def received() -> Counter[str]:
            return Counter(rcpt for message in smtp.received for rcpt in message.rcpt_tos)

        yield Audience(
            channel,
            [f"user{n}@example.org" for n in range(MAILS)],
            received,
            smtp.settings(smtp_max_connections=SMTP_SESSIONS, batch_size=250, max_jobs=SMTP_SESSIONS),
            SMTP_SESSIONS,
        )


def crash_settings(database_url: str, target: Audience) -> Any:
    # A lease no test outlives: only the dead worker's heartbeat can give its rows back in time.
    return fault_settings(database_url, job_timeout_s=JOB_TIMEOUT_S, sending_lease_s=600, **target.settings)


@pytest.mark.parametrize("channel", ["webhook", "email"])
async def test_sigkill_mid_fanout_then_restart(
    channel: str, database_url: str, clean_database: None, tmp_path: Path
) -> None:
    async with audience(channel) as target:
        settings = crash_settings(database_url, target)
        async with scenario(
            f"{channel}: SIGKILL at 20 %, restart", settings, channel, tmp_path, target.received
        ) as run:
            await run.add_subscribers(target.addresses)
            run.start_workers(1)
            await run.post()
            await run.wait_received(len(target.addresses) // 5)
            run.workers[0].kill()
            assert run.total_received() < len(target.addresses) * 0.9, "killed too late to prove anything"
            run.mark_fault()
            run.start_workers(1)
            await run.settle(timeout_s=WITHIN_S + 30)
            row = await run.verdict(max_duplicates=target.in_flight)
    assert row.after_fault_s is not None and row.after_fault_s <= WITHIN_S, row


@pytest.mark.parametrize("channel", ["webhook", "email"])
async def test_sigterm_mid_fanout_finishes_what_is_on_the_wire(
    channel: str, database_url: str, clean_database: None, tmp_path: Path
) -> None:
    async with audience(channel) as target:
        settings = crash_settings(database_url, target)
        async with scenario(
            f"{channel}: SIGTERM at 20 %, restart", settings, channel, tmp_path, target.received
        ) as run:
            await run.add_subscribers(target.addresses)
            run.start_workers(1)
            await run.post()
            await run.wait_received(len(target.addresses) // 5)
            stopping = run.workers.pop()
            exit_s, status = await stopping.terminate(timeout_s=JOB_TIMEOUT_S + 15)
            assert status == 0, stopping.log_path.read_text()[-3000:]
            assert exit_s <= JOB_TIMEOUT_S, f"took {exit_s:.1f} s, more than the completion wait"
            assert run.total_received() < len(target.addresses), "stopped too late to prove anything"
            run.mark_fault()
            run.start_workers(1)
            await run.settle(timeout_s=WITHIN_S + 30)
            row = await run.verdict(max_duplicates=0)
    print(f"{channel}: the worker exited {exit_s:.2f} s after SIGTERM")
    assert re.search(r"[1-9]\d* handed back", stopping.log_path.read_text()), "the stop came mid-batch"
    assert row.after_fault_s is not None and row.after_fault_s <= WITHIN_S, row


async def test_two_workers_one_sigkilled_the_other_finishes(
    database_url: str, clean_database: None, tmp_path: Path
) -> None:
    async with audience("webhook") as target:
        settings = crash_settings(database_url, target)
        async with scenario("webhook: 2 workers, one SIGKILLed", settings, "webhook", tmp_path, target.received) as run:
            await run.add_subscribers(target.addresses)
            run.start_workers(2)
            await run.post()
            await run.wait_received(len(target.addresses) // 5)
            run.workers[0].kill()
            run.mark_fault()
            assert run.total_received() < len(target.addresses) * 0.9, "killed too late to prove anything"
            await run.settle(timeout_s=WITHIN_S + 30)
            row = await run.verdict(max_duplicates=target.in_flight)
    assert row.after_fault_s is not None and row.after_fault_s <= WITHIN_S, row
