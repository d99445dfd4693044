"""Provider answers that every HTTP channel reads alike."""

from __future__ import annotations

import httpx
import pytest

from broadcaster.errors import PermanentError, RetryableError
from channels import freshdesk, sms, zendesk


@pytest.mark.parametrize("translate", [zendesk.translate_error, freshdesk.translate_error])
def test_knowledge_base_request_timeout_is_retried(translate) -> None:  # type: ignore[no-untyped-def]
    error = translate(httpx.Response(408, text="timeout"), "PUT /x")
    assert isinstance(error, RetryableError)


def test_twilio_bad_credentials_say_so() -> None:
    response = httpx.Response(401, json={"code": 20003, "message": "Authenticate", "status": 401})
    with pytest.raises(PermanentError, match=r"^credentials need attention") as caught:
        sms.translate_response(response)
    assert not caught.value.suppress_recipient


def test_twilio_success_with_an_odd_body_is_still_sent() -> None:
    assert sms.translate_response(httpx.Response(201, json=["unexpected"])).provider_id is None


def test_twilio_dead_number_is_suppressed() -> None:
    response = httpx.Response(400, json={"code": 21610, "message": "unsubscribed recipient", "status": 400})
    with pytest.raises(PermanentError) as caught:
        sms.translate_response(response)
    assert caught.value.suppress_recipient
