"""HTTP for the courier app's words that the server owns: ``GET /v1/app/vocabulary``.

The ten ones' names and short badges (:mod:`geo_service.domain.catalogue`) and the
Chinese words of opening hours (:mod:`geo_service.hours.text`), so the app's
JavaScript copies neither (issue 25). The app asks for it as it starts and its service
worker keeps it, so the page still names things with no network after one visit. The
body is fixed for a deploy: built once, revalidated with its ``ETag`` (a 304 costs the
phone no body).
"""

from __future__ import annotations

import hashlib
from functools import cache

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict

from geo_service.domain.catalogue import BADGES, TEN_ONES
from geo_service.domain.encoding import dumps, etag_matches
from geo_service.hours.text import DAYS_ZH, OFF_ZH, TO_ZH

router = APIRouter(prefix="/v1/app", tags=["app"])


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AmenityWords(_Strict):
    """One of the ten ones as the app names it: full names and short badges."""

    code: str
    zh: str
    en: str
    badge_zh: str
    badge_en: str


class HoursWords(_Strict):
    """The Chinese of the simple OSM hours forms: day names, range word, "off"."""

    days_zh: dict[str, str]
    to_zh: str
    off_zh: str


class Vocabulary(_Strict):
    """The words the courier app shows that the server owns."""

    ten_ones: list[AmenityWords]
    hours: HoursWords


@cache
def _body() -> tuple[bytes, str]:
    """The vocabulary as JSON and its ETag, built once (it changes only with a deploy)."""
    words = Vocabulary(
        ten_ones=[AmenityWords(code=a.code, zh=a.label_zh, en=a.label_en,
                               badge_zh=BADGES[a.code][0], badge_en=BADGES[a.code][1])
                  for a in TEN_ONES],
        hours=HoursWords(days_zh=DAYS_ZH, to_zh=TO_ZH, off_zh=OFF_ZH))
    body = dumps(words.model_dump())
    return body, f'"{hashlib.sha256(body).hexdigest()[:20]}"'


@router.get("/vocabulary", response_model=Vocabulary,
            responses={304: {"description": "Unchanged since the ETag in If-None-Match"}},
            summary="The app's amenity names and badges and the words of opening hours")
def vocabulary(request: Request) -> Response:
    body, etag = _body()
    headers = {"Cache-Control": "no-cache", "ETag": etag}
    if etag_matches(request.headers.get("if-none-match", ""), etag):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)
