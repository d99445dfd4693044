"""Security headers on every response: CSP, nosniff, referrer policy, no framing.

A pure ASGI middleware (no per-request objects): the header list is built once. A response
that sets its own ``Content-Security-Policy`` (or any of these headers) keeps it. The
public page's only inline script and its only inline stylesheet (the page's own CSS, inlined
for the first paint) are allowed by their hashes; every other style is a file of this origin
(the brand's accent and custom CSS are a hashed stylesheet, ``/assets/brand.<hash>.css``, and
its logo and favicon ``data:`` images), so no ``'unsafe-inline'``; pages under
``RELAXED_STYLE_PREFIXES`` (console, desk, login) may also use inline ``<style>``.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from broadcaster.config import Settings
from status_page.public.html import inline_css_hash, inline_js_hash

RELAXED_STYLE_PREFIXES = ("/console", "/desk", "/login")


def content_security_policy(
    script_hashes: tuple[str, ...] = (), style_hashes: tuple[str, ...] = (), inline_styles: bool = False
) -> str:
    scripts = " ".join(("'self'", *script_hashes))
    styles = "'self' 'unsafe-inline'" if inline_styles else " ".join(("'self'", *style_hashes))
    return (
        f"default-src 'self'; script-src {scripts}; style-src {styles}; img-src 'self' data:; "
        "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
        "frame-ancestors 'none'"
    )


def _headers(csp: str, hsts: bool) -> list[tuple[bytes, bytes]]:
    headers = [
        (b"content-security-policy", csp.encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"strict-origin-when-cross-origin"),
        (b"x-frame-options", b"DENY"),
    ]
    if hsts:
        headers.append((b"strict-transport-security", b"max-age=31536000"))
    return headers


def security_headers_for(settings: Settings, path: str) -> list[tuple[bytes, bytes]]:
    """The headers this middleware adds to a response for ``path`` (for paths served before it)."""
    templates = settings.templates_dir
    csp = content_security_policy(
        (inline_js_hash(templates),),
        (inline_css_hash(templates),),
        inline_styles=path.startswith(RELAXED_STYLE_PREFIXES),
    )
    return _headers(csp, settings.public_url.startswith("https://"))


class SecurityHeadersMiddleware:
    """Adds the security headers to each HTTP response that lacks them."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.strict = security_headers_for(settings, "/")
        self.relaxed = security_headers_for(settings, RELAXED_STYLE_PREFIXES[0])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = self.relaxed if scope["path"].startswith(RELAXED_STYLE_PREFIXES) else self.strict

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}
                headers.extend(h for h in extra if h[0] not in present)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
