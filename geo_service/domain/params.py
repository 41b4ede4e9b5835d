"""The values the API and the command line accept, written once: patterns, lists, boxes,
instants and cursors.

No web framework here: routers declare their parameters with these patterns
(``web/deps.py``), and services and CLIs parse with the same functions, so a value
one side refuses the other refuses too, naming the same field.

Example
-------
>>> instant("2026-12-01T12:00", "at").isoformat()
'2026-12-01T12:00:00+08:00'
>>> decode_cursor(encode_cursor(42))
(42,)
"""

from __future__ import annotations

import datetime as dt
import math
from zoneinfo import ZoneInfo

from geo_service.domain.coords import Crs, to_wgs84
from geo_service.domain.errors import clip, invalid

CODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$"
AREA_PATTERN = r"^[0-9A-Za-z]{1,20}$"
#: Four decimal numbers; empty means no box. Their order and range are checked by
#: :func:`parse_bbox` (a rule a pattern cannot state).
BBOX_PATTERN = r"^$|^ *-?[0-9]+(\.[0-9]+)? *(, *-?[0-9]+(\.[0-9]+)? *){3}$"
#: Instants the service reasons about are written with a year from 1970 to 2199.
AT_PATTERN = r"^(19[7-9][0-9]|2[01][0-9]{2})-"
#: A keyset cursor: the last row's position (station lists, reports, the change feed).
CURSOR_PATTERN = r"^[0-9]{1,18}$"
#: A two-part cursor, e.g. (day ordinal, id) for a history in date order.
CURSOR2_PATTERN = r"^[0-9]{1,7}\.[0-9]{1,18}$"

#: The zone a naive time is read in: China has one civil time zone.
CHINA_TZ = "Asia/Shanghai"
FIRST_YEAR, LAST_YEAR = 1970, 2199


def list_pattern(allowed: set[str]) -> str:
    """A comma list of these values (or nothing) as a pattern, for the schema to state."""
    one = "(" + "|".join(sorted(allowed)) + ")"
    return f"^$|^{one}(,{one})*$"


def split_list(value: str | None, field: str, allowed: set[str]) -> list[str] | None:
    """Comma list → values, refusing unknown ones by name."""
    if value is None or not value.strip():
        return None
    items = [v.strip() for v in value.split(",") if v.strip()]
    unknown = [v for v in items if v not in allowed]
    if unknown:
        raise invalid(field, f"unknown value(s) {clip(', '.join(unknown))}; allowed: "
                             f"{', '.join(sorted(allowed))}")
    return list(dict.fromkeys(items))


def check_point(lat: float, lon: float) -> None:
    """Coordinates a phone could really send; the message hints at swapped axes."""
    for name, value in (("lat", lat), ("lon", lon)):
        if not math.isfinite(value):
            raise invalid(name, "must be a finite number")
    if not -90 <= lat <= 90:
        hint = " (lat and lon look swapped)" if -90 <= lon <= 90 else ""
        raise invalid("lat", f"must be between -90 and 90, got {lat}{hint}")
    if not -180 <= lon <= 180:
        raise invalid("lon", f"must be between -180 and 180, got {lon}")


def parse_bbox(value: str | None, crs: Crs) -> list[float] | None:
    """``minlon,minlat,maxlon,maxlat`` in ``crs`` → the same box in WGS-84; empty is none."""
    if value is None or not value.strip():
        return None
    try:
        parts = [float(v) for v in value.split(",")]
    except ValueError:
        raise invalid("bbox", "must be minlon,minlat,maxlon,maxlat numbers") from None
    if len(parts) != 4 or not all(math.isfinite(p) for p in parts):
        raise invalid("bbox", "must be four finite numbers: minlon,minlat,maxlon,maxlat")
    minlon, minlat, maxlon, maxlat = parts
    if not (-180 <= minlon < maxlon <= 180 and -90 <= minlat < maxlat <= 90):
        raise invalid("bbox", "corners out of range or min >= max")
    a = to_wgs84(minlon, minlat, crs)
    b = to_wgs84(maxlon, maxlat, crs)
    return [a[0], a[1], b[0], b[1]]


def at_most(value: float, cap: float, field: str) -> None:
    """A cap that settings own (so raising it in settings raises it everywhere)."""
    if value > cap:
        raise invalid(field, f"at most {cap:g}")


def parse_if_match(value: str | None) -> int | None:
    """``If-Match: "3"`` (or ``W/"3"``) → 3."""
    if value is None:
        return None
    raw = value.strip().removeprefix("W/").strip('"')
    if not raw.isdigit() or len(raw) > 9:
        raise invalid("If-Match", "must be the station's version as an ETag, e.g. \"3\"")
    return int(raw)


def to_instant(value: dt.datetime | str, default_tz: str = CHINA_TZ) -> dt.datetime:
    """:func:`instant` for pydantic validators: the problem as a ``ValueError``."""
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError("must be an ISO 8601 date-time, e.g. "
                             "2026-12-01T12:00:00+08:00") from None
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise ValueError(f"must be between {FIRST_YEAR} and {LAST_YEAR}")
    if value.tzinfo is None:
        value = value.replace(tzinfo=ZoneInfo(default_tz))
    return value


def instant(value: dt.datetime | str | None, field: str, *,
            default_tz: str = CHINA_TZ) -> dt.datetime:
    """The one rule for instants, in the API and the CLI alike.

    ``None`` is now. A time without an offset is read in ``default_tz`` (China
    time: a courier or planner in China writes "12:00" and means Beijing
    time). The year as written must lie in 1970–2199: nobody plans a rest stop
    outside it, and time-zone arithmetic overflows near years 1 and 9999.
    """
    if value is None:
        return dt.datetime.now(dt.UTC)
    try:
        return to_instant(value, default_tz)
    except ValueError as exc:
        raise invalid(field, str(exc)) from None


def encode_cursor(*positions: int) -> str:
    """A keyset cursor for the last row seen: its position(s), e.g. an id or (day, id)."""
    return ".".join(str(p) for p in positions)


def decode_cursor(cursor: str | None, field: str = "cursor", parts: int = 1) -> tuple[int, ...]:
    """Cursor (:data:`CURSOR_PATTERN`, or :data:`CURSOR2_PATTERN` for two parts) → the
    positions of the last row seen; empty starts at the beginning (zeros).

    Every string the pattern allows decodes, so the published schema and the
    behaviour agree; anything else is a 422 naming ``field``.
    """
    if not cursor:
        return (0,) * parts
    pieces = cursor.split(".")
    if len(pieces) != parts or not all(p.isascii() and p.isdigit() and len(p) <= 18
                                       for p in pieces):
        raise invalid(field, "not a cursor this service issued")
    return tuple(int(p) for p in pieces)
