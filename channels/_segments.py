"""How long an SMS is: GSM-7 septets or UCS-2 (UTF-16) code units, and the segments it needs; not a channel.

A text is GSM-7 when every character has a GSM 03.38 code (typographic quotes and dashes can
be folded to one first), else UCS-2: 160 septets or 70 units in one segment, 153 or 67 a
segment once concatenated.
"""

from __future__ import annotations

GSM7 = "GSM-7"
UCS2 = "UCS-2"

# GSM 03.38 default alphabet (ESC excluded: it only introduces the extension table).
_GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# Sent as ESC + code, so each costs two septets.
_GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

# (single-segment limit, per-segment limit once concatenated), in the encoding's unit.
_LIMITS = {GSM7: (160, 153), UCS2: (70, 67)}

# Punctuation word processors produce that has a plain GSM-7 twin. Without this one curly
# apostrophe (or short_text's own ellipsis) would halve the room by forcing UCS-2.
_GSM7_FOLD = str.maketrans(
    {
        "\u2026": "...",  # horizontal ellipsis
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u201b": "'",  # single quotes
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',  # double quotes
        "\u2013": "-",
        "\u2014": "-",  # en and em dash
        "\u00a0": " ",  # no-break space
    }
)


def is_gsm7(text: str) -> bool:
    return all(ch in _GSM7_BASIC or ch in _GSM7_EXTENSION for ch in text)


def gsm7_septets(text: str) -> int:
    """Septets ``text`` takes in GSM-7 (extension characters count two)."""
    return sum(2 if ch in _GSM7_EXTENSION else 1 for ch in text)


def utf16_units(text: str) -> int:
    """UTF-16 code units: what UCS-2 SMS counts (a character beyond the BMP, like most emoji, is two)."""
    return sum(2 if ord(ch) > 0xFFFF else 1 for ch in text)


def fold_gsm7(text: str) -> str:
    """Replace typographic punctuation by its GSM-7 twin (a character-wise mapping)."""
    return text.translate(_GSM7_FOLD)


def encoding_of(text: str) -> str:
    return GSM7 if is_gsm7(text) else UCS2


def segment_count(text: str) -> int:
    """How many SMS segments ``text`` needs in its encoding.

    A multipart segment carries a 6-byte header (153 septets / 67 code units left), and
    neither an escape pair nor a surrogate pair is split across two segments.
    """
    encoding = encoding_of(text)
    sizes = (
        [2 if ch in _GSM7_EXTENSION else 1 for ch in text]
        if encoding == GSM7
        else [2 if ord(ch) > 0xFFFF else 1 for ch in text]
    )
    single, multi = _LIMITS[encoding]
    if sum(sizes) <= single:
        return 1
    segments, used = 1, 0
    for size in sizes:
        if used + size > multi:
            segments, used = segments + 1, 0
        used += size
    return segments


def budget_for(encoding: str, max_segments: int) -> int:
    single, multi = _LIMITS[encoding]
    return single if max_segments == 1 else multi * max_segments
