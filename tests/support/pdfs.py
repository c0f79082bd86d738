"""Real PDFs for the tests, built with reportlab (text), pypdf (encryption) or by hand."""

from __future__ import annotations

import io

from pypdf import PdfReader, PdfWriter
from reportlab.pdfgen import canvas


def make_pdf(*pages: str) -> bytes:
    """A PDF with one page per string, each line of it drawn as text."""
    buf = io.BytesIO()
    pdf = canvas.Canvas(buf)
    for page in pages:
        y = 750
        for line in page.split("\n"):
            pdf.drawString(72, y, line)
            y -= 16
        pdf.showPage()
    pdf.save()
    return buf.getvalue()


def make_image_only_pdf() -> bytes:
    """A page with vector shapes and no text: what a scan looks like to a text extractor."""
    buf = io.BytesIO()
    pdf = canvas.Canvas(buf)
    pdf.rect(72, 72, 200, 200, fill=1)
    pdf.circle(300, 400, 50)
    pdf.showPage()
    pdf.save()
    return buf.getvalue()


def encrypt_pdf(data: bytes, *, user_password: str, owner_password: str = "owner") -> bytes:
    # RC4 needs no optional crypto dependency in pypdf.
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    writer.encrypt(user_password=user_password, owner_password=owner_password, algorithm="RC4-128")
    buf = io.BytesIO()
    writer.write(buf)
    return buf.getvalue()
