"""The compressed blob store: each station's public columns, serialised once at load
as the answer's JSON and packed with a shared dictionary, and the splicing that turns a
blob plus a request's few computed values into one answer row.

Why: building a dict of ~35 columns and encoding it per row cost more than the walk
itself; at 1M stations the blobs must also fit in a few hundred MB.

Key order. A row is ``head`` (the blob's ``{"code":..,..`` without its ``}``), a comma
and ``tail`` (the computed keys, without its ``{``). This depends on two things that
:func:`spliced` states and ``tests/test_nearest_memory.py`` checks against the SQL path:
the head's keys are :data:`BLOB_COLUMNS` in the order the nearest query returns its
columns, and the tail's keys are ones the head never has (so no key appears twice).
A mobile station's ``current_stop`` is written in jsonb's key order (by length, then
bytes), as the SQL path decodes it (``index.Index._stops``).
"""

from __future__ import annotations

import functools
import itertools
import zlib
from collections.abc import Sequence
from typing import Any

import orjson

from geo_service.domain.catalogue import AMENITIES, TEN_ONES_MASK
from geo_service.domain.links import quoted_parts
from geo_service.stations.service import mask_fields

#: Amenities listed in bit order: a mask's list is its low half's then its high half's,
#: so each half is unfolded once (a few hundred distinct halves, not ~60,000 masks).
_BIT_ORDER = all(a.bit < b.bit for a, b in itertools.pairwise(AMENITIES))
_LOW = 0xFFFF


@functools.lru_cache(maxsize=4096)
def _codes_json(bits: int) -> bytes:
    """The JSON strings of the amenity codes of ``bits``, comma-separated."""
    return b",".join(orjson.dumps(c) for c in mask_fields(bits)[0])


@functools.lru_cache(maxsize=2048)
def _ten_ones_json(ten_bits: int) -> orjson.Fragment:
    return orjson.Fragment(orjson.dumps(mask_fields(ten_bits)[1]))


def mask_json(mask: int) -> tuple[orjson.Fragment, orjson.Fragment]:
    """``amenities`` and ``ten_ones`` of a mask as JSON, as ``mask_fields`` gives them."""
    if _BIT_ORDER:
        low, high = _codes_json(mask & _LOW), _codes_json(mask & ~_LOW)
        codes = low + b"," + high if low and high else low or high
    else:
        codes = _codes_json(mask)
    return orjson.Fragment(b"[" + codes + b"]"), _ten_ones_json(mask & TEN_ONES_MASK)


#: The public columns in the order the nearest query returns them; lon/lat come from
#: the arrays (the station's point or a mobile station's stop), the rest from the blob.
COLUMNS = ("code", "name", "name_en", "address", "province", "province_code", "city",
           "city_code", "district", "district_code", "street", "street_code", "lon", "lat",
           "host_type", "status", "opening_hours", "timezone", "official_workdays", "phone",
           "floor_area_m2", "seats", "opened_on", "amenity_mask", "last_verified_on", "sample",
           "created_at", "updated_at", "deleted_at", "version", "reported_closed_at",
           "last_confirmed_at", "awards")
BLOB_COLUMNS = tuple(c for c in COLUMNS if c not in ("lon", "lat"))


class Packer:
    """Compresses the public blobs with a dictionary of sample blobs: a station's blob is
    ~800 bytes of JSON, mostly the same keys, zones and phrasing as its neighbours', and
    packs to ~90 with 32 KB of samples as the dictionary (1M stations must fit in 500 MB).
    Unpacking costs ~2 µs a row."""

    def __init__(self, samples: Sequence[bytes]) -> None:
        self.zdict = b"".join(samples)[-32768:]
        self._c = zlib.compressobj(level=6, wbits=-15, memLevel=8, zdict=self.zdict)

    def pack(self, raw: bytes) -> bytes:
        c = self._c.copy()
        return c.compress(raw) + c.flush()

    def unpack(self, packed: bytes | bytearray) -> bytes:
        return zlib.decompressobj(wbits=-15, zdict=self.zdict).decompress(packed)


#: A blob is the row's static JSON (``{`` and its columns but no ``}``), this byte, then
#: :data:`META` as a JSON list: orjson escapes every newline inside a string, so the
#: last one separates them.
SEP = b"\n"
#: The columns a request needs as values (sort key, open state), not as JSON; then
#: ``reported_closed`` and the links' escaped label and address (``links.quoted_parts``).
META = ("code", "status", "opening_hours", "timezone", "official_workdays", "host_type")


def public_json(row: dict[str, Any]) -> bytes:
    """A row's public columns (all but lon/lat and the mask, which answers unfold) as
    the response serialises them, and the few a request computes with: serialised once,
    at load, so that a request splices them instead of building and encoding a dict."""
    head = orjson.dumps({c: (row[c] or []) if c == "awards" else row[c]
                         for c in BLOB_COLUMNS if c != "amenity_mask"})
    meta = [*(row[c] for c in META), row["reported_closed_at"] is not None,
            *quoted_parts(row["code"], row["name"], row["address"])]
    return head[:-1] + SEP + orjson.dumps(meta)



def opened(raw: bytes) -> tuple[bytes, list[Any]]:
    """An unpacked blob's head (its static JSON, unclosed) and its :data:`META` values."""
    cut = raw.rindex(SEP)
    return raw[:cut], orjson.loads(raw[cut + 1:])


def spliced(head: bytes, tail: bytes) -> bytes:
    """One answer row: the blob's ``head`` continued by the JSON object ``tail``'s keys.

    Valid JSON only while no key of ``tail`` is among :data:`BLOB_COLUMNS` (else a key
    would appear twice), and in the SQL path's key order only while ``BLOB_COLUMNS``
    follow the nearest query's columns and ``tail`` follows ``decorate_nearest``;
    ``tests/test_nearest_memory.py`` compares both with the SQL path's rows."""
    return head + b"," + tail[1:]
