"""Reading an uploaded reference PDF: only the API receives them, so only it needs pypdf."""

from __future__ import annotations

import io

from pypdf import PdfReader
from pypdf.errors import PdfReadError

from momentum_domain.errors import Unprocessable
from momentum_domain.generation.references import ExtractedPdf


def extract_pdf(data: bytes) -> ExtractedPdf:
    """Reject anything that is not a readable PDF."""
    if not data.startswith(b"%PDF-"):
        raise Unprocessable("The file is not a PDF.")
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise Unprocessable("Encrypted PDFs are not supported.")
        pages = [page.extract_text() or "" for page in reader.pages]
    except (PdfReadError, ValueError, KeyError, TypeError) as exc:
        raise Unprocessable(f"The PDF could not be read: {exc}") from exc
    text = "\n".join(pages).replace("\x00", "").strip()
    return ExtractedPdf(page_count=len(pages), text=text)
