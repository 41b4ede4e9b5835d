"""Who is writing: an API key's or a staff account's role and area, or the command line.

Its own module because both :mod:`geo_service.domain.auth` (which makes one from a
key) and :mod:`geo_service.domain.audit` (which records one on every write) need it;
audit used to import it from auth while auth imported audit's ``SET_ACTOR``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class Principal:
    """Who is writing: the API key's (or the signed-in person's) role and optional area
    scope. One type for both, so every service's role and area checks treat a person
    exactly as a key with the same role and area."""

    key_id: int | None  # None: the command line, or a person signed in to the console
    name: str  # the key's name, or the account's sign-in name
    role: str
    area_code: str | None
    #: When the key stops working (expiry, or the end of its grace period); the keys
    #: it issues end no later.
    ends_at: dt.datetime | None = None
    #: The staff account signed in to the console (None: a key or the command line).
    user_id: int | None = None
