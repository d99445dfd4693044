"""Secrets handling: the signing key's strength, API tokens, passwords, signed single-purpose links."""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import secrets
from typing import Any
from urllib.parse import urlsplit

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer
from itsdangerous.encoding import base64_encode
from itsdangerous.signer import HMACAlgorithm, Signer

from broadcaster.errors import ConfigError

TOKEN_PREFIX = "bc_"
DEFAULT_SECRET_KEY = "dev-secret-change-me"
MIN_SECRET_KEY_BYTES = 32
_password_hasher = PasswordHasher()


def check_secret_key(secret_key: str, public_url: str) -> str | None:
    """Refuse a signing key anyone could guess, unless the page is only served to this machine.

    The key signs session cookies and every link we mail or text, so the default or a short
    key lets anyone forge an admin session. ``ConfigError`` naming ``BROADCASTER_SECRET_KEY``
    when the key is the default or under ``MIN_SECRET_KEY_BYTES``; when the public URL is
    loopback http (a laptop) the weak key is allowed and the warning to log is returned.
    ``None`` when the key is fine.
    """
    problem = None
    if secret_key == DEFAULT_SECRET_KEY:
        problem = "is the default"
    elif len(secret_key.encode()) < MIN_SECRET_KEY_BYTES:
        problem = f"is shorter than {MIN_SECRET_KEY_BYTES} bytes"
    if problem is None:
        return None
    advice = 'set it to a long random value, e.g. python -c "import secrets; print(secrets.token_urlsafe(48))"'
    if is_loopback_http(public_url):
        return f"BROADCASTER_SECRET_KEY {problem}: accepted only because {public_url} is loopback http; {advice}"
    raise ConfigError(
        f"BROADCASTER_SECRET_KEY {problem}, so anyone could sign a session cookie for {public_url}: {advice}"
    )


def check_sandbox(sandbox_url: str, public_url: str) -> None:
    """Refuse sandbox settings on anything but a laptop: the sandbox swallows every message.

    ``ConfigError`` naming ``BROADCASTER_SANDBOX_URL`` when it is set and the public URL is not
    loopback http, or when the sandbox itself is not on loopback.
    """
    if not sandbox_url:
        return
    if not is_loopback_http(public_url):
        raise ConfigError(
            f"BROADCASTER_SANDBOX_URL is set but BROADCASTER_PUBLIC_URL {public_url} is not loopback http: "
            "the sandbox catches every email, SMS and post, so it never runs behind a public page; unset it"
        )
    if not is_loopback_http(sandbox_url):
        raise ConfigError(f"BROADCASTER_SANDBOX_URL {sandbox_url} must be loopback http")


def is_loopback_http(url: str) -> bool:
    """``http://`` to ``localhost`` or a loopback address: a page nobody else can reach."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme != "http":
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def new_api_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """API tokens are long random strings, so one SHA-256 is enough (and lets us look them up)."""
    return hashlib.sha256(token.encode()).hexdigest()


def tokens_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def hash_password(password: str) -> str:
    return _password_hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _password_hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def hash_code(secret_key: str, code: str) -> str:
    """Short codes (SMS confirmation) hashed with the secret key so a leaked table reveals none."""
    return hmac.new(secret_key.encode(), code.encode(), hashlib.sha256).hexdigest()


def new_numeric_code(digits: int = 6) -> str:
    return f"{secrets.randbelow(10**digits):0{digits}d}"


def mask_url(url: str) -> str:
    """A URL that holds a secret (a chat or webhook URL), shown safely: scheme, host and first path segment.

    ``https://hooks.slack.com/services/T0/B0/XXXX`` -> ``https://hooks.slack.com/services/…``.
    """
    try:
        parts = urlsplit(url)
        name = f"[{parts.hostname}]" if parts.hostname and ":" in parts.hostname else parts.hostname
        host = f"{name}:{parts.port}" if parts.port else name
    except ValueError:
        return "…"
    if not parts.scheme or not host:
        return "…"
    first = parts.path.strip("/").split("/", 1)[0]
    return f"{parts.scheme}://{host}/{first}/…" if first else f"{parts.scheme}://{host}/…"


def new_webhook_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and 24 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


class _HMAC(HMACAlgorithm):
    """HMAC in one C call (``hmac.digest``): the same signature as itsdangerous' default."""

    def get_signature(self, key: bytes, value: bytes) -> bytes:
        return hmac.digest(key, value, self.digest_method)


class _LinkSigner(TimestampSigner):
    """itsdangerous' timestamp signer with its derived key computed once, not per signature."""

    _derived: bytes | None = None

    def derive_key(self, secret_key: str | bytes | None = None) -> bytes:
        if secret_key is not None:
            return super().derive_key(secret_key)
        if self._derived is None:
            self._derived = super().derive_key()
        return self._derived


class _LinkSerializer(URLSafeTimedSerializer):
    """itsdangerous' URL-safe timed tokens, made the same way at a third of the cost.

    A fan-out signs two links per recipient. Links carry short values (ids) that zlib never
    shrinks, so the zlib attempt on the way out is skipped (it changes nothing in the token;
    loading still accepts compressed tokens), the signer is made once, and signing uses the
    helpers above.
    """

    default_signer = _LinkSigner

    def __init__(self, secret_key: str, salt: str) -> None:
        super().__init__(secret_key, salt=salt, signer_kwargs={"algorithm": _HMAC(hashlib.sha1)})
        self._signer: Signer | None = None

    def dump_payload(self, obj: Any) -> bytes:
        return base64_encode(self.serializer.dumps(obj, **self.serializer_kwargs).encode("utf-8"))

    def make_signer(self, salt: str | bytes | None = None) -> Signer:
        if salt is not None:
            return super().make_signer(salt)
        if self._signer is None:
            self._signer = super().make_signer()
        return self._signer


class LinkSigner:
    """Signed, expiring, single-purpose tokens for links (confirm, unsubscribe, preferences).

    The purpose is the serializer's salt, so a token made for one purpose never verifies
    for another.
    """

    def __init__(self, secret_key: str) -> None:
        self._secret_key = secret_key
        self._serializers: dict[str, URLSafeTimedSerializer] = {}

    def _serializer(self, purpose: str) -> URLSafeTimedSerializer:
        serializer = self._serializers.get(purpose)
        if serializer is None:
            serializer = self._serializers[purpose] = _LinkSerializer(self._secret_key, f"broadcaster.{purpose}")
        return serializer

    def sign(self, purpose: str, value: Any) -> str:
        return self._serializer(purpose).dumps(value)

    def verify(self, purpose: str, token: str, max_age_s: int) -> Any | None:
        """The signed value, or None when the token is forged, expired or for another purpose."""
        try:
            return self._serializer(purpose).loads(token, max_age=max_age_s)
        except (SignatureExpired, BadSignature):
            return None
