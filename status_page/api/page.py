"""The page itself (``/api/v1/page``): its brand, and how to reach us now.

- ``GET /api/v1/page`` (viewer): name, description, accent, links, custom CSS, logo and favicon
  (their served URLs), and the contact channels.
- ``PATCH /api/v1/page`` (admin): change the brand; audited, then every process re-renders.
- ``PUT /api/v1/page/contact-channels`` (commander): replace the contact channels, through the
  one posting service (audited there; ``notify`` posts the change as an update).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from broadcaster import posting
from broadcaster.actors import Actor
from broadcaster.domain import audit, contact_channels, page_brand
from broadcaster.domain.contact_channels import ContactChannelsIn
from broadcaster.domain.page_brand import Brand, BrandPatch
from broadcaster.jobs import page_copies
from broadcaster.models import Role
from broadcaster.post_requests import ContactNotice, PostResult
from broadcaster.render import iso
from broadcaster.runtime import Runtime
from broadcaster.schemas import validate
from status_page.http import read_json, require_token, runtime, token_actor

# Room for the largest brand (CSS, logo and favicon as base64) and a bit more, so that an
# over-limit field is answered 422 naming it rather than 413 for the whole body.
PAGE_BODY_MAX_BYTES = 512 * 1024


def _image_json(brand: Brand, which: str, public_url: str) -> dict[str, Any] | None:
    image = getattr(brand, which)
    url = brand.image_url(which)
    if image is None or url is None:
        return None
    return {"content_type": image.content_type, "bytes": len(image.body), "url": f"{public_url}{url}"}


def page_json(rt: Runtime, brand: Brand, channels: list[contact_channels.ContactChannel]) -> dict[str, Any]:
    """The answer of ``GET /api/v1/page``."""
    public_url = rt.settings.public_url
    sheet = brand.stylesheet_url
    return {
        "name": brand.page_name(rt.settings.page_name),
        "description": brand.description,
        "accent_color": brand.accent_color,
        "links": [dict(link) for link in brand.links],
        "custom_css": brand.custom_css,
        "stylesheet_url": f"{public_url}{sheet}" if sheet else None,
        "logo": _image_json(brand, "logo", public_url),
        "favicon": _image_json(brand, "favicon", public_url),
        "contact_channels": [contact_channels.as_json(c) for c in channels],
        "contact_banner": contact_channels.needs_banner(channels),
        "updated_at": iso(brand.updated_at),
    }


async def current(rt: Runtime) -> dict[str, Any]:
    async with rt.engine.connect() as conn:
        return page_json(rt, await page_brand.load_brand(conn), await contact_channels.load_channels(conn))


async def save(rt: Runtime, patch: BrandPatch, actor: Actor) -> Brand:
    """Store ``patch`` and its audit row in one transaction, then tell every process."""
    async with rt.engine.begin() as conn:
        brand, sent = await page_brand.save_brand(conn, patch)
        await audit.record(conn, str(actor), "page.brand", target="page", fields=sent)
    await page_copies.page_changed(rt, "page", {"changed": "brand"})
    return brand


async def post_contact_channels(rt: Runtime, data: ContactChannelsIn, actor: Actor) -> PostResult:
    """Replace the contact channels through the posting service (audited; ``notify`` posts an update)."""
    return await posting.post(rt, ContactNotice(data), actor=actor)


async def get_page(request: Request) -> Response:
    await require_token(request, Role.VIEWER)
    return JSONResponse(await current(runtime(request)))


async def patch_page(request: Request) -> Response:
    token = await require_token(request, Role.ADMIN)
    patch = validate(BrandPatch, await read_json(request, PAGE_BODY_MAX_BYTES))
    rt = runtime(request)
    await save(rt, patch, token_actor(token))
    return JSONResponse(await current(rt))


async def put_contact_channels(request: Request) -> Response:
    token = await require_token(request, Role.COMMANDER)
    data = validate(ContactChannelsIn, await read_json(request))
    rt = runtime(request)
    result = await post_contact_channels(rt, data, token_actor(token))
    body = await current(rt)
    return JSONResponse(
        {"contact_channels": body["contact_channels"], "contact_banner": body["contact_banner"], "update": result.ref}
    )


routes = [
    Route("/api/v1/page", get_page, methods=["GET"]),
    Route("/api/v1/page", patch_page, methods=["PATCH"]),
    Route("/api/v1/page/contact-channels", put_contact_channels, methods=["PUT"]),
]
