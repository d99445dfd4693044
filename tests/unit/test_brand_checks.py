"""Brand uploads: WCAG contrast, SVG sanitizing, PNG signature, custom CSS rules."""

from __future__ import annotations

import base64
from xml.etree import ElementTree

import pytest

from broadcaster.brand_checks import (
    PNG,
    SVG,
    check_accent,
    check_css,
    check_image,
    contrast_ratio,
    css_problem,
    decode_data_url,
    plain_links,
)
from broadcaster.errors import InputError

# A 1×1 PNG.
PNG_BYTES = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)
HOSTILE_SVG = b"""<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE svg [<!ENTITY lol "lol">]>
<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"
     viewBox="0 0 120 40" onload="alert(1)">
  <script>alert(document.cookie)</script>
  <style>.mark{fill:#0b5cad}</style>
  <style>@import url(https://evil.example/x.css);</style>
  <title>ACME &amp; Co&nbsp;</title>
  <defs><linearGradient id="g"><stop offset="0" stop-color="#0b5cad"/></linearGradient></defs>
  <rect class="mark" width="40" height="40" fill="url(#g)" onclick="steal()"/>
  <circle cx="60" cy="20" r="10" fill="url(https://evil.example/p#x)"/>
  <use xlink:href="#g"/><use href="https://evil.example/sprite.svg#x"/>
  <a href="javascript:alert(1)"><text x="80" y="25">ACME</text></a>
  <image href="https://evil.example/track.png" width="1" height="1"/>
  <foreignObject><iframe src="https://evil.example"></iframe></foreignObject>
</svg>"""


@pytest.mark.parametrize(
    ("first", "second", "ratio"),
    [
        ("#000000", "#ffffff", 21.0),
        ("#ffffff", "#ffffff", 1.0),
        ("#777777", "#ffffff", 4.48),
        ("#767676", "#fff", 4.54),
    ],
)
def test_contrast_ratio_is_wcag_relative_luminance(first: str, second: str, ratio: float) -> None:
    assert contrast_ratio(first, second) == pytest.approx(ratio, abs=0.005)


def test_accent_under_4_5_is_refused_with_its_ratio() -> None:
    assert check_accent("#0B5CAD") == "#0b5cad"
    assert check_accent("#767676") == "#767676"  # 4.54:1, the lightest grey that passes
    with pytest.raises(InputError) as refused:
        check_accent("#777777")
    assert list(refused.value.fields) == ["accent_color"]
    assert "4.47:1" in refused.value.fields["accent_color"] and "4.5:1" in refused.value.fields["accent_color"]
    with pytest.raises(InputError) as malformed:
        check_accent("red")
    assert "accent_color" in malformed.value.fields


def test_svg_keeps_the_drawing_and_loses_script_handlers_and_outside_references() -> None:
    image = check_image(HOSTILE_SVG, "logo", 16_384)
    assert image.content_type == SVG
    text = image.body.decode()
    for gone in ("script", "alert", "onload", "onclick", "evil.example", "javascript", "foreignObject", "iframe"):
        assert gone not in text, gone
    root = ElementTree.fromstring(image.body)  # still well-formed XML, an SVG document
    assert root.tag == "{http://www.w3.org/2000/svg}svg" and root.get("viewBox") == "0 0 120 40"
    assert 'fill="url(#g)"' in text and 'xlink:href="#g"' in text and ".mark{fill:#0b5cad}" in text
    assert "ACME &amp; Co&#160;" in text
    assert check_image(image.body, "logo", 16_384).body == image.body, "sanitizing is stable (export -> import)"


def test_images_are_recognised_by_content_not_by_name() -> None:
    assert check_image(PNG_BYTES, "favicon", 4096).content_type == PNG
    for raw in (b"\x89PNG\r\n\x1a\nshort", b"GIF89a\x01\x00", b"<html><body>no svg</body></html>", b"\xff\xd8\xff"):
        with pytest.raises(InputError) as refused:
            check_image(raw, "logo", 16_384)
        assert "logo" in refused.value.fields
    with pytest.raises(InputError) as too_big:
        check_image(PNG_BYTES + b"\0" * 5000, "favicon", 4096)
    assert "limit is 4096" in too_big.value.fields["favicon"]


def test_data_urls() -> None:
    encoded = base64.b64encode(PNG_BYTES).decode()
    assert decode_data_url(f"data:image/png;base64,{encoded}", "logo") == PNG_BYTES
    for bad in ("https://example.com/logo.png", "data:text/html;base64,PGI+", "data:image/png;base64,@@@"):
        with pytest.raises(InputError) as refused:
            decode_data_url(bad, "logo")
        assert "logo" in refused.value.fields


@pytest.mark.parametrize(
    "css",
    [
        "@import url(https://evil.example/x.css);",
        '@IMPORT "theme.css";',
        "@\\69mport 'x.css';",  # a CSS escape is still @import to the browser
        "a{background:url(https://evil.example/x.png)}",
        "a{background:url( '//evil.example/x.png' )}",
        "a{background:u\\72l(//evil.example/x.png)}",
        "@font-face{font-family:x;src:url(http://evil.example/f.woff2)}",
        'a{background-image:image-set("https://evil.example/a.png" 1x)}',
        "a{width:expression(alert(1))}",
    ],
)
def test_css_that_reaches_other_origins_is_refused(css: str) -> None:
    assert css_problem(css) is not None
    with pytest.raises(InputError) as refused:
        check_css(css, 65_536)
    assert list(refused.value.fields) == ["custom_css"]


def test_css_of_this_origin_is_kept_and_the_size_is_capped() -> None:
    css = "header.site{background:#f4f5f7 url(/assets/x.png)}/* url(https://in-a-comment.example) */\n"
    css += "a:hover{background:url(data:image/png;base64,AAAA)}"
    assert check_css(css, 65_536) == css
    ten_kb = ".card{border-radius:2px}\n" * 410
    assert len(ten_kb.encode()) > 10_000 and check_css(ten_kb, 65_536) == ten_kb
    with pytest.raises(InputError) as refused:
        check_css("a{color:red}" * 17_000, 65_536)
    assert "limit is 65536" in refused.value.fields["custom_css"]


def test_links_name_the_bad_item() -> None:
    links = plain_links([{"label": " Support ", "url": "https://help.example.com"}], 6)
    assert links == [{"label": "Support", "url": "https://help.example.com"}]
    with pytest.raises(InputError) as refused:
        plain_links([{"label": "ok", "url": "https://a.example"}, {"label": "x", "url": "javascript:alert(1)"}], 6)
    assert list(refused.value.fields) == ["links.1.url"]
    with pytest.raises(InputError) as too_many:
        plain_links([{"label": "a", "url": "https://a.example"}] * 7, 6)
    assert "links" in too_many.value.fields
