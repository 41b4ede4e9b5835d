"""Who is writing: an API key's role and area, or the command line.

Its own module because both :mod:`geo_service.domain.auth` (which makes one from a
key) and :mod:`geo_service.domain.audit` (which records one on every write) need it;
audit used to import it from auth while auth imported audit's ``SET_ACTOR``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class Principal:
    """Who is writing: the API key's role and optional area scope."""

    key_id: int | None  # None: the command line, acting without a key
    name: str
    role: str
    area_code: str | None
    #: When the key stops working (expiry, or the end of its grace period); the keys
    #: it issues end no later.
    ends_at: dt.datetime | None = None
