"""Drawing a poster PDF from the rows the service read: the part the API's routes and
the console's posters page share, so both obey the same limits.

The rows are read first, on a connection the caller has given back; the PDF is drawn
in a worker thread, at most ``poster_concurrency`` at once per process
(:class:`DrawSlots`, one per app, shared by the API and the console): past that the
request is refused at once with :class:`~geo_service.domain.errors.Busy` (429) rather
than queued. No web framework here: the caller passes the app's state and, for a test
print, the address its request came in on.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

from geo_service.domain.errors import Busy
from geo_service.infra.settings import Settings
from geo_service.posters import service
from geo_service.posters.model import PageSize, Poster


class DrawSlots:
    """How many poster PDFs this process draws at once (``poster_concurrency``)."""

    def __init__(self, limit: int) -> None:
        self.limit, self.busy = limit, 0

    @contextlib.contextmanager
    def take(self) -> Iterator[None]:
        """A slot for one PDF, or :class:`Busy` (no ``await`` in between: one loop)."""
        if self.busy >= self.limit:
            raise Busy(f"{self.limit} poster PDFs are being drawn; retry in "
                       f"{Busy.retry_after} s", [("code", "posters are busy; retry later")])
        self.busy += 1
        try:
            yield
        finally:
            self.busy -= 1


def slots_of(state: Any, settings: Settings) -> DrawSlots:
    """The app's draw slots (``app.state.poster_slots``), made on first use."""
    slots: DrawSlots | None = getattr(state, "poster_slots", None)
    if slots is None:
        slots = state.poster_slots = DrawSlots(settings.poster_concurrency)
    return slots


def _draw(posters: list[Poster], **options: Any) -> bytes:
    """:func:`~geo_service.posters.render.render_pdf` in the worker thread, where the
    first call also imports WeasyPrint (~1 s) without holding up the event loop."""
    from geo_service.posters.render import render_pdf

    return render_pdf(posters, **options)


async def draw_pdf(rows: list[dict[str, Any]], *, settings: Settings, slots: DrawSlots,
                   size: PageSize, allow_local: bool, fallback: str | None) -> bytes:
    """The PDF of ``rows``: QR codes on the public address (or, for a test print asked
    for by ``allow_local``, on ``fallback``), dated today in the union's time zone."""
    base, test_print = service.printable_base(settings.public_base_url, fallback,
                                              allow_local=allow_local)
    posters = service.posters_of(rows, base)
    today = dt.datetime.now(ZoneInfo(settings.default_timezone)).date()
    with slots.take():
        return await asyncio.to_thread(
            _draw, posters, size=size, printed_on=today, hotline=settings.union_hotline,
            test_print=test_print, font_file=settings.poster_font_file)


def filename(what: str, code: str, size: PageSize) -> str:
    """The PDF's file name: ``posters-area-460204-A4.pdf``."""
    return f"posters-{what}-{code}-{size.value}.pdf"
