"""The page's brand: name, description, logo, favicon, accent colour, links and custom CSS.

One row (``page_brand``). ``PATCH /api/v1/page``, the console and the playbook YAML import all
go through ``save_brand`` with a ``BrandPatch``: only the fields sent change, ``null`` clears
one (the name falls back to ``BROADCASTER_PAGE_NAME``). Every public surface renders from
``load_brand``: the page and its mirror, the subscribe pages, emails and the desk header.

The accent colour and the custom CSS are served together as one content-hashed stylesheet
(``Brand.stylesheet_url``); the logo and favicon are small enough to travel inside the page as
``data:`` URLs (no request of their own) and are also served at hashed URLs for emails.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from pydantic import Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from broadcaster.brand_checks import Image, check_accent, check_css, check_image, decode_data_url, plain_links
from broadcaster.db import page_brand, utcnow
from broadcaster.schemas import Strict

BRAND_ID = "page"
MAX_LOGO_BYTES = 16 * 1024  # inlined in every page: the first visit stays within 40 KB
MAX_FAVICON_BYTES = 4 * 1024
MAX_CSS_BYTES = 64 * 1024
MAX_LINKS = 6
CSS_TYPE = "text/css; charset=utf-8"


class BrandPatch(Strict):
    """``PATCH /api/v1/page``: each field sent replaces the stored one; ``null`` clears it.

    ``logo`` and ``favicon`` are ``data:image/png;base64,…`` or ``data:image/svg+xml;base64,…``.
    """

    name: str | None = Field(default=None, min_length=1, max_length=255)
    description: str | None = Field(default=None, max_length=1000)
    accent_color: str | None = Field(default=None, max_length=7, description="#rrggbb, 4.5:1 against white")
    links: list[dict[str, Any]] | None = Field(default=None, description="[{label, url}]: support, terms, privacy")
    custom_css: str | None = Field(default=None, description=f"at most {MAX_CSS_BYTES} bytes; no @import")
    logo: str | None = Field(default=None, description=f"PNG or SVG as a data: URL, at most {MAX_LOGO_BYTES} bytes")
    favicon: str | None = Field(default=None, description=f"PNG or SVG as a data: URL, at most {MAX_FAVICON_BYTES}")


def _digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()[:12]


@dataclass(frozen=True, slots=True)
class Brand:
    """The stored brand (everything empty: the plain page)."""

    name: str | None = None
    description: str | None = None
    accent_color: str | None = None
    links: tuple[dict[str, str], ...] = ()
    custom_css: str = ""
    logo: Image | None = None
    favicon: Image | None = None
    updated_at: datetime | None = None

    def page_name(self, default: str) -> str:
        return self.name or default

    @property
    def stylesheet(self) -> bytes | None:
        """The accent as CSS variables, then the custom CSS; None when there is neither."""
        if not self.accent_color and not self.custom_css:
            return None
        accent = f":root{{--link:{self.accent_color};--accent:{self.accent_color}}}\n" if self.accent_color else ""
        return (accent + self.custom_css).encode()

    @property
    def stylesheet_url(self) -> str | None:
        sheet = self.stylesheet
        return None if sheet is None else f"/assets/brand.{_digest(sheet)}.css"

    def image_url(self, which: str) -> str | None:
        """``/assets/logo.<hash>.png`` (``which``: logo or favicon), None without one."""
        image: Image | None = getattr(self, which)
        return None if image is None else f"/assets/{which}.{_digest(image.body)}.{image.extension}"

    def assets(self) -> dict[str, tuple[bytes, str]]:
        """Hashed URL path -> (body, content type) of every file the brand adds."""
        found: dict[str, tuple[bytes, str]] = {}
        sheet, sheet_url = self.stylesheet, self.stylesheet_url
        if sheet is not None and sheet_url is not None:
            found[sheet_url] = (sheet, CSS_TYPE)
        for which in ("logo", "favicon"):
            image: Image | None = getattr(self, which)
            url = self.image_url(which)
            if image is not None and url is not None:
                found[url] = (image.body, image.content_type)
        return found


def _image(body: bytes | None, content_type: str | None) -> Image | None:
    return Image(content_type, bytes(body)) if body is not None and content_type else None


def brand_from_row(row: Any) -> Brand:
    if row is None:
        return Brand()
    return Brand(
        name=row["name"],
        description=row["description"],
        accent_color=row["accent_color"],
        links=tuple(row["links"] or ()),
        custom_css=row["custom_css"] or "",
        logo=_image(row["logo"], row["logo_type"]),
        favicon=_image(row["favicon"], row["favicon_type"]),
        updated_at=row["updated_at"],
    )


async def load_brand(conn: AsyncConnection) -> Brand:
    """The page's brand (an empty ``Brand`` when none was ever set)."""
    row = (await conn.execute(select(page_brand).where(page_brand.c.id == BRAND_ID))).mappings().first()
    return brand_from_row(row)


def apply_patch(brand: Brand, patch: BrandPatch) -> tuple[Brand, list[str]]:
    """``brand`` with the patch's fields applied and checked, and the names of the fields sent."""
    sent = sorted(patch.model_fields_set)
    changes: dict[str, Any] = {}
    for name in sent:
        value = getattr(patch, name)
        if name == "accent_color":
            value = check_accent(value) if value else None
        elif name == "links":
            value = tuple(plain_links(value or [], MAX_LINKS))
        elif name == "custom_css":
            value = check_css(value or "", MAX_CSS_BYTES)
        elif name in ("logo", "favicon"):
            limit = MAX_LOGO_BYTES if name == "logo" else MAX_FAVICON_BYTES
            value = check_image(decode_data_url(value, name), name, limit) if value else None
        elif name == "name":
            value = value or None
        changes[name] = value
    return replace(brand, **changes), sent


async def save_brand(conn: AsyncConnection, patch: BrandPatch) -> tuple[Brand, list[str]]:
    """Apply ``patch`` in the caller's transaction; returns the new brand and the fields changed."""
    brand, sent = apply_patch(await load_brand(conn), patch)
    brand = replace(brand, updated_at=utcnow())
    values = {
        "name": brand.name,
        "description": brand.description,
        "accent_color": brand.accent_color,
        "links": list(brand.links),
        "custom_css": brand.custom_css,
        "logo": brand.logo.body if brand.logo else None,
        "logo_type": brand.logo.content_type if brand.logo else None,
        "favicon": brand.favicon.body if brand.favicon else None,
        "favicon_type": brand.favicon.content_type if brand.favicon else None,
        "updated_at": brand.updated_at,
    }
    updated = await conn.execute(page_brand.update().where(page_brand.c.id == BRAND_ID).values(**values))
    if not updated.rowcount:
        await conn.execute(page_brand.insert().values(id=BRAND_ID, **values))
    return brand, sent


def brand_doc(brand: Brand) -> dict[str, Any]:
    """The brand as a ``BrandPatch`` body (images as data: URLs): the YAML export, re-importable."""
    return {
        "name": brand.name,
        "description": brand.description,
        "accent_color": brand.accent_color,
        "links": [dict(link) for link in brand.links],
        "custom_css": brand.custom_css,
        "logo": brand.logo.data_url if brand.logo else None,
        "favicon": brand.favicon.data_url if brand.favicon else None,
    }
