"""Drawing a bulletin's PDF or workbook from its figures, off the event loop: the part the
API's routes, the console and the command line share, so all obey the same limits.

The figures are read first (:func:`geo_service.bulletin.service.read`) on a connection
the caller has given back; the drawing runs in a worker thread, in one of the draw
slots the posters use (``GEO_POSTER_CONCURRENCY`` per process, shared: a bulletin's
charts and PDF cost about what a district's posters do); past that the request is
refused at once with :class:`~geo_service.domain.errors.Busy` (429).
"""

from __future__ import annotations

import asyncio
from enum import StrEnum

from geo_service.bulletin.model import Bulletin
from geo_service.infra.settings import Settings
from geo_service.posters.printing import DrawSlots


class Format(StrEnum):
    """What a bulletin is drawn as."""

    PDF = "pdf"
    XLSX = "xlsx"


MEDIA_TYPES = {
    Format.PDF: "application/pdf",
    Format.XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def draw(b: Bulletin, fmt: Format, font_file: str) -> bytes:
    """The bulletin as ``fmt`` (blocking; imports matplotlib and WeasyPrint on first use)."""
    if fmt == Format.PDF:
        from geo_service.bulletin.render import render_pdf

        return render_pdf(b, font_file=font_file)
    from geo_service.bulletin.workbook import workbook_bytes

    return workbook_bytes(b)


async def draw_async(b: Bulletin, fmt: Format, *, settings: Settings,
                     slots: DrawSlots) -> bytes:
    """:func:`draw` in a worker thread, holding one of the process's draw slots."""
    with slots.take():
        return await asyncio.to_thread(draw, b, fmt, settings.poster_font_file)


def filename(area: str, month: str, fmt: Format) -> str:
    """The file's name: ``bulletin-460200-2026-11.pdf``."""
    return f"bulletin-{area}-{month}.{fmt.value}"
