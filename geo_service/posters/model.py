"""What a poster says and the paper it is printed on: plain values, no PDF engine.

Apart from :mod:`geo_service.posters.render` so the service and the router can name
them without importing WeasyPrint, which the app would otherwise load (~1 s) at every
start whether or not anyone prints; :mod:`~geo_service.posters.printing` imports the
renderer on first use.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class PageSize(StrEnum):
    """The paper a poster is printed on."""

    A4 = "A4"
    A5 = "A5"


@dataclass(frozen=True)
class Poster:
    """What one station's poster says; built from a station row by the service."""

    code: str
    name: str
    address: str | None
    district: str | None
    status: str
    opening_hours: str | None
    amenity_mask: int
    sample: bool
    checkin_url: str
