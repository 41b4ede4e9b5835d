"""The nearest index itself: every station in compact arrays and a k-d tree, and the
exact k-nearest walk over them.

Slots hold the filters' columns as small integers, the compiled hours interned once
per distinct rule and zone (``open_state``), and the packed public blob (``blobs``).
Exactness is proved as the SQL path proves it: the k-d tree yields candidates in
chord (so sphere) order; spheroid distances come from GeographicLib; the walk stops
once the nearest unseen station, shrunk by the worst spheroid/sphere ratio, is farther
than the k-th qualifying one, else it widens (up to the whole radius) (``sphere``).
"""

from __future__ import annotations

import datetime as dt
import math
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import orjson
from scipy.spatial import cKDTree

from geo_service.domain.catalogue import AMENITIES, TEN_ONES_MASK, HostType, Status, amenity_mask
from geo_service.domain.coords import Crs, from_wgs84, from_wgs84_array
from geo_service.domain.encoding import dumps
from geo_service.domain.links import converted_links, platform_points
from geo_service.stations.nearest_index.blobs import (
    Packer,
    mask_json,
    opened,
    public_json,
    spliced,
)
from geo_service.stations.nearest_index.open_state import (
    Hours,
    Stop,
    hours_of,
    minute_of_week,
    stop_of,
)
from geo_service.stations.nearest_index.sphere import (
    GEOD,
    FloatArray,
    bearing,
    chord_to_sphere_m,
    radius_chord,
    unit_point,
    unit_xyz,
)
from geo_service.stations.service import (
    SPHEROID_OVER_SPHERE_MIN,
    NearestParams,
    hours_provisional,
    open_and_next,
)

IntArray = npt.NDArray[np.int64]
#: Walks that need more candidates than this read the whole radius ball at once.
_BALL_AT = 4096
STATUS_CODE = {s.value: i for i, s in enumerate(Status)}
#: Amenity masks fit 32 bits while the catalogue has fewer than 31 items (4 B a station).
_MASK_DTYPE = np.int32 if max(a.bit for a in AMENITIES) < 31 else np.int64
HOST_CODE = {h.value: i for i, h in enumerate(HostType)}
_OPEN = STATUS_CODE[Status.OPEN.value]
_UNKNOWN, _CLOSED, _OPEN_STATE = -1, 0, 1


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
                     STATUS_CODE.get(row["status"], -1), HOST_CODE.get(row["host_type"], -1),
                     int(row["amenity_mask"]), not row["scheduled"], hours,
                     packer.pack(public_json(row)))



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
        qxyz = unit_point(p.lon, p.lat)
        chord_r = radius_chord(p.radius_m)
        minutes: dict[str, int] = {}
        minute = p.at.replace(second=0, microsecond=0)
        opens: dict[tuple[Any, ...], tuple[bool | None, Any, bool]] = {}
        slots, dist, az = self._walk(p, f, qxyz, chord_r, minutes)
        picked = first_k(dist, p.k)
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
                                      p, crs, minute, None, opens)
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
                az, _, dist = GEOD.inv(np.full(n, p.lon), np.full(n, p.lat),
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
                if chord_to_sphere_m(last_chord) * SPHEROID_OVER_SPHERE_MIN * (1 - 1e-9) > kth:
                    return cand, dist, az
            kk *= 4

    def _row(self, blob: bytearray, mask: int, lon: float, lat: float,
             conv: tuple[list[float], list[float]] | None, dist: float, az: float,
             is_open: bool | None, p: NearestParams, crs: Crs, minute: dt.datetime,
             stop: dict[str, Any] | None,
             opens: dict[tuple[Any, ...], tuple[bool | None, Any, bool]] | None = None,
             ) -> tuple[str, bytes]:
        """One answer row's code and JSON, as ``decorate_nearest`` makes it from the SQL
        path's row: the blob's columns, the point (``lon``/``lat``: the station's, with
        its GCJ-02 and BD-09 forms ``conv`` converted at load, or its stop's) in ``crs``,
        the mask's fields, distance, bearing, open state, next change, links.

        ``opens``: the open state, next change and provisional flag already worked out in
        this request (``minute`` is the request's), by what decides them; a station not at
        a stop shares them with every station of the same status, rule, zone and calendar
        choice (most of an answer's ten share a few rules: ~1 µs a row saved of the
        calendar look-ups)."""
        head, (code, status, hours, tz, workdays, host, reported, label, addr) = \
            opened(self.packer.unpack(blob))
        out_lon, out_lat = (lon, lat) if crs is Crs.WGS84 else from_wgs84(lon, lat, crs)
        key = (status, hours, tz, host, workdays, is_open)
        known = None if opens is None or stop is not None else opens.get(key)
        if known is None:
            meta = {"status": status, "opening_hours": hours, "timezone": tz,
                    "host_type": host, "official_workdays": workdays, "current_stop": stop}
            open_now, next_change = open_and_next(meta, is_open, minute)
            known = (open_now, next_change, hours_provisional(meta, open_now, minute))
            if opens is not None and stop is None:
                opens[key] = known
        open_now, next_change, provisional = known
        if conv is not None:
            g, b = conv
            links = converted_links(label, addr, (lon, lat), (g[0], g[1]), (b[0], b[1]))
        else:
            links = converted_links(label, addr, (lon, lat), *platform_points(lon, lat))
        amenities, ten_ones = mask_json(mask)
        bearing_deg = bearing(p, lon, lat, az)
        tail = dumps({
            "lon": round(out_lon, 7), "lat": round(out_lat, 7),
            "amenities": amenities, "ten_ones": ten_ones, "distance_m": round(dist, 2),
            "bearing_deg": None if bearing_deg is None else round(bearing_deg, 1),
            "current_stop": stop, "open_now": open_now, "next_change": next_change,
            "hours_provisional": provisional, "links": links, "crs": crs.value,
            "reported_closed": reported})
        return code, spliced(head, tail)

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
            az, _, dist = GEOD.inv(p.lon, p.lat, stop.lon, stop.lat)
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


def first_k(dist: FloatArray, k: int) -> list[int]:
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
            hosts = None if p.host_types is None else _table(HOST_CODE, p.host_types)
            found = _FILTERS[key] = _Filter(_table(STATUS_CODE, p.statuses),
                                            amenity_mask(p.want), hosts, p.min_ten_ones,
                                            p.open_now, key)
        return found


_FILTERS: dict[tuple[Any, ...], _Filter] = {}


# --- loading and following the database ---------------------------------------------------------



def stops_by_station(stop_rows: Sequence[dict[str, Any]],
                      zones: dict[int, str]) -> dict[int, list[Stop]]:
    out: dict[int, list[Stop]] = {}
    for r in stop_rows:
        sid = int(r["station_id"])
        tz = zones.get(sid)
        if tz is not None:  # a stop's station always exists (foreign key)
            out.setdefault(sid, []).append(stop_of(r, tz))
    return out



def entries_of(rows: Sequence[dict[str, Any]], packer: Packer) -> list[Entry]:
    return [Entry.of(r, hours_of(r), packer) for r in rows]



def compacted(old: Index, entries: list[Entry], gone: set[int],
               stops: dict[int, list[Stop]], spare: int | None) -> Index:
    """A fresh index of ``old``'s live stations with ``entries`` applied."""
    changed = {e.id for e in entries} | gone
    keep = [old.entry(int(s)) for s in np.flatnonzero(old.alive[: old.n])
            if int(old.ids[s]) not in changed]
    all_stops = {**old.stops, **stops}
    return Index([*keep, *entries], len(keep) + len(entries),
                 [s for g in all_stops.values() for s in g], old.packer, spare)
