"""Checks on what an operator uploads to brand the page: images, colours, links and custom CSS.

Pure functions; each refusal is an ``InputError`` naming the field. SVG goes through nh3 (the
ammonia sanitizer the update bodies use) with an SVG allowlist: no script, no event handlers,
no ``foreignObject``, no reference to anything outside the image; the result must parse as
XML. PNG is recognised by its signature. Custom CSS may not ``@import`` nor point ``url()``
at another origin (the page's CSP would block those fetches too; this says so at once).
"""

from __future__ import annotations

import base64
import binascii
import html
import re
from dataclasses import dataclass
from typing import Any
from xml.etree import ElementTree

import nh3

from broadcaster.errors import InputError

PNG = "image/png"
SVG = "image/svg+xml"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"
PAGE_BACKGROUND = "#ffffff"  # --bg in templates/status_page/assets/status.css
MIN_CONTRAST = 4.5  # WCAG 2.x AA, normal text: links and button labels use the accent
LINK_SCHEMES = ("https://", "http://", "mailto:", "tel:")
MAX_URL_CHARS = 2048

SVG_TAGS = {
    "svg", "g", "defs", "symbol", "use", "title", "desc", "style", "path", "rect", "circle", "ellipse",
    "line", "polyline", "polygon", "text", "tspan", "linearGradient", "radialGradient", "stop",
    "clipPath", "mask", "pattern",
}  # fmt: skip
SVG_ATTRIBUTES = {
    "id", "class", "style", "d", "x", "y", "x1", "y1", "x2", "y2", "cx", "cy", "r", "rx", "ry", "fx", "fy",
    "dx", "dy", "width", "height", "points", "viewBox", "preserveAspectRatio", "version", "transform",
    "fill", "fill-opacity", "fill-rule", "clip-rule", "clip-path", "mask", "opacity", "stroke",
    "stroke-width", "stroke-linecap", "stroke-linejoin", "stroke-miterlimit", "stroke-dasharray",
    "stroke-dashoffset", "stroke-opacity", "display", "visibility", "font-family", "font-size",
    "font-weight", "font-style", "text-anchor", "dominant-baseline", "letter-spacing", "offset",
    "stop-color", "stop-opacity", "gradientUnits", "gradientTransform", "spreadMethod", "clipPathUnits",
    "maskUnits", "maskContentUnits", "patternUnits", "patternTransform", "href", "xlink:href",
}  # fmt: skip
_PROLOG = re.compile(r"<\?xml[^>]*\?>|<!DOCTYPE[^\[>]*(\[.*?\])?\s*>|<!--.*?-->", re.I | re.S)
_ENTITY = re.compile(r"&(?!(?:amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);)([A-Za-z][A-Za-z0-9]*);")
_NAMESPACES = re.compile(r'\s+xmlns(:xlink)?="[^"]*"')
_STYLE_ELEMENT = re.compile(r"<style>(.*?)</style>", re.S)
_HEX_COLOR = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")
_CSS_COMMENT = re.compile(r"/\*.*?(\*/|$)", re.S)
_CSS_ESCAPE = re.compile(r"\\([0-9a-fA-F]{1,6})\s?|\\(.)", re.S)
_CSS_URL = re.compile(r"url\(\s*(['\"]?)(.*?)\1\s*\)", re.S)
_CSS_IMAGE_SET = re.compile(r"image-set\(([^)]*)\)", re.S)
_CSS_STRING = re.compile(r"(['\"])(.*?)\1", re.S)


@dataclass(frozen=True, slots=True)
class Image:
    """An uploaded image as stored: its type and bytes (SVG already sanitized)."""

    content_type: str
    body: bytes

    @property
    def extension(self) -> str:
        return "png" if self.content_type == PNG else "svg"

    @property
    def data_url(self) -> str:
        return f"data:{self.content_type};base64,{base64.b64encode(self.body).decode()}"


# --- colours ------------------------------------------------------------------------------------


def _channel(value: int) -> float:
    c = value / 255
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def relative_luminance(color: str) -> float:
    """WCAG 2.x relative luminance of ``#rgb`` / ``#rrggbb``."""
    hex_digits = color.lstrip("#")
    if len(hex_digits) == 3:
        hex_digits = "".join(d * 2 for d in hex_digits)
    r, g, b = (int(hex_digits[i : i + 2], 16) for i in (0, 2, 4))
    return 0.2126 * _channel(r) + 0.7152 * _channel(g) + 0.0722 * _channel(b)


def contrast_ratio(first: str, second: str) -> float:
    """(L1 + 0.05) / (L2 + 0.05), the lighter over the darker: 1 to 21."""
    a, b = sorted((relative_luminance(first), relative_luminance(second)), reverse=True)
    return (a + 0.05) / (b + 0.05)


def check_accent(value: str) -> str:
    """``value`` as ``#rrggbb``; 422 on ``accent_color`` when malformed or under 4.5:1 against the page."""
    if not _HEX_COLOR.match(value):
        raise InputError("not a colour", {"accent_color": "must be a hex colour like #0b5cad"})
    digits = value[1:].lower()
    color = "#" + ("".join(d * 2 for d in digits) if len(digits) == 3 else digits)
    ratio = contrast_ratio(color, PAGE_BACKGROUND)
    # Truncated, not rounded: 4.497 must not read as a passing 4.50.
    shown = int(ratio * 100) / 100
    if ratio < MIN_CONTRAST:
        raise InputError(
            "the accent colour fails WCAG AA contrast",
            {
                "accent_color": f"contrast {shown:.2f}:1 against the page background {PAGE_BACKGROUND}; "
                f"WCAG AA needs at least {MIN_CONTRAST}:1"
            },
        )
    return color


# --- links --------------------------------------------------------------------------------------


def check_url(value: str, field: str) -> str:
    """An http(s), mailto or tel link; 422 naming ``field`` otherwise."""
    if len(value) > MAX_URL_CHARS or not value.lower().startswith(LINK_SCHEMES) or any(c.isspace() for c in value):
        raise InputError("not a link", {field: f"must be an http(s), mailto: or tel: link of at most {MAX_URL_CHARS}"})
    return value


# --- images -------------------------------------------------------------------------------------


def _is_local_reference(value: str) -> bool:
    text = _css_plain(value).strip().lower()
    for match in re.finditer(r"url\(\s*['\"]?([^'\")]*)", text):
        if not match.group(1).strip().startswith("#"):
            return False
    return "javascript:" not in text and "expression(" not in text


def _svg_attribute(tag: str, attribute: str, value: str) -> str | None:
    if attribute in ("href", "xlink:href"):
        return value if value.strip().startswith("#") else None
    return value if _is_local_reference(value) else None


def _entity_as_number(match: re.Match[str]) -> str:
    text = html.unescape(match.group(0))
    return "".join(f"&#{ord(c)};" for c in text) if text != match.group(0) else ""


def sanitize_svg(raw: bytes, field: str) -> bytes:
    """The SVG with only drawing left (no script, handlers, external references); 422 if not an SVG."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError("not an image", {field: "must be a PNG or an SVG (UTF-8)"}) from None
    text = _PROLOG.sub("", text)
    cleaned = nh3.clean(
        text,
        tags=SVG_TAGS,
        clean_content_tags={"script", "foreignObject", "iframe", "object", "embed"},
        attributes={"*": SVG_ATTRIBUTES},
        attribute_filter=_svg_attribute,
        set_tag_attribute_values={"svg": {"xmlns": SVG_NS, "xmlns:xlink": XLINK_NS}},
        link_rel=None,
        strip_comments=True,
    )
    start, end = cleaned.find("<svg"), cleaned.rfind("</svg>")
    if start < 0 or end < 0:
        raise InputError("not an image", {field: "must be a PNG or an SVG"})
    cleaned = _ENTITY.sub(_entity_as_number, cleaned[start : end + len("</svg>")])
    # The namespaces first, always: sanitizing what was sanitized gives the same bytes.
    head_end = cleaned.index(">")
    head = _NAMESPACES.sub("", cleaned[len("<svg") : head_end])
    cleaned = f'<svg xmlns="{SVG_NS}" xmlns:xlink="{XLINK_NS}"{head}{cleaned[head_end:]}'
    cleaned = _STYLE_ELEMENT.sub(
        lambda m: m.group(0) if css_problem(html.unescape(m.group(1))) is None else "", cleaned
    )
    try:
        root = ElementTree.fromstring(cleaned)
    except ElementTree.ParseError as exc:
        raise InputError("not an image", {field: f"not a well-formed SVG: {exc}"}) from None
    if root.tag != f"{{{SVG_NS}}}svg":
        raise InputError("not an image", {field: "must be a PNG or an SVG"})
    return cleaned.encode()


def check_image(raw: bytes, field: str, max_bytes: int) -> Image:
    """A PNG (by its signature) or a sanitized SVG of at most ``max_bytes``; 422 naming ``field``."""
    if len(raw) > max_bytes:
        raise InputError("image too large", {field: f"is {len(raw)} bytes; the limit is {max_bytes}"})
    if raw.startswith(PNG_SIGNATURE):
        if len(raw) < 33 or raw[12:16] != b"IHDR":
            raise InputError("not an image", {field: "a truncated PNG"})
        return Image(PNG, raw)
    if raw[:1] == b"\x89" or b"\x00" in raw[:512]:
        raise InputError("not an image", {field: "must be a PNG or an SVG"})
    return Image(SVG, sanitize_svg(raw, field))


def decode_data_url(value: str, field: str) -> bytes:
    """The bytes of ``data:image/png;base64,…`` or ``data:image/svg+xml;base64,…``."""
    head, sep, payload = value.partition(",")
    kind = head.removeprefix("data:").removesuffix(";base64")
    if not sep or not head.startswith("data:") or not head.endswith(";base64") or kind not in (PNG, SVG):
        raise InputError("not an image", {field: "must be a data: URL, data:image/png;base64,… or image/svg+xml"})
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise InputError("not an image", {field: "the base64 payload is malformed"}) from None


# --- custom CSS ---------------------------------------------------------------------------------


def _unescape(match: re.Match[str]) -> str:
    if match.group(1):
        code = int(match.group(1), 16)
        return chr(code) if 0 < code <= 0x10FFFF else "\ufffd"
    return str(match.group(2))


def _css_plain(css: str) -> str:
    """Comments out, escapes decoded: ``@\\69mport`` reads as ``@import`` here, as it does to a browser."""
    return _CSS_ESCAPE.sub(_unescape, _CSS_COMMENT.sub(" ", css))


def _foreign(target: str) -> bool:
    target = target.strip().lower()
    if target.startswith(("#", "data:")):
        return False
    scheme = re.match(r"^[a-z][a-z0-9+.-]*:", target)
    return target.startswith("//") or target.startswith("\\") or scheme is not None


def css_problem(css: str) -> str | None:
    """Why ``css`` may not be served with the page, or None."""
    plain = _css_plain(css).lower()
    if "@import" in plain:
        return "@import is not allowed: put the rules here"
    for match in _CSS_URL.finditer(plain):
        if _foreign(match.group(2)):
            target = match.group(2).strip()[:80]
            return f"url({target}) points at another origin; only this page's paths and data: are allowed"
    for match in _CSS_IMAGE_SET.finditer(plain):
        for string in _CSS_STRING.finditer(match.group(1)):
            if _foreign(string.group(2)):
                return "image-set() points at another origin"
    if "expression(" in plain or "javascript:" in plain or "</style" in plain:
        return "scripts are not allowed in CSS"
    return None


def check_css(css: str, max_bytes: int) -> str:
    """``css`` if it may be served; 422 on ``custom_css`` when too large or reaching other origins."""
    size = len(css.encode())
    if size > max_bytes:
        raise InputError("custom CSS too large", {"custom_css": f"is {size} bytes; the limit is {max_bytes}"})
    problem = css_problem(css)
    if problem:
        raise InputError("custom CSS refused", {"custom_css": problem})
    return css


def plain_links(value: Any, max_links: int) -> list[dict[str, str]]:
    """``[{label, url}]`` checked; 422 naming ``links[i].label`` / ``links[i].url``."""
    if not isinstance(value, list) or len(value) > max_links:
        raise InputError("invalid links", {"links": f"must be a list of at most {max_links} {{label, url}}"})
    links = []
    for i, item in enumerate(value):
        label = item.get("label") if isinstance(item, dict) else None
        url = item.get("url") if isinstance(item, dict) else None
        if not isinstance(label, str) or not 1 <= len(label.strip()) <= 60:
            raise InputError("invalid links", {f"links.{i}.label": "required, at most 60 characters"})
        if not isinstance(url, str):
            raise InputError("invalid links", {f"links.{i}.url": "required"})
        links.append({"label": label.strip(), "url": check_url(url.strip(), f"links.{i}.url")})
    return links
