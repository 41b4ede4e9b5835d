"""Nearest from memory: an exact in-process index of the stations, kept fresh.

Each API process loads every station into compact arrays (unit-sphere points in a
k-d tree, the filters' columns as small integers, the compiled hours interned
once per distinct rule and zone, the public columns as one compressed blob per
station, already serialised as the answer's JSON) and answers
``/v1/stations/nearest`` without a database round trip.
The SQL path (``service.nearest``) stays: it answers until the index is loaded,
whenever the index is not provably fresh, and it is the oracle the equality test
compares against.

Exactness is proved like the SQL path proves it: the k-d tree yields candidates
in chord (so sphere) order; spheroid distances are computed with GeographicLib
(pyproj, the algorithm PostGIS's ``ST_Distance(.., true)`` uses); the walk stops
once the nearest unseen station, shrunk by the worst spheroid/sphere ratio, is
farther than the k-th qualifying one, else it widens (up to the whole radius).

Freshness: migration 0009 notifies ``geo_station`` on every write that can change
an answer. One listening connection, straight to the primary
(``Settings.nearest_index_url``: a transaction pooler keeps no session to listen on),
reloads the notified stations by id; every ``ping_interval_s`` it notifies itself a
ping. Notifications arrive in commit order, so once a ping has come back and
everything before it is applied, the index holds every commit made before the ping
was sent: its lag is at most the age of that ping. Requests use the index only while
that age is within ``max_lag_s`` and, with ``X-Min-Change-Seq``, only once that change
is applied.
Otherwise (loading, lagging, database lost) they go to SQL.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import ctypes
import dataclasses
import datetime as dt
import functools
import itertools
import logging
import math
import os
import sys
import time
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import orjson
import psycopg
from psycopg.rows import dict_row
from pyproj import Geod
from scipy.spatial import cKDTree

from geo_service.domain.catalogue import AMENITIES, TEN_ONES_MASK, HostType, Status, amenity_mask
from geo_service.domain.coords import Crs, from_wgs84, from_wgs84_array
from geo_service.domain.encoding import dumps
from geo_service.domain.links import converted_links, platform_points, quoted_parts
from geo_service.stations import queries as q
from geo_service.stations.service import (
    SPHEROID_OVER_SPHERE_MIN,
    NearestParams,
    hours_provisional,
    mask_fields,
    open_and_next,
)

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


def _mask_json(mask: int) -> tuple[orjson.Fragment, orjson.Fragment]:
    """``amenities`` and ``ten_ones`` of a mask as JSON, as ``mask_fields`` gives them."""
    if _BIT_ORDER:
        low, high = _codes_json(mask & _LOW), _codes_json(mask & ~_LOW)
        codes = low + b"," + high if low and high else low or high
    else:
        codes = _codes_json(mask)
    return orjson.Fragment(b"[" + codes + b"]"), _ten_ones_json(mask & TEN_ONES_MASK)

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: The sphere PostGIS measures ``<->`` on (mean radius of WGS-84); only ratios matter.
EARTH_MEAN_RADIUS_M = 6_371_008.8
_GEOD = Geod(ellps="WGS84")
#: Walks that need more candidates than this read the whole radius ball at once.
_BALL_AT = 4096

#: The public columns in the order the nearest query returns them; lon/lat come from
#: the arrays (the station's point or a mobile station's stop), the rest from the blob.
COLUMNS = ("code", "name", "name_en", "address", "province", "province_code", "city",
           "city_code", "district", "district_code", "street", "street_code", "lon", "lat",
           "host_type", "status", "opening_hours", "timezone", "official_workdays", "phone",
           "floor_area_m2", "seats", "opened_on", "amenity_mask", "last_verified_on", "sample",
           "created_at", "updated_at", "deleted_at", "version", "reported_closed_at",
           "last_confirmed_at", "awards")
_BLOB_COLUMNS = tuple(c for c in COLUMNS if c not in ("lon", "lat"))
_STATUS_CODE = {s.value: i for i, s in enumerate(Status)}
#: Amenity masks fit 32 bits while the catalogue has fewer than 31 items (4 B a station).
_MASK_DTYPE = np.int32 if max(a.bit for a in AMENITIES) < 31 else np.int64
_HOST_CODE = {h.value: i for i, h in enumerate(HostType)}
_OPEN = _STATUS_CODE[Status.OPEN.value]
_UNKNOWN, _CLOSED, _OPEN_STATE = -1, 0, 1


def unit_xyz(lon: Any, lat: Any) -> FloatArray:
    """Points on the unit sphere: chord order there is great-circle order."""
    lam, phi = np.radians(lon), np.radians(lat)
    return np.column_stack((np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)))


def _unit_point(lon: float, lat: float) -> FloatArray:
    """:func:`unit_xyz` of one point, without the array machinery (every request)."""
    lam, phi = math.radians(lon), math.radians(lat)
    return np.array((math.cos(phi) * math.cos(lam), math.cos(phi) * math.sin(lam),
                     math.sin(phi)))


def _chord_to_sphere_m(chord: float) -> float:
    return 2.0 * EARTH_MEAN_RADIUS_M * math.asin(min(chord / 2.0, 1.0))


def _radius_chord(radius_m: float) -> float:
    """The chord beyond which no station can be within ``radius_m`` on the spheroid."""
    half_angle = min(radius_m / SPHEROID_OVER_SPHERE_MIN / (2.0 * EARTH_MEAN_RADIUS_M),
                     math.pi / 2)
    return 2.0 * math.sin(half_angle) * (1.0 + 1e-9) + 1e-12


def _in_range(r: Any, x: Any) -> bool:
    """``range @> x`` for a psycopg Range (either bound may be open or infinite)."""
    if r.isempty:
        return False
    lo, hi = r.lower, r.upper
    if lo is not None and (x < lo or (x == lo and not r.lower_inc)):
        return False
    return not (hi is not None and (x > hi or (x == hi and not r.upper_inc)))


def _in_multirange(ranges: Sequence[Any] | None, x: Any) -> bool | None:
    if ranges is None:
        return None
    return any(_in_range(r, x) for r in ranges)


def minute_of_week(at: dt.datetime, tz: str) -> int:
    """``geo_minute_of_week``: minutes since Monday 00:00 in ``tz``."""
    local = at.astimezone(ZoneInfo(tz))
    return (local.isoweekday() - 1) * 1440 + local.hour * 60 + local.minute


@dataclass(frozen=True)
class Hours:
    """A compiled rule in one zone (interned: most stations share a handful)."""

    kind: str
    weekly: tuple[tuple[int, int], ...] | None  # half-open minute-of-week ranges
    periods: tuple[Any, ...] | None
    unknown: tuple[Any, ...] | None
    valid_until: dt.datetime | None
    tz: str

    @staticmethod
    def of(kind: str, minutes: Any, periods: Any, unknown: Any, valid_until: Any,
           tz: str) -> Hours:
        weekly = None
        if minutes is not None:
            # int4multirange is canonical: [lo, hi), never empty, sorted.
            weekly = tuple((int(r.lower), int(r.upper)) for r in minutes)
        return Hours(kind, weekly, None if periods is None else tuple(periods),
                     None if unknown is None else tuple(unknown), valid_until, tz)

    def weekly_open(self, minute: int) -> bool | None:
        if self.weekly is None:
            return None
        i = bisect.bisect_right(self.weekly, (minute, math.inf)) - 1
        return i >= 0 and self.weekly[i][0] <= minute < self.weekly[i][1]

    def state(self, at: dt.datetime, minute: int) -> bool | None:
        """``geo_open_state``: True, False, or None when nobody can tell."""
        if self.kind == "weekly":
            return self.weekly_open(minute)
        if self.kind == "dated" and self.valid_until is not None and self.valid_until > at \
                and not _in_multirange(self.unknown, at):
            return bool(_in_multirange(self.periods, at))
        return None

    def is_open(self, at: dt.datetime, minute: int) -> bool:
        """``coalesce(geo_is_open(..), false)``, the test of a mobile stop."""
        if self.kind == "weekly":
            return bool(self.weekly_open(minute))
        return bool(_in_multirange(self.periods, at))


@dataclass(frozen=True)
class Stop:
    station_id: int
    seq: int
    name: str
    lon: float
    lat: float
    opening_hours: str
    valid_from: dt.date | None
    valid_to: dt.date | None
    hours: Hours


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
#: :data:`_META` as a JSON list: orjson escapes every newline inside a string, so the
#: last one separates them.
_SEP = b"\n"
#: The columns a request needs as values (sort key, open state), not as JSON; then
#: ``reported_closed`` and the links' escaped label and address (``links.quoted_parts``).
_META = ("code", "status", "opening_hours", "timezone", "official_workdays", "host_type")


def public_json(row: dict[str, Any]) -> bytes:
    """A row's public columns (all but lon/lat and the mask, which answers unfold) as
    the response serialises them, and the few a request computes with: serialised once,
    at load, so that a request splices them instead of building and encoding a dict."""
    head = orjson.dumps({c: (row[c] or []) if c == "awards" else row[c]
                         for c in _BLOB_COLUMNS if c != "amenity_mask"})
    meta = [*(row[c] for c in _META), row["reported_closed_at"] is not None,
            *quoted_parts(row["code"], row["name"], row["address"])]
    return head[:-1] + _SEP + orjson.dumps(meta)


@dataclass(frozen=True)
class Entry:
    """One station as the index holds it: the filters' values and the packed public blob."""

    id: int
    lon: float
    lat: float
    status: int
    host: int
    mask: int
    fixed: bool
    hours: Hours
    blob: bytes

    @staticmethod
    def of(row: dict[str, Any], hours: Hours, packer: Packer) -> Entry:
        """From a row of ``INDEX_STATIONS``."""
        return Entry(int(row["id"]), float(row["lon"]), float(row["lat"]),
                     _STATUS_CODE.get(row["status"], -1), _HOST_CODE.get(row["host_type"], -1),
                     int(row["amenity_mask"]), not row["scheduled"], hours,
                     packer.pack(public_json(row)))


def hours_of(row: dict[str, Any]) -> Hours:
    """The compiled hours of a row that carries them (``INDEX_HOURS``, ``.._BY_ID``)."""
    return Hours.of(row["hours_kind"], row["open_minutes"], row["open_periods"],
                    row["unknown_periods"], row["hours_valid_until"], row["timezone"])


class Index:
    """The stations in arrays. Slots ``[0, n_main)`` are in the k-d tree; edits retire a
    slot and append a new one after them (searched by brute force) until the spare
    room runs out and the keeper builds a compacted index."""

    def __init__(self, entries: Iterable[Entry], n: int, stops: Sequence[Stop],
                 packer: Packer, spare: int | None = None) -> None:
        self.packer = packer
        cap = n + (spare if spare is not None else max(1024, n // 8))
        self.n, self.cap, self.live = 0, cap, 0
        self.xyz = np.zeros((cap, 3))
        self.lon = np.zeros(cap)
        self.lat = np.zeros(cap)
        #: the points in GCJ-02 and BD-09 for the deep links (converted on arrays once)
        self.gcj = np.zeros((cap, 2))
        self.bd = np.zeros((cap, 2))
        self.alive = np.zeros(cap, dtype=bool)
        self.status = np.full(cap, -1, dtype=np.int8)
        self.host = np.full(cap, -1, dtype=np.int8)
        self.mask: npt.NDArray[np.signedinteger[Any]] = np.zeros(cap, dtype=_MASK_DTYPE)
        self.ten = np.zeros(cap, dtype=np.int8)
        self.fixed = np.zeros(cap, dtype=bool)  # not scheduled: found by the walk
        self.hours = np.zeros(cap, dtype=np.int32)
        self.ids = np.zeros(cap, dtype=np.int64)
        #: the packed blobs end to end; slot i's is buf[off[i]:off[i + 1]]
        self.buf = bytearray()
        self.off = np.zeros(cap + 1, dtype=np.int64)
        self.slot_of: npt.NDArray[np.int32] = np.full(1024, -1, dtype=np.int32)
        self.hours_table: list[Hours] = []
        self._hours_id: dict[Hours, int] = {}
        #: per filter, the share of tree neighbours that qualified lately (see _walk)
        self._share: dict[tuple[Any, ...], float] = {}
        for entry in entries:
            self._put(entry)
        self.n_main = self.n
        self._convert(0)
        self.tree = cKDTree(self.xyz[: self.n]) if self.n else None
        self.stops: dict[int, list[Stop]] = {}
        for stop in stops:
            self.stops.setdefault(stop.station_id, []).append(stop)
        self._stop_arrays()

    # --- building ---------------------------------------------------------------------------

    def _intern(self, h: Hours) -> int:
        found = self._hours_id.get(h)
        if found is None:
            found = self._hours_id[h] = len(self.hours_table)
            self.hours_table.append(h)
        return found

    def _put(self, e: Entry) -> None:
        """Write ``e`` into the next free slot; the caller retires its old slot."""
        i = self.n
        if i >= self.cap:
            raise IndexError("no spare slot")
        self.n += 1
        self.ids[i] = e.id
        self.lon[i], self.lat[i] = e.lon, e.lat
        self.alive[i] = True
        self.live += 1
        self.status[i], self.host[i] = e.status, e.host
        self.mask[i] = e.mask
        self.ten[i] = (e.mask & TEN_ONES_MASK).bit_count()
        self.fixed[i] = e.fixed
        self.hours[i] = self._intern(e.hours)
        self.buf += e.blob
        self.off[i + 1] = len(self.buf)
        if e.id >= self.slot_of.size:
            grown = np.full(max(e.id + 1, self.slot_of.size * 2), -1, dtype=np.int32)
            grown[: self.slot_of.size] = self.slot_of
            self.slot_of = grown
        self.slot_of[e.id] = i

    def _convert(self, start: int) -> None:
        """Unit-sphere, GCJ-02 and BD-09 coordinates of the slots from ``start`` on."""
        lon, lat = self.lon[start: self.n], self.lat[start: self.n]
        self.xyz[start: self.n] = unit_xyz(lon, lat)
        for crs, out in ((Crs.GCJ02, self.gcj), (Crs.BD09, self.bd)):
            x, y = from_wgs84_array(lon, lat, crs)
            out[start: self.n, 0], out[start: self.n, 1] = x, y

    def entry(self, slot: int) -> Entry:
        """Slot ``slot`` as an entry again (compaction)."""
        return Entry(int(self.ids[slot]), float(self.lon[slot]), float(self.lat[slot]),
                     int(self.status[slot]), int(self.host[slot]), int(self.mask[slot]),
                     bool(self.fixed[slot]), self.hours_table[int(self.hours[slot])],
                     self.packed(slot))

    def packed(self, slot: int) -> bytes:
        return bytes(self.buf[self.off[slot]: self.off[slot + 1]])

    def _stop_arrays(self) -> None:
        flat = [s for group in self.stops.values() for s in group]
        self.stop_list = flat
        self.stop_xyz = unit_xyz([s.lon for s in flat], [s.lat for s in flat]) if flat \
            else np.zeros((0, 3))

    @property
    def full(self) -> bool:
        return self.n >= self.cap

    def slot(self, station_id: int) -> int:
        if station_id >= self.slot_of.size:
            return -1
        return int(self.slot_of[station_id])

    def apply(self, entries: Sequence[Entry], gone: Iterable[int],
              stops: dict[int, list[Stop]] | None) -> None:
        """Replace the stations in ``entries``, drop those in ``gone`` and, for every
        station id in ``stops``, replace its stops. Needs ``n + len(entries) <= cap``."""
        for sid in gone:
            old = self.slot(sid)
            if old >= 0:
                self.alive[old] = False
                self.live -= 1
                self.slot_of[sid] = -1
        start = self.n
        for e in entries:
            old = self.slot(e.id)
            if old >= 0:
                self.alive[old] = False
                self.live -= 1
            self._put(e)
        self._convert(start)
        if stops is not None:
            for sid, group in stops.items():
                if group:
                    self.stops[sid] = group
                else:
                    self.stops.pop(sid, None)
            self._stop_arrays()

    def live_rows(self) -> int:
        return self.live

    def nbytes(self) -> int:
        """Bytes held: the arrays, the tree and the packed blobs (not the few hours)."""
        arrays = sum(a.nbytes for a in (self.xyz, self.lon, self.lat, self.alive, self.status,
                                        self.host, self.mask, self.ten, self.fixed, self.hours,
                                        self.ids, self.slot_of, self.off, self.gcj, self.bd))
        tree = 0
        if self.tree is not None:
            # cKDTree keeps a copy of the points, an index and ~2 nodes per leaf of 16.
            tree = self.tree.data.nbytes + self.tree.indices.nbytes + self.tree.size * 72
        return int(arrays + tree + sys.getsizeof(self.buf))

    # --- querying ---------------------------------------------------------------------------

    def _states(self, slots: IntArray, at: dt.datetime,
                minutes: dict[str, int]) -> npt.NDArray[np.int8]:
        """Open state at ``at`` of each slot: 1 open, 0 closed, -1 unknown; each distinct
        rule is evaluated once (a plain dict: cheaper than ``np.unique`` on a walk's few
        dozen slots)."""
        table = self.hours_table
        memo: dict[int, int] = {}
        out = []
        for h in self.hours[slots].tolist():
            state = memo.get(h)
            if state is None:
                hours = table[h]
                minute = minutes.get(hours.tz)
                if minute is None:
                    minute = minutes[hours.tz] = minute_of_week(at, hours.tz)
                s = hours.state(at, minute)
                state = memo[h] = _UNKNOWN if s is None else (_OPEN_STATE if s else _CLOSED)
            out.append(state)
        return np.array(out, dtype=np.int8)

    def _station_filter(self, slots: IntArray, f: _Filter) -> npt.NDArray[np.bool_]:
        # Codes are small: a lookup table per query beats np.isin ~10x on short arrays.
        ok = self.alive[slots] & f.statuses[self.status[slots] + 1]
        if f.want:
            ok &= (self.mask[slots] & f.want) == f.want
        if f.hosts is not None:
            ok &= f.hosts[self.host[slots] + 1]
        if f.min_ten_ones:
            ok &= self.ten[slots] >= f.min_ten_ones
        return ok

    def nearest_json(self, p: NearestParams, crs: Crs) -> list[bytes]:
        """``service.nearest_results`` from memory, each row as its JSON: the same rows in
        the same order. A row is spliced from its blob's JSON and the few values the
        request decides (point, distance, bearing, open state, links), never built as a
        dict of all its columns and encoded again."""
        f = _Filter.of(p)
        qxyz = _unit_point(p.lon, p.lat)
        chord_r = _radius_chord(p.radius_m)
        minutes: dict[str, int] = {}
        minute = p.at.replace(second=0, microsecond=0)
        slots, dist, az = self._walk(p, f, qxyz, chord_r, minutes)
        picked = _first(dist, p.k)
        keyed: list[tuple[float, str, bytes]] = []
        if picked:
            # Each column gathered once and made plain Python values (numpy scalars cost
            # ~0.1 µs an access, a dozen per row).
            sl = slots[picked]
            buf = self.buf
            for d, a, state, lon, lat, g, b, mask, start, end in zip(
                    dist[picked].tolist(), az[picked].tolist(),
                    self._states(sl, p.at, minutes).tolist(), self.lon[sl].tolist(),
                    self.lat[sl].tolist(), self.gcj[sl].tolist(), self.bd[sl].tolist(),
                    self.mask[sl].tolist(), self.off[sl].tolist(), self.off[sl + 1].tolist(),
                    strict=True):
                code, row = self._row(buf[start:end], mask, lon, lat, (g, b), d, a,
                                      None if state == _UNKNOWN else state == _OPEN_STATE,
                                      p, crs, minute, None)
                keyed.append((d, code, row))
        # Equal distances go by code, as in the SQL path.
        keyed.sort(key=lambda t: (t[0], t[1]))
        del keyed[p.k:]
        stops = self._stops(p, f, qxyz, chord_r, minutes, crs, minute)
        if stops:
            keyed = sorted(keyed + stops, key=lambda t: (t[0], t[1]))[: p.k]
        return [row for _, _, row in keyed]

    def nearest_results(self, p: NearestParams, crs: Crs) -> list[dict[str, Any]]:
        """:meth:`nearest_json` decoded, for callers that want the rows' values."""
        return [orjson.loads(row) for row in self.nearest_json(p, crs)]

    def _walk(self, p: NearestParams, f: _Filter, qxyz: FloatArray, chord_r: float,
              minutes: dict[str, int]) -> tuple[IntArray, FloatArray, FloatArray]:
        """The qualifying fixed stations among which the true k nearest are proven to be,
        with their spheroid distances and azimuths from the query point."""
        delta = np.arange(self.n_main, self.n, dtype=np.int64)
        if delta.size:
            close = np.sum((self.xyz[delta] - qxyz) ** 2, axis=1) <= chord_r * chord_r
            delta = delta[close]
        # As many tree neighbours as should hold 1.5k + 5 qualifying ones, from the share
        # that qualified for this filter lately (a filtered walk otherwise starts too
        # small, then queries the tree again with 4x). Any start gives the same answer;
        # this one needs a second query in ~0.2% of walks (k + 5: ~6%, 2k + 10: none, and
        # 45% more neighbours, measured at 1M).
        base = p.k + p.k // 2 + 5
        share = max(self._share.get(f.key, 1.0), 1 / 64)
        kk = max(base, min(math.ceil(base / share), _BALL_AT - 1))
        while True:
            exhausted = True
            main = np.zeros(0, dtype=np.int64)
            last_chord = math.inf
            if self.tree is not None and self.n_main:
                if kk >= min(_BALL_AT, self.n_main):
                    main = np.asarray(self.tree.query_ball_point(qxyz, chord_r), dtype=np.int64)
                else:
                    d, i = self.tree.query(qxyz, kk, distance_upper_bound=chord_r)
                    found = i < self.n_main
                    main = i[found].astype(np.int64)
                    if found.all():
                        exhausted, last_chord = False, float(d[-1])
            cand = np.concatenate((main, delta))
            cand = cand[self._station_filter(cand, f) & self.fixed[cand]]
            if f.open_now and cand.size:
                states = self._states(cand, p.at, minutes)
                ok = (self.status[cand] == _OPEN) & (
                    (states == _OPEN_STATE) | ((states == _UNKNOWN) & p.include_unknown))
                cand = cand[ok]
            if not exhausted and main.size:
                self._share[f.key] = 0.8 * self._share.get(f.key, 1.0) + \
                    0.2 * cand.size / main.size
            if cand.size:
                n = cand.size
                az, _, dist = _GEOD.inv(np.full(n, p.lon), np.full(n, p.lat),
                                        self.lon[cand], self.lat[cand])
                dist, az = np.asarray(dist, dtype=np.float64), np.asarray(az, dtype=np.float64)
                inside = dist <= p.radius_m
                cand, dist, az = cand[inside], dist[inside], az[inside]
            else:
                dist = az = np.zeros(0)
            if exhausted:
                return cand, dist, az
            if cand.size >= p.k:
                kth = float(np.partition(dist, p.k - 1)[p.k - 1])
                if _chord_to_sphere_m(last_chord) * SPHEROID_OVER_SPHERE_MIN * (1 - 1e-9) > kth:
                    return cand, dist, az
            kk *= 4

    def _row(self, blob: bytearray, mask: int, lon: float, lat: float,
             conv: tuple[list[float], list[float]] | None, dist: float, az: float,
             is_open: bool | None, p: NearestParams, crs: Crs, minute: dt.datetime,
             stop: dict[str, Any] | None) -> tuple[str, bytes]:
        """One answer row's code and JSON, as ``decorate_nearest`` makes it from the SQL
        path's row: the blob's columns, the point (``lon``/``lat``: the station's, with
        its GCJ-02 and BD-09 forms ``conv`` converted at load, or its stop's) in ``crs``,
        the mask's fields, distance, bearing, open state, next change, links."""
        raw = self.packer.unpack(blob)
        cut = raw.rindex(_SEP)
        code, status, hours, tz, workdays, host, reported, label, addr = \
            orjson.loads(raw[cut + 1:])
        out_lon, out_lat = (lon, lat) if crs is Crs.WGS84 else from_wgs84(lon, lat, crs)
        meta = {"status": status, "opening_hours": hours, "timezone": tz, "host_type": host,
                "official_workdays": workdays, "current_stop": stop}
        open_now, next_change = open_and_next(meta, is_open, minute)
        provisional = hours_provisional(meta, open_now, minute)
        if conv is not None:
            g, b = conv
            links = converted_links(label, addr, (lon, lat), (g[0], g[1]), (b[0], b[1]))
        else:
            links = converted_links(label, addr, (lon, lat), *platform_points(lon, lat))
        amenities, ten_ones = _mask_json(mask)
        bearing = _bearing(p, lon, lat, az)
        tail = dumps({
            "lon": round(out_lon, 7), "lat": round(out_lat, 7),
            "amenities": amenities, "ten_ones": ten_ones, "distance_m": round(dist, 2),
            "bearing_deg": None if bearing is None else round(bearing, 1),
            "current_stop": stop, "open_now": open_now, "next_change": next_change,
            "hours_provisional": provisional, "links": links, "crs": crs.value,
            "reported_closed": reported})
        return code, raw[:cut] + b"," + tail[1:]

    def _stops(self, p: NearestParams, f: _Filter, qxyz: FloatArray, chord_r: float,
               minutes: dict[str, int], crs: Crs,
               minute: dt.datetime) -> list[tuple[float, str, bytes]]:
        """Mobile stations at their current stop within the radius (``NEAREST_STOPS``),
        as (distance, code, answer row)."""
        if not self.stop_list:
            return []
        close = np.flatnonzero(np.sum((self.stop_xyz - qxyz) ** 2, axis=1) <= chord_r * chord_r)
        out = []
        for j in close:
            stop = self.stop_list[int(j)]
            slot = self.slot(stop.station_id)
            if slot < 0:
                continue
            one = np.array([slot], dtype=np.int64)
            if not self._station_filter(one, f)[0] or self.status[slot] != _OPEN:
                continue
            tz = stop.hours.tz
            local = p.at.astimezone(ZoneInfo(tz)).date()
            if (stop.valid_from is not None and stop.valid_from > local) or \
                    (stop.valid_to is not None and stop.valid_to < local):
                continue
            at_minute = minutes.get(tz)
            if at_minute is None:
                at_minute = minutes[tz] = minute_of_week(p.at, tz)
            if not stop.hours.is_open(p.at, at_minute):
                continue
            az, _, dist = _GEOD.inv(p.lon, p.lat, stop.lon, stop.lat)
            if dist > p.radius_m:
                continue
            # jsonb's key order (by length, then bytes), as the SQL path decodes it.
            current = {
                "seq": stop.seq, "name": stop.name,
                "valid_to": None if stop.valid_to is None else stop.valid_to.isoformat(),
                "valid_from": None if stop.valid_from is None else stop.valid_from.isoformat(),
                "opening_hours": stop.opening_hours}
            blob = self.buf[int(self.off[slot]): int(self.off[slot + 1])]
            code, row = self._row(blob, int(self.mask[slot]), stop.lon, stop.lat, None,
                                  float(dist), float(az), True, p, crs, minute, current)
            out.append((float(dist), code, row))
        return out


def _first(dist: FloatArray, k: int) -> list[int]:
    """Positions of the ``k`` smallest distances, in order, plus any tied with the k-th
    (their order is settled by code once the rows are decoded)."""
    if dist.size > 4 * k:
        part = np.argpartition(dist, k - 1)[:k]
        kth = dist[part].max()
        cand = np.flatnonzero(dist <= kth)
    else:
        cand = np.arange(dist.size)
    order = cand[np.argsort(dist[cand], kind="stable")]
    if order.size > k:
        kth = dist[order[k - 1]]
        order = order[: k + int(np.count_nonzero(dist[order[k:]] == kth))]
    return [int(j) for j in order]


def _bearing(p: NearestParams, lon: float, lat: float, az: float) -> float | None:
    """``degrees(ST_Azimuth(query, point))``: clockwise from north in [0, 360); NULL for
    the same point."""
    if lon == p.lon and lat == p.lat:
        return None
    return az % 360.0


def _table(codes: dict[str, int], chosen: Sequence[str]) -> npt.NDArray[np.bool_]:
    """Which codes are chosen, indexed by code + 1 (code -1, unknown, is never chosen)."""
    table = np.zeros(len(codes) + 1, dtype=bool)
    for name in chosen:
        if name in codes:
            table[codes[name] + 1] = True
    return table


@dataclass(frozen=True)
class _Filter:
    statuses: npt.NDArray[np.bool_]
    want: int
    hosts: npt.NDArray[np.bool_] | None
    min_ten_ones: int
    open_now: bool
    key: tuple[Any, ...]  # the filter as plain values

    @staticmethod
    def of(p: NearestParams) -> _Filter:
        """The filter of ``p``, built once per distinct filter (a handful in practice)."""
        key = (tuple(p.want), None if p.host_types is None else tuple(p.host_types),
               tuple(p.statuses), p.min_ten_ones, p.open_now, p.include_unknown)
        found = _FILTERS.get(key)
        if found is None:
            if len(_FILTERS) >= 1024:
                _FILTERS.clear()
            hosts = None if p.host_types is None else _table(_HOST_CODE, p.host_types)
            found = _FILTERS[key] = _Filter(_table(_STATUS_CODE, p.statuses),
                                            amenity_mask(p.want), hosts, p.min_ten_ones,
                                            p.open_now, key)
        return found


_FILTERS: dict[tuple[Any, ...], _Filter] = {}


# --- loading and following the database ---------------------------------------------------------


def _stop_of(row: dict[str, Any], tz: str) -> Stop:
    return Stop(int(row["station_id"]), int(row["seq"]), row["name"], float(row["lon"]),
                float(row["lat"]), row["opening_hours"], row["valid_from"], row["valid_to"],
                Hours.of(row["hours_kind"], row["open_minutes"], row["open_periods"], None,
                         None, tz))


def _stops_by_station(stop_rows: Sequence[dict[str, Any]],
                      zones: dict[int, str]) -> dict[int, list[Stop]]:
    out: dict[int, list[Stop]] = {}
    for r in stop_rows:
        sid = int(r["station_id"])
        tz = zones.get(sid)
        if tz is not None:  # a stop's station always exists (foreign key)
            out.setdefault(sid, []).append(_stop_of(r, tz))
    return out


def load(url: str, spare: int | None = None) -> tuple[Index, int]:
    """Read every station and stop in one snapshot; the index and its change number.

    Rows stream from a server-side cursor into entries, so the load never holds more
    than a batch of psycopg rows; the compiled hours come first, once per distinct one."""
    with psycopg.connect(url, options="-c statement_timeout=0",
                         application_name="geo_service index") as conn:
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        with conn.cursor() as cur:
            seq = int(cur.execute(q.INDEX_MAX_SEQ).fetchone()[0])  # type: ignore[index]
            n = int(cur.execute("SELECT count(*) FROM station").fetchone()[0])  # type: ignore[index]
        with conn.cursor(row_factory=dict_row) as dcur:
            stop_rows = dcur.execute(q.INDEX_STOPS).fetchall()
            hours = {r["hours_key"]: hours_of(r) for r in dcur.execute(q.INDEX_HOURS)}
            samples = [public_json(r) for r in dcur.execute(q.INDEX_STATIONS + " LIMIT 64")]
        packer = Packer(samples)
        zones: dict[int, str] = {}

        def entries() -> Iterable[Entry]:
            with conn.cursor("index_load", row_factory=dict_row) as cur:
                cur.itersize = 2_000
                cur.execute(q.INDEX_STATIONS)
                for row in cur:
                    zones[int(row["id"])] = row["timezone"]
                    yield Entry.of(row, hours[row["hours_key"]], packer)

        index = Index(entries(), n, [], packer, spare)
        conn.rollback()
    index.apply([], [], _stops_by_station(stop_rows, zones))
    return index, seq


@dataclass
class IndexStatus:
    """What /healthz shows of the index."""

    state: str
    stations: int = 0
    applied_seq: int = 0
    lag_s: float | None = None
    load_s: float | None = None
    bytes: int | None = None
    error: str | None = None
    #: nearest requests answered from memory and from SQL since start
    answers: dict[str, int] = dataclasses.field(default_factory=dict)
    #: the API process that answered (each ``serve --workers`` process has its own index)
    process: int = 0


#: Why an index behind a transaction pooler, without a direct URL, does not follow.
NO_DIRECT_URL = ("GEO_DB_PGBOUNCER=1 and no GEO_NEAREST_INDEX_DATABASE_URL: the index "
                 "needs a direct connection to the primary (LISTEN does not work through "
                 "transaction pooling)")


class Keeper:
    """Loads the index in the background and keeps it fresh; tells requests whether
    they may use it (:meth:`usable`)."""

    def __init__(self, url: str | None, *, max_lag_s: float = 1.0,
                 ping_interval_s: float = 0.1, spare: int | None = None) -> None:
        """``url`` connects directly to the primary (``Settings.nearest_index_url``);
        None when there is no such connection: the keeper never starts, says why, and
        every nearest goes to SQL."""
        self.url, self.max_lag_s, self.ping_interval_s = url, max_lag_s, ping_interval_s
        self.spare = spare
        self.index: Index | None = None
        self.applied_seq = 0
        #: monotonic time the newest returned ping was sent: every commit before it is applied
        self.fresh_as_of = -math.inf
        self.state = "loading"
        self.load_s: float | None = None
        self.error: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._ping = 0
        self._sent: dict[int, float] = {}
        self.answers = {"memory": 0, "sql": 0}
        #: full loads so far (1 unless the connection was lost or a table truncated)
        self.loads = 0
        #: the connection that re-reads notified stations (in a worker thread)
        self._reader: psycopg.Connection[Any] | None = None
        #: monotonic time this process last finished answering a write: its own writes
        #: are read back from the index only once a ping sent after it has returned
        self.wrote_at = -math.inf

    def start(self) -> None:
        if self.url is None:
            self.state, self.error = "unconfigured", NO_DIRECT_URL
            log.error("nearest index off: %s", NO_DIRECT_URL)
            return
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._reader is not None:
            await asyncio.to_thread(self._reader.close)

    def lag_s(self) -> float | None:
        return None if self.index is None else max(0.0, time.monotonic() - self.fresh_as_of)

    def usable(self, min_seq: int | None = None) -> Index | None:
        """The index, when it is loaded, fresh within the bound and has applied ``min_seq``."""
        index = self.index
        if index is None or time.monotonic() - self.fresh_as_of > self.max_lag_s \
                or self.fresh_as_of < self.wrote_at:
            return None
        if min_seq is not None and self.applied_seq < min_seq:
            return None
        return index

    def status(self) -> IndexStatus:
        index = self.index
        lag = self.lag_s()
        state = self.state
        if state == "ready" and (lag is None or lag > self.max_lag_s):
            state = "lagging"
        return IndexStatus(state=state, stations=0 if index is None else index.live_rows(),
                       applied_seq=self.applied_seq,
                       lag_s=None if lag is None or math.isinf(lag) else round(lag, 3),
                       load_s=None if self.load_s is None else round(self.load_s, 3),
                       bytes=None if index is None else index.nbytes(), error=self.error,
                       answers=dict(self.answers), process=os.getpid())

    async def _run(self) -> None:
        backoff = 0.5
        while True:
            try:
                await self._follow()
            except asyncio.CancelledError:
                raise
            except _Reset:
                self.fresh_as_of = -math.inf
                self.state = "loading"
            except Exception as exc:  # the database went away: SQL answers until reloaded
                log.warning("nearest index lost the database: %s", exc)
                self.error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                self.state = "reconnecting"
                self.fresh_as_of = -math.inf
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)

    async def _follow(self) -> None:
        url = self.url
        assert url is not None  # start() runs nothing without one
        conn = await psycopg.AsyncConnection.connect(
            url, autocommit=True, application_name="geo_service index")
        async with conn:
            await conn.execute(q.INDEX_LISTEN)
            # Listening before the snapshot: what commits during the load is re-read after.
            started = time.perf_counter()
            sent = time.monotonic()
            index, seq = await asyncio.to_thread(load, url, self.spare)
            release_free_memory()
            self.load_s = time.perf_counter() - started
            self.loads += 1
            self.index, self.applied_seq, self.error = index, seq, None
            self.state = "ready"
            # Everything committed before the snapshot began is in it.
            self.fresh_as_of = sent
            log.info("nearest index loaded: %d stations in %.1f s", index.live_rows(),
                     self.load_s)
            await self._listen(conn)

    async def _listen(self, conn: psycopg.AsyncConnection[Any]) -> None:
        next_ping = 0.0
        while True:
            now = time.monotonic()
            if now >= next_ping:
                self._ping += 1
                self._sent[self._ping] = now
                await conn.execute(q.INDEX_PING, {"channel": q.INDEX_CHANNEL,
                                                  "payload": f"ping:{self._ping}"})
                next_ping = now + self.ping_interval_s
            ids: set[int] = set()
            seqs: list[int] = []
            pinged: float | None = None
            reset = False
            async for n in conn.notifies(timeout=max(0.0, next_ping - time.monotonic()),
                                         stop_after=10_000):
                payload = n.payload
                if payload.startswith("s:"):
                    _, sid, sseq = payload.split(":")
                    ids.add(int(sid))
                    seqs.append(int(sseq))
                elif payload.startswith("ping:") and n.pid == conn.info.backend_pid:
                    sent = self._sent.pop(int(payload[5:]), None)
                    if sent is not None:
                        pinged = sent
                        break  # apply what came before it now, then mark fresh
                elif payload == "reset":
                    reset = True
            if reset:
                raise _Reset()
            if ids:
                await self._reload(conn, ids)
            if seqs:
                self.applied_seq = max(self.applied_seq, *seqs)
            if pinged is not None:
                # Old pings that never came back are dropped with the next one.
                self._sent = {k: v for k, v in self._sent.items() if v > pinged}
                self.fresh_as_of = max(self.fresh_as_of, pinged)

    def _fetch(self, ids: list[int]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        if self._reader is None or self._reader.closed:
            assert self.url is not None
            self._reader = psycopg.connect(self.url, autocommit=True,
                                           application_name="geo_service index")
        with self._reader.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(q.INDEX_STATIONS_BY_ID, {"ids": ids}).fetchall()
            stop_rows = cur.execute(q.INDEX_STOPS_BY_STATION, {"ids": ids}).fetchall()
        return rows, stop_rows

    async def _reload(self, conn: psycopg.AsyncConnection[Any], ids: set[int]) -> None:
        """Re-read the notified stations and their stops, and put them in the index."""
        idlist = sorted(ids)
        # Read and parsed in a thread: a dated rule's periods (years of ranges) take
        # psycopg ~0.1 s to parse, which on the event loop would stall every request.
        rows, stop_rows = await asyncio.to_thread(self._fetch, idlist)
        index = self.index
        assert index is not None
        zones = {int(r["id"]): r["timezone"] for r in rows}
        found = set(zones)
        stops: dict[int, list[Stop]] = {sid: [] for sid in ids if sid in index.stops
                                         or sid in found}
        stops.update(_stops_by_station(stop_rows, zones))
        if len(rows) > 200:  # a bulk import: packing is CPU work, off the event loop
            entries = await asyncio.to_thread(_entries, rows, index.packer)
        else:
            entries = _entries(rows, index.packer)
        if index.n + len(entries) > index.cap:
            # Out of spare slots: rebuild from the live slots plus the new ones, in a
            # thread; requests keep reading the old index meanwhile.
            self.index = await asyncio.to_thread(_compacted, index, entries, ids - found,
                                                 stops, self.spare)
            del index
            release_free_memory()
        else:
            index.apply(entries, ids - found, stops)


def release_free_memory() -> None:
    """Hand the heap's free pages back to the OS (glibc's ``malloc_trim``): a load leaves
    ~25 MB of freed rows and entries in the heap at 1M stations, which would otherwise
    count in the process's resident memory for as long as it runs."""
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to do
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _entries(rows: Sequence[dict[str, Any]], packer: Packer) -> list[Entry]:
    return [Entry.of(r, hours_of(r), packer) for r in rows]


class _Reset(Exception):
    """A table was truncated: reload everything."""


def _compacted(old: Index, entries: list[Entry], gone: set[int],
               stops: dict[int, list[Stop]], spare: int | None) -> Index:
    """A fresh index of ``old``'s live stations with ``entries`` applied."""
    changed = {e.id for e in entries} | gone
    keep = [old.entry(int(s)) for s in np.flatnonzero(old.alive[: old.n])
            if int(old.ids[s]) not in changed]
    all_stops = {**old.stops, **stops}
    return Index([*keep, *entries], len(keep) + len(entries),
                 [s for g in all_stops.values() for s in g], old.packer, spare)
