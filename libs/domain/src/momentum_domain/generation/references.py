"""Reference PDFs: checked, stored, their text extracted and split into passages; the passages
most relevant to a lesson ground its prompt. Reading a PDF is the uploader's (the API's) part,
passed in as ``read_pdf``, so that only the API ships a PDF library."""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from momentum_domain.audit.service import RequestOrigin, audit
from momentum_domain.errors import Conflict, PayloadTooLarge, Unprocessable
from momentum_domain.generation.models import PdfReferenceChunk, PdfReferenceDocument
from momentum_domain.kit.pagination import Paged, PageRequest, paginate
from momentum_domain.kit.storage import ObjectStorage
from momentum_domain.kit.unit_of_work import commit

CHUNK_CHARS = 1200
CHUNK_OVERLAP = 200
_WORD = re.compile(r"[A-Za-z0-9]{3,}")


@dataclass(frozen=True, slots=True)
class ExtractedPdf:
    page_count: int
    text: str


ReadPdf = Callable[[bytes], ExtractedPdf]


def chunk_text(text: str, *, size: int = CHUNK_CHARS, overlap: int = CHUNK_OVERLAP) -> list[str]:
    """Overlapping passages, cut at whitespace where possible."""
    text = re.sub(r"\s+", " ", text).strip()
    chunks: list[str] = []
    start = 0
    while start < len(text):
        end = min(start + size, len(text))
        if end < len(text):
            cut = text.rfind(" ", start + size // 2, end)
            end = cut if cut > start else end
        chunks.append(text[start:end].strip())
        if end >= len(text):
            break
        start = max(end - overlap, start + 1)
    return [chunk for chunk in chunks if chunk]


class ReferenceService:
    async def upload(
        self,
        session: AsyncSession,
        storage: ObjectStorage,
        *,
        uploaded_by: uuid.UUID,
        filename: str,
        data: bytes,
        max_bytes: int,
        read_pdf: ReadPdf,
        origin: RequestOrigin | None,
    ) -> PdfReferenceDocument:
        """Store a PDF for jobs to ground lessons on, audited as ``uploaded_by``'s."""
        if not data:
            raise Unprocessable("The file is empty.")
        if len(data) > max_bytes:
            raise PayloadTooLarge(
                f"The file is larger than the {max_bytes // (1024 * 1024)} MiB limit."
            )
        sha256 = hashlib.sha256(data).hexdigest()
        duplicate = await session.scalar(
            select(PdfReferenceDocument.id).where(PdfReferenceDocument.sha256 == sha256)
        )
        if duplicate:
            raise Conflict(
                "This document was uploaded already.", extra={"document_id": str(duplicate)}
            )
        extracted = read_pdf(data)
        key = f"references/{sha256}.pdf"
        await storage.put_bytes(key, data, "application/pdf")
        document = PdfReferenceDocument(
            uploaded_by=uploaded_by,
            filename=filename[:255] or "document.pdf",
            storage_key=key,
            size_bytes=len(data),
            sha256=sha256,
            page_count=extracted.page_count,
            extracted_text=extracted.text,
        )
        session.add(document)
        await session.flush()
        session.add_all(
            PdfReferenceChunk(document_id=document.id, ordinal=index, text=chunk)
            for index, chunk in enumerate(chunk_text(extracted.text))
        )
        await session.flush()
        await audit.record(
            session, actor_id=uploaded_by, action="reference.upload",
            resource_type="reference_document", resource_id=document.id, origin=origin,
            details={"filename": document.filename, "sha256": document.sha256},
        )  # fmt: skip
        await commit(session)
        return document

    async def list_documents(
        self, session: AsyncSession, page: PageRequest
    ) -> Paged[PdfReferenceDocument]:
        """Newest first."""
        order = (PdfReferenceDocument.created_at.desc(), PdfReferenceDocument.id.desc())
        return await paginate(session, select(PdfReferenceDocument), page, order)

    async def relevant_passages(
        self,
        session: AsyncSession,
        document_ids: list[uuid.UUID],
        about: str,
        *,
        limit: int = 3,
    ) -> list[tuple[uuid.UUID, str]]:
        """The passages of these documents that best match the text, best first."""
        words = list(dict.fromkeys(w.lower() for w in _WORD.findall(about)))[:30]
        if not document_ids or not words:
            return []
        # Only alphanumeric words reach the query: "or" makes any of them a match.
        query = func.websearch_to_tsquery("english", literal(" or ".join(words)))
        rank = func.ts_rank_cd(PdfReferenceChunk.search_vector, query)
        rows = await session.execute(
            select(PdfReferenceChunk.document_id, PdfReferenceChunk.text)
            .where(
                PdfReferenceChunk.document_id.in_(document_ids),
                PdfReferenceChunk.search_vector.op("@@")(query),
            )
            .order_by(rank.desc(), PdfReferenceChunk.ordinal)
            .limit(limit)
        )
        return [(doc_id, text) for doc_id, text in rows.all()]


references = ReferenceService()
