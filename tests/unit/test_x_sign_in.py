"""X's three ways to sign in, chosen by which settings are given; half of one is a ConfigError naming the rest."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest

from broadcaster.config import Settings
from broadcaster.delivery.channel import ChannelContext
from broadcaster.errors import ConfigError, PermanentError
from channels._x_auth import OAuth1User, OAuth2User
from channels.x import XChannel, XSettings

OAUTH1 = {"x_consumer_key": "ck", "x_consumer_secret": "cs", "x_access_token": "at", "x_access_token_secret": "ats"}
OAUTH2 = {"x_client_id": "client", "x_refresh_token": "rt"}


def sign_in(**values: Any) -> object:
    config = XSettings.from_core(Settings(_env_file=None, **values))  # type: ignore[call-arg]
    assert config is not None
    return config.sign_in(ChannelContext().credentials)


def test_no_sign_in_setting_leaves_x_off() -> None:
    assert XSettings.from_core(Settings(_env_file=None, x_base_url="https://api.x.com")) is None  # type: ignore[call-arg]


def test_each_way_is_chosen_by_its_settings() -> None:
    assert sign_in(x_access_token="static") == "static"
    oauth1 = sign_in(**OAUTH1)
    assert oauth1 == OAuth1User("ck", "cs", "at", "ats")
    oauth2 = sign_in(**OAUTH2, x_client_secret="secret", x_refresh_margin_s=5)
    assert isinstance(oauth2, OAuth2User)
    assert (oauth2.client_id, oauth2.refresh_token, oauth2.client_secret, oauth2.refresh_margin_s) == (
        "client",
        "rt",
        "secret",
        5.0,
    )
    assert "rt" not in repr(oauth2) and "secret" not in repr(oauth2) and "cs" not in repr(oauth1)


@pytest.mark.parametrize(
    ("given", "missing"),
    [
        ({"x_consumer_key": "ck"}, ["CONSUMER_SECRET", "ACCESS_TOKEN", "ACCESS_TOKEN_SECRET"]),
        ({"x_access_token": "at", "x_access_token_secret": "ats"}, ["CONSUMER_KEY", "CONSUMER_SECRET"]),
        ({"x_client_id": "client"}, ["REFRESH_TOKEN"]),
        ({"x_refresh_token": "rt"}, ["CLIENT_ID"]),
        ({"x_client_secret": "secret"}, ["CLIENT_ID", "REFRESH_TOKEN"]),
    ],
)
def test_half_given_names_what_is_missing(given: dict[str, str], missing: list[str]) -> None:
    with pytest.raises(ConfigError) as caught:
        sign_in(**given)
    for name in missing:
        assert f"BROADCASTER_X_{name}" in str(caught.value)


def test_mixed_or_redundant_settings_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"mix OAuth 1\.0a and OAuth 2\.0"):
        sign_in(**OAUTH1, **OAUTH2)
    with pytest.raises(ConfigError, match="BROADCASTER_X_ACCESS_TOKEN or BROADCASTER_X_REFRESH_TOKEN"):
        sign_in(**OAUTH2, x_access_token="static")
    with pytest.raises(ConfigError, match="BROADCASTER_X_REFRESH_MARGIN_S"):
        sign_in(**OAUTH2, x_refresh_margin_s=-1)


async def test_a_confidential_client_refreshes_with_http_basic() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/2/oauth2/token":
            body = {"access_token": "fresh", "refresh_token": "rt2", "expires_in": 7200, "token_type": "bearer"}
            return httpx.Response(200, json=body)
        return httpx.Response(200, json={"data": {"username": "status"}})

    user = OAuth2User("client", "rt", "secret")
    channel = XChannel(user, base_url="https://api.x.example.test", transport=httpx.MockTransport(handler))
    assert await channel.check() == "authenticated as @status"
    await channel.aclose()
    token, me = seen
    assert token.headers["authorization"] == "Basic " + base64.b64encode(b"client:secret").decode()
    assert b"grant_type=refresh_token" in token.content and b"refresh_token=rt" in token.content
    assert me.headers["authorization"] == "Bearer fresh"


async def test_a_refresh_x_refuses_names_the_setting_to_renew() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        body = {"error": "invalid_request", "error_description": "Value passed for the token was invalid."}
        return httpx.Response(400, json=body)

    channel = XChannel(OAuth2User("client", "rt"), transport=httpx.MockTransport(handler))
    with pytest.raises(PermanentError, match="set a new BROADCASTER_X_REFRESH_TOKEN") as caught:
        await channel.check()
    await channel.aclose()
    assert caught.value.reason.startswith("credentials need attention: X refused the token refresh (400 invalid_req")
