"""One contract, checked the same way for every registered channel (built-ins and installed plug-ins).

Each channel is built by its own ``from_settings`` from its settings class's ``example``, with
an ``httpx.MockTransport`` lent through ``ChannelContext.http_transport``; it must declare
its facts with the right types, render purely (the same message twice gives equal JSON, with
no request, socket, event loop or live event), refuse half-given settings with a
``ConfigError`` naming a variable, and fail only with ``DeliveryError``s when its provider
cannot be reached or refuses.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
from collections.abc import Callable, Mapping
from typing import Any

import httpx
import pytest

from broadcaster.config import ChannelSettings, Settings, env_name
from broadcaster.delivery.channel import (
    BroadcastChannel,
    Channel,
    ChannelContext,
    DirectMessage,
    DirectSender,
    Recipient,
    SubscriberChannel,
)
from broadcaster.delivery.registry import Registry, channel_classes
from broadcaster.errors import ConfigError, DeliveryError
from broadcaster.models import ChannelKind, LimitUnit
from tests.support.factories import make_message

CLASSES = channel_classes()
Handler = Callable[[httpx.Request], httpx.Response]

MESSAGES = {
    "first": make_message(),
    "follow-up": make_message(update_id="upd000000002", update_number=2, status="identified"),
    "resolved": make_message(update_id="upd000000003", update_number=3, status="resolved"),
    "maintenance": make_message(kind="maintenance", status="scheduled", impact="maintenance", components=()),
    "drill": make_message(drill=True),
}
ADDRESSES = {
    "email": "user@example.test",
    "sms": "+15551230001",
    "webhook": "https://hook.example.test/in",
    "slack": "https://hooks.slack.example.test/services/T0/B0/secret",
    "teams": "https://flow.example.test/workflows/1/triggers/manual/paths/invoke?sig=s",
    "discord": "https://discord.example.test/api/webhooks/1/token",
    "google_chat": "https://chat.example.test/v1/spaces/S/messages?key=k&token=t",
}


def _raise(exc: type[httpx.TransportError]) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc("provider down", request=request)

    return handler


FAILURES: dict[str, Handler] = {
    "refused": _raise(httpx.ConnectError),
    "timeout": _raise(httpx.ReadTimeout),
    "500": lambda request: httpx.Response(500, text="internal error"),
    "429": lambda request: httpx.Response(429, headers={"retry-after": "7"}, json={"error": "slow down"}),
    "401": lambda request: httpx.Response(401, json={"error": "invalid token"}),
    "404": lambda request: httpx.Response(404, json={"error": "not found"}),
    "not json": lambda request: httpx.Response(502, text="<html>bad gateway</html>"),
}

by_name = pytest.mark.parametrize("cls", list(CLASSES.values()), ids=list(CLASSES))


@pytest.fixture(autouse=True)
def no_broadcaster_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the example configures a channel here, never the shell's ``BROADCASTER_*`` variables."""
    import os

    for name in [n for n in os.environ if n.upper().startswith("BROADCASTER_")]:
        monkeypatch.delenv(name)


def settings_of(values: Mapping[str, Any], **core: Any) -> Settings:
    # An empty database: the mirror (which renders the page) finds nothing, and no file is touched.
    core = {"database_url": "sqlite+aiosqlite:///:memory:", **core}
    return Settings(_env_file=None, public_url="https://status.example.test", **{**values, **core})  # type: ignore[call-arg]


def build(cls: type[Channel], handler: Handler, context: ChannelContext | None = None) -> Channel:
    context = context or ChannelContext()
    context.http_transport = httpx.MockTransport(handler)
    channel = cls.from_settings(settings_of(cls.settings_class.example, webhook_allow_private=True), context)
    assert channel is not None, f"{cls.name}: its settings class's example does not configure it"
    return channel


def not_called(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"render made a request: {request.method} {request.url}")


# -- facts -----------------------------------------------------------------------------------


@by_name
def test_facts_are_declared_with_their_types(cls: type[Channel]) -> None:
    assert isinstance(cls.name, str) and re.fullmatch(r"[a-z][a-z0-9_]{0,31}", cls.name), cls.name
    assert CLASSES[cls.name] is cls
    assert isinstance(cls.kind, ChannelKind)
    assert isinstance(cls.title, str) and cls.title.strip()
    assert cls.limit is None or (type(cls.limit) is int and cls.limit > 0)
    assert cls.limit_unit is None or isinstance(cls.limit_unit, LimitUnit)
    assert (cls.limit is None) == (cls.limit_unit is None), "a limit says how it counts, and only a limit does"
    assert type(cls.notifies) is bool
    assert type(cls.publishes_drills) is bool


@by_name
def test_settings_class_is_the_channels_own(cls: type[Channel]) -> None:
    settings_class = cls.settings_class
    assert isinstance(settings_class, type) and issubclass(settings_class, ChannelSettings)
    fields = set(settings_class.model_fields)
    assert not fields & set(Settings.model_fields), "a channel setting named like a core one never reaches it"
    assert set(settings_class.required) <= fields
    assert set(settings_class.example) <= fields
    assert set(settings_class.required) <= set(settings_class.example), "the example must configure the channel"


def test_no_two_channels_read_the_same_variable() -> None:
    seen: dict[str, str] = {}
    for name, cls in CLASSES.items():
        if cls.settings_class is ChannelSettings:
            continue
        for variable in cls.settings_class.env_names():
            assert variable not in seen, f"{variable} is read by {seen[variable]} and {name}"
            seen[variable] = name


@by_name
async def test_built_from_its_example_it_is_what_its_kind_says(cls: type[Channel]) -> None:
    channel = build(cls, not_called)
    try:
        assert isinstance(channel, cls) and isinstance(channel, Channel)
        expected = BroadcastChannel if cls.kind is ChannelKind.BROADCAST else SubscriberChannel
        assert isinstance(channel, expected)
        for secret in _secrets(cls.settings_class.example):
            assert secret not in repr(channel)
    finally:
        await channel.aclose()


def _secrets(values: Mapping[str, Any]) -> list[str]:
    return [str(v) for k, v in values.items() if k.endswith(("token", "password", "key")) and len(str(v)) > 3]


# -- settings --------------------------------------------------------------------------------


async def test_a_variable_no_channel_reads_is_named_in_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    registry = Registry.build(settings_of({"smtp_hots": "mail.example.test", "smtp_port": 587}))
    await registry.aclose()
    assert "email" not in registry.enabled
    assert "no channel reads BROADCASTER_SMTP_HOTS" in caplog.text
    assert "BROADCASTER_SMTP_PORT" not in caplog.text


@by_name
async def test_without_settings_it_is_disabled_unless_it_needs_none(cls: type[Channel]) -> None:
    channel = cls.from_settings(settings_of({}), ChannelContext())
    if cls.settings_class.required:
        assert channel is None
    else:
        assert channel is not None
        await channel.aclose()


@by_name
def test_half_configured_is_a_config_error_naming_a_missing_variable(cls: type[Channel]) -> None:
    required = cls.settings_class.required
    if len(required) < 2:
        pytest.skip(f"{cls.name} is enabled by {len(required)} setting(s): it cannot be half configured")
    first, *missing = required
    with pytest.raises(ConfigError) as caught:
        cls.from_settings(settings_of({first: cls.settings_class.example[first]}), ChannelContext())
    assert any(env_name(name) in str(caught.value) for name in missing), str(caught.value)


# -- render ----------------------------------------------------------------------------------


@by_name
@pytest.mark.parametrize("case", list(MESSAGES))
def test_render_is_pure(cls: type[Channel], case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    events: list[str] = []

    async def publish_event(kind: str, data: Mapping[str, Any]) -> None:
        events.append(kind)

    def no_socket(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("render opened a connection")

    channel = build(cls, not_called, ChannelContext(publish_event=publish_event))
    try:
        monkeypatch.setattr(socket.socket, "connect", no_socket)
        monkeypatch.setattr(socket, "getaddrinfo", no_socket)
        # A plain function, no event loop running: a render that awaited or scheduled anything fails here.
        first = channel.render(MESSAGES[case])
        second = channel.render(MESSAGES[case])
        monkeypatch.undo()
        assert first == second
        assert json.loads(json.dumps(first)) == first, "a rendition is JSON (the preview shows it verbatim)"
        assert not events
    finally:
        asyncio.run(channel.aclose())


# -- failures --------------------------------------------------------------------------------


@by_name
@pytest.mark.parametrize("failure", list(FAILURES))
async def test_a_failing_provider_gives_delivery_errors(cls: type[Channel], failure: str) -> None:
    async def bus_down(kind: str, data: Mapping[str, Any]) -> None:
        raise ConnectionError("event bus down")

    channel = build(cls, FAILURES[failure], ChannelContext(publish_event=bus_down))
    message = MESSAGES["first"]
    try:
        rendition = channel.render(message)
        if isinstance(channel, BroadcastChannel):
            with pytest.raises(DeliveryError):
                await channel.publish(message, rendition, {})
        else:
            assert isinstance(channel, SubscriberChannel)
            recipients = [
                Recipient(
                    delivery_id=n,
                    subscriber_id=f"sub{n}",
                    address=ADDRESSES.get(cls.name, "x"),
                    unsubscribe_url="https://status.example.test/u",
                    secret="whsec_" + "A" * 32,
                )
                for n in (1, 2)
            ]
            try:
                outcomes = await channel.deliver(message, rendition, recipients, {})
            except DeliveryError:
                pass
            else:
                assert set(outcomes) <= {1, 2}
                assert all(isinstance(outcome, DeliveryError) for outcome in outcomes.values()), outcomes
        if isinstance(channel, DirectSender):
            with pytest.raises(DeliveryError):
                await channel.send_direct(ADDRESSES.get(cls.name, "x"), DirectMessage(subject="Hi", text="Hello"))
    finally:
        await channel.aclose()
