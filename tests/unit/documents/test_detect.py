from __future__ import annotations

import pytest

from app.documents.detect import (
    HTML,
    MARKDOWN,
    PDF,
    PLAIN,
    SNIFF_BYTES,
    detect_content_type,
)
from app.errors import UnsupportedMediaType
from tests.support.pdfs import make_pdf

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"


def test_pdf_is_recognised_by_its_magic_whatever_the_name_says() -> None:
    pdf = make_pdf("hello")[:SNIFF_BYTES]
    assert detect_content_type(pdf, "report.pdf", "application/pdf") == PDF
    assert detect_content_type(pdf, "upload.bin", "application/octet-stream") == PDF
    assert detect_content_type(pdf, "notes.txt", "text/plain") == PDF


def test_pdf_with_junk_before_the_header_is_accepted_when_named_pdf() -> None:
    head = b"\x00\x01junk" + make_pdf("x")[:500]
    assert detect_content_type(head, "scan.PDF", None) == PDF


def test_a_pdf_name_on_non_pdf_bytes_is_refused() -> None:
    with pytest.raises(UnsupportedMediaType, match="not a PDF"):
        detect_content_type(b"just some text, honestly", "report.pdf", "application/pdf")


def test_declared_pdf_that_is_not_one_is_refused() -> None:
    with pytest.raises(UnsupportedMediaType, match="declared as a PDF"):
        detect_content_type(b"plain words", "report", "application/pdf")


def test_text_mentioning_the_pdf_magic_is_not_taken_for_a_pdf() -> None:
    head = b"The header of a PDF file is %PDF-1.7 followed by binary comments."
    assert detect_content_type(head, "about-pdf.txt", None) == PLAIN


@pytest.mark.parametrize(
    ("head", "what"),
    [
        (PNG, "PNG"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", "JPEG"),
        (b"GIF89a\x01\x00\x01\x00", "GIF"),
        (b"PK\x03\x04\x14\x00\x06\x00word/document.xml", "ZIP"),
        (b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 8, "ELF"),
        (b"\x1f\x8b\x08\x00" + b"\x00" * 6, "gzip"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 8, "OLE"),
        (b"SQLite format 3\x00" + b"\x00" * 16, "SQLite"),
    ],
)
def test_binary_formats_are_refused_by_name(head: bytes, what: str) -> None:
    with pytest.raises(UnsupportedMediaType, match=what) as info:
        detect_content_type(head, "file.txt", "text/plain")
    assert info.value.error_type == "unsupported_media_type"
    assert info.value.http_status == 415
    assert "'file.txt'" in info.value.message


def test_nul_laden_bytes_are_binary() -> None:
    with pytest.raises(UnsupportedMediaType, match="binary data"):
        detect_content_type(b"abc\x00\x00\x00def\x00\x01\x02", "data.txt", None)


def test_random_high_bytes_are_not_text() -> None:
    # Valid in no UTF; 0x81 and 0x8d are undefined in Windows-1252.
    head = bytes(range(0x80, 0x100)) * 4
    with pytest.raises(UnsupportedMediaType, match="not readable text"):
        detect_content_type(head, "notes.md", "text/markdown")


def test_control_characters_make_it_binary_even_without_nul() -> None:
    head = bytes([1, 2, 3, 4, 5, 6, 7, 8, 14, 15, 16]) * 20 + b"text"
    with pytest.raises(UnsupportedMediaType):
        detect_content_type(head, "x.txt", None)


def test_windows_1252_text_is_text() -> None:
    head = "Café crème, naïve façade – “quoted”.\nSecond line.".encode("cp1252")
    assert detect_content_type(head, "menu.txt", None) == PLAIN


def test_utf16_with_bom_is_text() -> None:
    head = "Hello, UTF-16 world.\n".encode("utf-16")
    assert detect_content_type(head, "wide.txt", None) == PLAIN


def test_a_head_cut_inside_a_utf8_character_is_still_text() -> None:
    data = ("é" * 10).encode("utf-8")
    assert detect_content_type(data[:-1], "accents.txt", None) == PLAIN


def test_html_is_sniffed_from_the_content() -> None:
    head = b"\xef\xbb\xbf  <!-- saved page -->\n<!DOCTYPE html><html><body>x</body></html>"
    assert detect_content_type(head, "page.txt", "text/plain") == HTML
    assert detect_content_type(b"<HTML lang='en'><p>hi</p>", "noname", None) == HTML


def test_html_by_extension_with_text_content() -> None:
    assert detect_content_type(b"<p>a fragment</p>", "frag.htm", None) == HTML
    assert detect_content_type(b"no tags at all", "page.HTML", None) == HTML


def test_html_extension_with_binary_content_is_refused() -> None:
    with pytest.raises(UnsupportedMediaType, match="PNG"):
        detect_content_type(PNG, "page.html", "text/html")


def test_markdown_by_extension() -> None:
    assert detect_content_type(b"# Title\n\nBody", "README.md", None) == MARKDOWN
    assert detect_content_type(b"# Title", "notes.markdown", "application/octet-stream") == MARKDOWN


def test_declared_type_is_used_only_when_name_and_content_do_not_decide() -> None:
    assert detect_content_type(b"# Title", "upload", "text/markdown; charset=utf-8") == MARKDOWN
    assert detect_content_type(b"<p>x</p>", "upload", "text/html") == HTML
    # A .txt name beats a declared type: the content is not sniffed as HTML.
    assert detect_content_type(b"<p>x</p>", "notes.txt", "text/html") == PLAIN


def test_plain_text_otherwise() -> None:
    assert detect_content_type(b"a,b\n1,2\n", "data.csv", "text/csv") == PLAIN
    assert detect_content_type(b"hello", "C:\\Users\\me\\notes", None) == PLAIN


def test_windows_path_in_the_filename_uses_the_last_part() -> None:
    assert detect_content_type(b"# T", "C:\\docs\\read.me.md", None) == MARKDOWN


def test_empty_content_gets_a_text_type_from_its_name() -> None:
    assert detect_content_type(b"", "empty.txt", None) == PLAIN
    assert detect_content_type(b"", "empty.md", None) == MARKDOWN
    with pytest.raises(UnsupportedMediaType):
        detect_content_type(b"", "empty.pdf", None)
