"""Navigation deep links: open a station in Amap, Baidu or Tencent maps, or any ``geo:`` app.

Each platform draws in its own coordinate system, so each link carries the
station's position converted for that platform: Amap and Tencent take
GCJ-02, Baidu takes BD-09, ``geo:`` URIs (RFC 5870) take WGS-84. A link with
WGS-84 coordinates on Amap would land a few hundred metres off, on the wrong
street. The ``*_ride`` links start riding (e-bike / bicycle) navigation from
the phone's position, which is what a delivery rider wants; every platform
named here supports a riding mode:

- Amap URI API: ``uri.amap.com/navigation`` with ``mode=ride``;
- Baidu map app: ``baidumap://map/direction`` with ``mode=riding`` (its web
  direction page needs an origin, so the riding link is the app scheme);
- Tencent URI API: ``apis.map.qq.com/uri/v1/routeplan`` with ``type=bike``.

Example
-------
>>> links = station_links("SY-0001", "Sample station", 109.5, 18.25, None, source="demo")
>>> links["geo"]
'geo:18.25,109.5?q=18.25,109.5(Sample%20station)'
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

import numpy as np

from geo_service.domain.coords import Crs, from_wgs84_array, gcj02_to_bd09, wgs84_to_gcj02

#: Who is asking, as the platforms' ``src`` / ``referer`` parameter wants it.
LINK_SOURCE = "geo_service"

#: The link kinds, in the order they are listed everywhere.
LINK_KINDS = ("amap", "amap_ride", "baidu", "baidu_ride", "tencent", "tencent_ride", "geo")


#: The ``src`` / ``referer`` of the memory index's links, quoted once.
_SOURCE = quote(LINK_SOURCE, safe="")
#: Runs of characters ``quote(.., safe="")`` escapes (all but RFC 3986's unreserved).
_UNSAFE = re.compile(r"[^A-Za-z0-9_.~-]+")


def _escape_run(match: re.Match[str]) -> str:
    return "%" + match.group().encode().hex("%").upper()


def _quote(text: str) -> str:
    """``urllib.parse.quote(text, safe="")``, the same output (``tests/test_links.py``
    compares them on random text) at ~2.5x the speed: a station name is one or two runs
    of Chinese, escaped whole by ``bytes.hex``, where ``quote`` escapes byte by byte.
    Every nearest answer quotes each station's name and address."""
    return _UNSAFE.sub(_escape_run, text)


def _num(value: float) -> str:
    """Six decimals (~0.1 m) without trailing zeros."""
    return f"{value:.6f}".rstrip("0").rstrip(".")


def quoted_parts(code: str, name: str, address: str | None) -> tuple[str, str]:
    """A station's label (its name, else its code) and address as its links carry them,
    escaped: the memory index escapes them once, at load, not in every answer."""
    return _quote(name or code), _quote(address) if address else ""


def _links(
    code: str, name: str, address: str | None, w: tuple[float, float],
    g: tuple[float, float], b: tuple[float, float], src: str,
) -> dict[str, str]:
    """The links from coordinates already converted: WGS-84 ``w``, GCJ-02 ``g``, BD-09 ``b``."""
    label, addr = quoted_parts(code, name, address)
    return _quoted_links(label, addr, w, g, b, src)


def _quoted_links(
    label: str, addr: str, w: tuple[float, float], g: tuple[float, float],
    b: tuple[float, float], src: str,
) -> dict[str, str]:
    w_lon, w_lat, g_lon, g_lat = _num(w[0]), _num(w[1]), _num(g[0]), _num(g[1])
    b_lon, b_lat = _num(b[0]), _num(b[1])
    # Built by hand rather than with urlencode: this runs for every station of
    # every nearest answer and every feed, and urlencode costs several times more.
    return {
        "amap": f"https://uri.amap.com/marker?position={g_lon},{g_lat}&name={label}"
                f"&src={src}&coordinate=gaode&callnative=1",
        "amap_ride": f"https://uri.amap.com/navigation?to={g_lon},{g_lat},{label}&mode=ride"
                     f"&src={src}&coordinate=gaode&callnative=1",
        "baidu": f"https://api.map.baidu.com/marker?location={b_lat},{b_lon}&title={label}"
                 f"&content={addr}&coord_type=bd09ll&output=html&src={src}",
        "baidu_ride": f"baidumap://map/direction?destination=name:{label}%7Clatlng:{b_lat},"
                      f"{b_lon}&coord_type=bd09ll&mode=riding&src={src}",
        "tencent": f"https://apis.map.qq.com/uri/v1/marker?marker=coord:{g_lat},{g_lon};"
                   f"title:{label};addr:{addr}&referer={src}",
        "tencent_ride": f"https://apis.map.qq.com/uri/v1/routeplan?type=bike&to={label}"
                        f"&tocoord={g_lat},{g_lon}&referer={src}",
        "geo": f"geo:{w_lat},{w_lon}?q={w_lat},{w_lon}({label})",
    }


def station_links(
    code: str, name: str, lon: float, lat: float, address: str | None, *,
    source: str = LINK_SOURCE,
) -> dict[str, str]:
    """All deep links for one station stored at WGS-84 ``lon``/``lat``.

    ``source`` identifies the caller to the platforms (Amap's ``src``,
    Baidu's ``src``, Tencent's ``referer``); it is an app name, not a secret.
    """
    return _links(code, name, address, (lon, lat), *platform_points(lon, lat),
                  quote(source, safe=""))


def platform_points(lon: float, lat: float) -> tuple[tuple[float, float], tuple[float, float]]:
    """The WGS-84 point in GCJ-02 (Amap, Tencent) and BD-09 (Baidu), one point at a time
    (~40 µs: :func:`batch_links` converts arrays)."""
    g = wgs84_to_gcj02(lon, lat)
    return g, gcj02_to_bd09(*g)


def converted_links(
    label: str, addr: str, w: tuple[float, float], g: tuple[float, float],
    b: tuple[float, float],
) -> dict[str, str]:
    """:func:`station_links` from :func:`quoted_parts` and from coordinates converted
    beforehand (GCJ-02 ``g`` and BD-09 ``b`` of the WGS-84 point ``w``, as
    :func:`batch_links` or :func:`platform_points` convert them): the memory index keeps
    both per station, since the scalar conversion costs ~40 µs a call."""
    return _quoted_links(label, addr, w, g, b, _SOURCE)


def batch_links(
    rows: Sequence[Mapping[str, Any]], *, source: str = LINK_SOURCE
) -> list[dict[str, str]]:
    """:func:`station_links` for many rows (``code``, ``name``, ``address``, ``lon``, ``lat``).

    The coordinate conversions run once per batch on arrays, which halves the
    cost of a national feed compared with converting station by station.
    """
    if not rows:
        return []
    lon = np.fromiter((r["lon"] for r in rows), float, len(rows))
    lat = np.fromiter((r["lat"] for r in rows), float, len(rows))
    glon, glat = from_wgs84_array(lon, lat, Crs.GCJ02)
    blon, blat = from_wgs84_array(lon, lat, Crs.BD09)
    src = quote(source, safe="")
    return [
        _links(r["code"], r["name"], r["address"], (float(lon[i]), float(lat[i])),
               (float(glon[i]), float(glat[i])), (float(blon[i]), float(blat[i])), src)
        for i, r in enumerate(rows)
    ]


def point_facts(lon: float, lat: float, label: str) -> dict[str, Any]:
    """A WGS-84 point as a planner pastes it: GCJ-02 (Amap, Tencent) and BD-09 (Baidu)
    ``[lon, lat]`` (7 decimals, ~1 cm) and the Amap link that opens it, built as every
    station's is (``uri.amap.com/marker``, ``coordinate=gaode``)."""
    g, b = platform_points(lon, lat)
    return {"gcj02": [round(g[0], 7), round(g[1], 7)], "bd09": [round(b[0], 7), round(b[1], 7)],
            "amap": station_links(label, label, lon, lat, None)["amap"]}
