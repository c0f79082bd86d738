"""Deciding whether bytes are text, and in which encoding.

Shared by detection (which sees only the first few KiB, possibly cut inside a character)
and parsing (which sees the whole file). The order is: a byte-order mark wins; then
strict UTF-8; then Windows-1252, accepted only when the result reads like Western text,
because a single-byte code page decodes almost any bytes and would otherwise turn binary
garbage into "text". Latin-1 adds nothing over Windows-1252 here: the only bytes where they
differ decode to C1 control characters in Latin-1, which the text check rejects anyway.
"""

from __future__ import annotations

import codecs
import unicodedata

# Longest BOM first: the UTF-32-LE mark begins with the UTF-16-LE one.
_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)

_ALLOWED_CONTROLS = frozenset("\t\n\r\f\v")
# A stray form feed or Ctrl-Z is tolerated; binary data has far more control characters.
_MAX_CONTROL_RATIO = 0.01
# Western text in Windows-1252 is mostly ASCII; random high bytes are not.
_MAX_NON_ASCII_RATIO_CP1252 = 0.3


def bom_encoding(data: bytes) -> tuple[str, int] | None:
    """The encoding a byte-order mark names, and the mark's length; None without one."""
    for bom, name in _BOMS:
        if data.startswith(bom):
            return name, len(bom)
    return None


def decode_text(data: bytes, *, partial: bool = False) -> str | None:
    """``data`` decoded as text, BOM removed; None when it is not text.

    ``partial=True`` says ``data`` is only the start of a file, so a multi-byte character
    cut at the end is not an error.
    """
    bom = bom_encoding(data)
    if bom is not None:
        name, skip = bom
        text = _decode(data[skip:], name, partial=partial)
        return text if text is not None and looks_like_text(text) else None
    if b"\x00" in data:
        return None
    text = _decode(data, "utf-8", partial=partial)
    if text is not None:
        return text if looks_like_text(text) else None
    text = _decode(data, "cp1252", partial=partial)
    if text is None or not looks_like_text(text):
        return None
    non_ascii = sum(1 for c in text if ord(c) > 127)
    if text and non_ascii / len(text) > _MAX_NON_ASCII_RATIO_CP1252:
        return None
    return text


def looks_like_text(text: str) -> bool:
    """False when control characters (other than tabs, newlines, form feeds) abound."""
    if not text:
        return True
    controls = sum(
        1 for c in text if c not in _ALLOWED_CONTROLS and unicodedata.category(c) == "Cc"
    )
    return "\x00" not in text and controls / len(text) <= _MAX_CONTROL_RATIO


def _decode(data: bytes, encoding: str, *, partial: bool) -> str | None:
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    try:
        return str(decoder.decode(data, final=not partial))
    except UnicodeDecodeError:
        return None
