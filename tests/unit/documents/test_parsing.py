from __future__ import annotations

import pickle

import pytest

from app.documents.detect import HTML, MARKDOWN, PDF, PLAIN
from app.documents.parsing import DocumentParseError, parse_document
from tests.support.pdfs import encrypt_pdf, make_image_only_pdf, make_pdf


def test_pdf_text_is_extracted_page_by_page() -> None:
    data = make_pdf("The refund window is thirty days.", "Page two mentions llamas.")
    text = parse_document(data, PDF)
    assert "The refund window is thirty days." in text
    assert "Page two mentions llamas." in text
    # Pages become paragraphs, so the chunker can pack them.
    assert text.index("thirty") < text.index("\n\n") < text.index("llamas")


def test_pdf_encrypted_with_an_empty_user_password_opens() -> None:
    data = encrypt_pdf(make_pdf("Readable although restricted."), user_password="")
    assert "Readable although restricted." in parse_document(data, PDF)


def test_password_protected_pdf_is_refused() -> None:
    data = encrypt_pdf(make_pdf("Secret plans."), user_password="hunter2")
    with pytest.raises(DocumentParseError, match="password"):
        parse_document(data, PDF)


@pytest.mark.parametrize(
    "data",
    [
        b"%PDF-1.4\nthis is not the rest of a PDF",
        make_pdf("Some text that will be cut off.")[:300],
        b"%PDF-",
    ],
)
def test_corrupt_pdf_is_refused(data: bytes) -> None:
    with pytest.raises(DocumentParseError, match=r"corrupt|no pages"):
        parse_document(data, PDF)


def test_pdf_without_text_is_refused() -> None:
    with pytest.raises(DocumentParseError, match="no extractable text"):
        parse_document(make_image_only_pdf(), PDF)


def test_html_drops_scripts_and_styles_and_keeps_paragraphs() -> None:
    page = b"""<!DOCTYPE html><html><head><title>Menu</title>
    <style>body { color: red; }</style>
    <script>var secret = "do not index";</script></head>
    <body><h1>Lunch</h1><p>Soup   of the
    day &amp; bread.</p><script type="module">alert(1)</script>
    <div>Dessert<br>is cake.</div><noscript>Enable JS</noscript>
    <ul><li>Tea</li><li>Coffee</li></ul><table><tr><td>a</td><td>b</td></tr></table>
    </body></html>"""
    text = parse_document(page, HTML)
    assert "secret" not in text and "alert" not in text and "color" not in text
    assert "Enable JS" not in text
    assert text.split("\n\n") == [
        "Menu",
        "Lunch",
        "Soup of the day & bread.",
        "Dessert\nis cake.",
        "Tea",
        "Coffee",
        "a b",
    ]


def test_html_pre_keeps_its_lines() -> None:
    text = parse_document(b"<p>Code:</p><pre>line 1\n  line 2</pre>", HTML)
    assert "line 1\nline 2" in text


def test_html_meta_charset_is_honoured() -> None:
    page = '<html><head><meta charset="windows-1252"></head><body>Café</body></html>'
    assert parse_document(page.encode("cp1252"), HTML).endswith("Café")


def test_html_with_only_markup_is_empty() -> None:
    with pytest.raises(DocumentParseError, match="empty"):
        parse_document(b"<html><script>x = 1</script><style>p{}</style></html>", HTML)


def test_plain_text_with_bom_and_crlf() -> None:
    data = "\ufeffFirst line\r\n\r\n\r\n\r\nSecond paragraph  \r\n".encode()
    assert parse_document(data, PLAIN) == "First line\n\nSecond paragraph"


def test_markdown_is_kept_as_written() -> None:
    data = b"# Title\n\nSome *emphasis* and a [link](http://x)."
    assert parse_document(data, MARKDOWN) == data.decode()


def test_windows_1252_text_decodes() -> None:
    assert parse_document("naïve café".encode("cp1252"), PLAIN) == "naïve café"


def test_utf16_text_decodes() -> None:
    assert parse_document("wide text".encode("utf-16"), PLAIN) == "wide text"


def test_non_text_bytes_are_refused() -> None:
    with pytest.raises(DocumentParseError, match="not readable text"):
        parse_document(bytes(range(0x80, 0x100)), PLAIN)
    with pytest.raises(DocumentParseError, match="not readable text"):
        parse_document(b"text\x00with\x00nuls", MARKDOWN)


@pytest.mark.parametrize("data", [b"", b"   \n\t\r\n  ", "\ufeff".encode()])
def test_empty_or_whitespace_document_is_refused(data: bytes) -> None:
    with pytest.raises(DocumentParseError, match="empty"):
        parse_document(data, PLAIN)


def test_unknown_content_type_is_refused() -> None:
    with pytest.raises(DocumentParseError, match="image/png"):
        parse_document(b"whatever", "image/png")


def test_the_error_pickles_for_the_process_pool() -> None:
    error = pickle.loads(pickle.dumps(DocumentParseError("the PDF is corrupt")))
    assert isinstance(error, DocumentParseError)
    assert error.message == "the PDF is corrupt"
