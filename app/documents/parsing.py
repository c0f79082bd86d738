"""Document bytes to plain text: PDF through pypdf, HTML through ``html.parser``, text decoded.

``parse_document`` is pure, CPU-bound and a top-level function, so a process pool can run
it (see :mod:`app.documents.pool`); everything it raises pickles. Every failure that is
the document's fault is a :class:`DocumentParseError` whose message can be shown to the
person who uploaded it::

    try:
        text = parse_document(data, "application/pdf")
    except DocumentParseError as exc:
        mark_failed(document, exc.message)
"""

from __future__ import annotations

import codecs
import io
import re

from app.documents.detect import HTML, MARKDOWN, PDF, PLAIN
from app.documents.encoding import bom_encoding, decode_text, looks_like_text
from app.documents.html_text import html_to_text

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.I)
_TRAILING_SPACES = re.compile(r"[ \t]+\n")
_MANY_BLANK_LINES = re.compile(r"\n{3,}")


class DocumentParseError(Exception):
    """The document cannot be turned into text; ``message`` says why, for the uploader."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def parse_document(data: bytes, content_type: str) -> str:
    """The text of a document of one of the detected content types.

    Paragraphs are separated by blank lines where the format says where they are (HTML,
    Markdown, plain text); a PDF's pages are. Raises :class:`DocumentParseError` for a
    corrupt, encrypted or image-only PDF, undecodable text, and an empty document.
    """
    if content_type == PDF:
        text = _pdf_text(data)
    elif content_type == HTML:
        text = html_to_text(_decode_html(data))
    elif content_type in (MARKDOWN, PLAIN):
        text = _decode(data)
    else:
        raise DocumentParseError(f"cannot read documents of type {content_type!r}")
    text = _tidy(text)
    if not text:
        raise DocumentParseError("the document is empty: it contains no text")
    return text


def _decode(data: bytes) -> str:
    text = decode_text(data)
    if text is None:
        raise DocumentParseError(
            "the file is not readable text: it is neither UTF-8 (or UTF-16 with a "
            "byte-order mark) nor Windows-1252"
        )
    return text


def _decode_html(data: bytes) -> str:
    # A byte-order mark beats a <meta charset>; a charset that does not decode is ignored.
    if bom_encoding(data) is None:
        match = _META_CHARSET.search(data[:4096])
        if match:
            try:
                encoding = codecs.lookup(match.group(1).decode("ascii")).name
                text = data.decode(encoding)
            except (LookupError, UnicodeDecodeError):
                pass
            else:
                if looks_like_text(text):
                    return text
    return _decode(data)


def _pdf_text(data: bytes) -> str:
    # Imported here so that text-only workers (and tests) do not pay for pypdf.
    from pypdf import PdfReader
    from pypdf.errors import DependencyError, FileNotDecryptedError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            # Many PDFs are encrypted with an empty user password (only editing is
            # restricted): those open as any other.
            try:
                opened = reader.decrypt("")
            except DependencyError as exc:
                raise DocumentParseError(
                    "the PDF is encrypted with a cipher this server cannot decrypt"
                ) from exc
            if not opened:
                raise DocumentParseError(
                    "the PDF is password-protected; upload a copy without a password"
                )
        pages = [page.extract_text() or "" for page in reader.pages]
    except DocumentParseError:
        raise
    except FileNotDecryptedError as exc:
        raise DocumentParseError(
            "the PDF is password-protected; upload a copy without a password"
        ) from exc
    except Exception as exc:  # a damaged file breaks pypdf in many ways, not only PdfReadError
        raise DocumentParseError(f"the PDF is corrupt or unreadable ({_short(exc)})") from exc
    if not pages:
        raise DocumentParseError("the PDF has no pages")
    text = "\n\n".join(p.strip() for p in pages if p.strip())
    if not text:
        raise DocumentParseError(
            "the PDF has no extractable text (a scanned document needs OCR, which is not supported)"
        )
    return text


def _tidy(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    text = _TRAILING_SPACES.sub("\n", text)
    return _MANY_BLANK_LINES.sub("\n\n", text).strip()


def _short(exc: BaseException) -> str:
    detail = str(exc).strip() or type(exc).__name__
    return detail if len(detail) <= 120 else detail[:117] + "..."
