"""What kind of document an upload is, decided from its first bytes and its name.

The client's declared type is a hint at most: browsers derive it from the extension and
many clients send ``application/octet-stream`` for everything. The content decides::

    content_type = detect_content_type(first_bytes, upload.filename, upload.content_type)

Pass at least the first :data:`SNIFF_BYTES` bytes (the whole file is fine too). Empty
content is given a text type from its name; parsing then reports the document as empty.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath, PureWindowsPath

from app.documents.encoding import bom_encoding, decode_text
from app.errors import UnsupportedMediaType

PDF = "application/pdf"
HTML = "text/html"
MARKDOWN = "text/markdown"
PLAIN = "text/plain"
SUPPORTED_CONTENT_TYPES = (PDF, HTML, MARKDOWN, PLAIN)

SNIFF_BYTES = 8192

_SUPPORTED_HINT = "upload a PDF, HTML, Markdown or plain-text file"
_HTML_EXTENSIONS = frozenset({".html", ".htm", ".xhtml"})
_MARKDOWN_EXTENSIONS = frozenset({".md", ".markdown", ".mdown", ".mkd"})
_HTML_DECLARED = frozenset({"text/html", "application/xhtml+xml"})
_MARKDOWN_DECLARED = frozenset({"text/markdown", "text/x-markdown"})

# (signature, offset, what it is), checked before any attempt to read the bytes as text.
_BINARY_SIGNATURES: tuple[tuple[bytes, int, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", 0, "a PNG image"),
    (b"\xff\xd8\xff", 0, "a JPEG image"),
    (b"GIF87a", 0, "a GIF image"),
    (b"GIF89a", 0, "a GIF image"),
    (b"II*\x00", 0, "a TIFF image"),
    (b"MM\x00*", 0, "a TIFF image"),
    (b"RIFF", 0, "a RIFF media file (WebP, WAV or AVI)"),
    (b"PK\x03\x04", 0, "a ZIP archive (DOCX, XLSX, PPTX, EPUB and ODT are ZIP files too)"),
    (b"PK\x05\x06", 0, "a ZIP archive"),
    (b"PK\x07\x08", 0, "a ZIP archive"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", 0, "an old Microsoft Office (OLE) file"),
    (b"\x1f\x8b", 0, "a gzip archive"),
    (b"\xfd7zXZ\x00", 0, "an xz archive"),
    (b"7z\xbc\xaf\x27\x1c", 0, "a 7-Zip archive"),
    (b"Rar!\x1a\x07", 0, "a RAR archive"),
    (b"ustar", 257, "a tar archive"),
    (b"\x7fELF", 0, "an ELF executable"),
    (b"\xcf\xfa\xed\xfe", 0, "a Mach-O executable"),
    (b"\xfe\xed\xfa\xcf", 0, "a Mach-O executable"),
    (b"\xca\xfe\xba\xbe", 0, "a Mach-O or Java class file"),
    (b"\x00asm", 0, "a WebAssembly module"),
    (b"SQLite format 3\x00", 0, "an SQLite database"),
    (b"OggS\x00", 0, "an Ogg media file"),
    (b"ftyp", 4, "an MP4/QuickTime media file"),
)
_BZIP2 = re.compile(rb"BZh[1-9]1AY&SY")
_ID3 = re.compile(rb"ID3[\x02-\x04]")

# A doctype or an <html>/<head>/<body> tag first, after an optional XML declaration and
# comments: what an HTML document starts with, and what plain text practically never does.
_HTML_START = re.compile(
    r"\A\s*(?:<\?xml[^>]*>\s*)?(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html|head|body)(?:[\s>]|\Z)",
    re.IGNORECASE | re.DOTALL,
)


def detect_content_type(head: bytes, filename: str, declared: str | None) -> str:
    """One of :data:`SUPPORTED_CONTENT_TYPES` for an upload whose content starts with ``head``.

    Raises :class:`~app.errors.UnsupportedMediaType` with a message fit for the client for
    anything else: binary formats, bytes that are not text in a common encoding, and a file
    named or declared as a PDF whose bytes are not one.
    """
    label = _label(filename)
    ext = _extension(filename)
    declared_type = _normalize(declared)

    if _is_pdf(head, named_pdf=ext == ".pdf" or declared_type == PDF):
        return PDF
    if ext == ".pdf" or declared_type == PDF:
        raise UnsupportedMediaType(
            f"{label} is {'named' if ext == '.pdf' else 'declared'} as a PDF, "
            "but its content is not a PDF (it does not start with %PDF-)"
        )
    kind = _binary_kind(head)
    if kind is not None:
        raise UnsupportedMediaType(
            f"{label} looks like {kind}, which is not a supported document type; {_SUPPORTED_HINT}"
        )
    if b"\x00" in head and bom_encoding(head) is None:
        raise UnsupportedMediaType(f"{label} contains binary data, not text; {_SUPPORTED_HINT}")
    text = decode_text(head, partial=True)
    if text is None:
        raise UnsupportedMediaType(
            f"{label} is not readable text: it is neither UTF-8 (or UTF-16 with a byte-order "
            f"mark) nor Windows-1252 text; {_SUPPORTED_HINT}"
        )
    if _HTML_START.match(text) or ext in _HTML_EXTENSIONS:
        return HTML
    if ext in _MARKDOWN_EXTENSIONS:
        return MARKDOWN
    if ext == ".txt":
        return PLAIN
    if declared_type in _HTML_DECLARED:
        return HTML
    if declared_type in _MARKDOWN_DECLARED:
        return MARKDOWN
    return PLAIN


def _is_pdf(head: bytes, *, named_pdf: bool) -> bool:
    # Readers accept junk before the header (within the first KiB); a text file that only
    # mentions "%PDF-" somewhere is not taken for one unless its name says PDF as well.
    if head.lstrip(b"\xef\xbb\xbf \t\r\n\f").startswith(b"%PDF-"):
        return True
    return named_pdf and b"%PDF-" in head[:1024]


def _binary_kind(head: bytes) -> str | None:
    for signature, offset, kind in _BINARY_SIGNATURES:
        if head[offset : offset + len(signature)] == signature:
            return kind
    if _BZIP2.match(head):
        return "a bzip2 archive"
    if _ID3.match(head):
        return "an MP3 audio file"
    return None


def _extension(filename: str) -> str:
    # Windows clients may send a full path; both separators count.
    name = PureWindowsPath(PurePosixPath(filename).name).name
    return PurePosixPath(name).suffix.lower()


def _normalize(declared: str | None) -> str | None:
    if not declared:
        return None
    return declared.split(";", 1)[0].strip().lower() or None


def _label(filename: str) -> str:
    name = filename.strip()
    return f"'{name}'" if name else "the file"
