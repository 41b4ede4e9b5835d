"""HTTP for the courier app: the shell (``/app/``, ``/app/s/{code}``), its files, its config.

The files are the ones in ``static/`` when the app starts (an allow-list: no
other path is ever read). The shell and its files are revalidated on every
load (``Cache-Control: no-cache`` with an ``ETag``), so a deploy shows at the
next open while an unchanged file costs a 304. Text files are gzipped once, when
first read, at level 9 (the files never change while the service runs, so the
smallest encoding costs nothing per request) and sent so to clients that accept
gzip; the gzip middleware leaves an encoded body alone. The page's policy allows
scripts, styles and requests to this service only; images also from the
configured basemap's tile host, when one is configured.
"""

from __future__ import annotations

import gzip
import hashlib
import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from geo_service.domain.encoding import GZIP_MIN_BYTES, etag_matches
from geo_service.domain.errors import NotFound
from geo_service.infra.settings import Settings
from geo_service.maps.options import basemap
from geo_service.roads.keeper import road_keeper

router = APIRouter(prefix="/app", include_in_schema=False)

STATIC = Path(__file__).parents[1] / "static"
#: Files of another room the app serves under their own names: the street basemap's one
#: style, which the planners' maps inline (``/app/basemap.js``).
SHARED = (Path(__file__).parents[2] / "maps" / "static" / "basemap.js",)

#: Content types by suffix; anything else in static/ is not served.
TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".webmanifest": "application/manifest+json",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}


@dataclass(frozen=True)
class StaticFile:
    body: bytes
    media_type: str
    etag: str
    #: The body gzipped, for clients that accept it; None where gzip would not pay (an
    #: image, already compressed, or a body too small for the header to be worth it).
    gzipped: bytes | None = None


def _gzipped(body: bytes, media_type: str) -> bytes | None:
    if media_type.startswith("image/png") or len(body) < GZIP_MIN_BYTES:
        return None
    packed = gzip.compress(body, compresslevel=9, mtime=0)
    return packed if len(packed) < len(body) else None


@cache
def files() -> dict[str, StaticFile]:
    """The servable files by name, read once: the directory listing is the allow-list."""
    found = {}
    for path in sorted([*STATIC.iterdir(), *SHARED], key=lambda p: p.name):
        media = TYPES.get(path.suffix)
        if path.is_file() and media is not None:
            body = path.read_bytes()
            found[path.name] = StaticFile(body, media,
                                          f'"{hashlib.sha256(body).hexdigest()[:20]}"',
                                          _gzipped(body, media))
    return found


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _basemap(settings: Settings) -> dict[str, Any]:
    """The configured basemap, or none: the app draws no tiles unless told to.

    WGS-84 tiles (OSM or a local server) take the points as they are; GCJ-02
    tiles (Amap, Tencent) take them shifted, which the phone does with the
    npm ``gcoord`` library (``/app/vendor/gcoord.js``), as the planners' maps
    do on the server. Tiles in any other system are not drawn.
    """
    if not (settings.map_tiles_url or settings.map_basemap):
        return {"url": None, "attribution": "", "crs": "wgs84"}
    bm = basemap(settings.map_basemap, tiles_url=settings.map_tiles_url,
                 attribution=settings.map_tiles_attribution, tiles_crs=settings.map_tiles_crs,
                 offline=True)
    if bm.url is None or bm.crs.value not in ("wgs84", "gcj02"):
        return {"url": None, "attribution": "", "crs": bm.crs.value}
    return {"url": bm.url, "attribution": bm.attribution, "crs": bm.crs.value,
            "subdomains": bm.subdomains, "max_zoom": bm.max_zoom}


def csp(settings: Settings) -> str:
    """The app's policy: everything from this service; tiles from the basemap's host."""
    img = "'self' data:"
    url = _basemap(settings)["url"]
    if url:
        parts = urlsplit(url)
        host = parts.netloc
        if "{" in host:  # a subdomain template (webrd0{s}.is.autonavi.com)
            host = "*." + host.split(".", 1)[1]
        img += f" {parts.scheme}://{host}"
    return ("default-src 'none'; script-src 'self'; style-src 'self'; "
            f"img-src {img}; connect-src 'self'; worker-src 'self'; manifest-src 'self'; "
            "base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'")


def _serve(request: Request, name: str) -> Response:
    f = files().get(name)
    if f is None:
        raise NotFound(f"no app file {name!r}", [("name", "not a file of the app")])
    headers = {"Cache-Control": "no-cache", "ETag": f.etag}
    if f.media_type.startswith("text/html"):
        headers["Content-Security-Policy"] = csp(_settings(request))
    if f.gzipped is not None:
        headers["Vary"] = "Accept-Encoding"
    if etag_matches(request.headers.get("if-none-match", ""), f.etag):
        return Response(status_code=304, headers=headers)
    # As the gzip middleware reads the header, so every response of the service agrees.
    if f.gzipped is not None and "gzip" in request.headers.get("accept-encoding", ""):
        headers["Content-Encoding"] = "gzip"
        return Response(f.gzipped, media_type=f.media_type, headers=headers)
    return Response(f.body, media_type=f.media_type, headers=headers)


@router.get("/")
def shell(request: Request) -> Response:
    return _serve(request, "index.html")


@router.get("/s/{code}")
def station_shell(request: Request, code: str) -> Response:
    """A station's page: the same shell, which reads the code from its own address."""
    return _serve(request, "index.html")


@router.get("/config.json")
async def config(request: Request) -> Response:
    """What the page cannot know by itself: the basemap, if one is configured, and
    whether roads are loaded and where (inside ``roads_bbox`` the list asks nearest
    ``by=walk`` and shows road minutes rather than the straight distance's estimate)."""
    keeper = road_keeper(request.app.state)
    network = None if keeper is None else await keeper.current(request.app.state.pool)
    settings = _settings(request)
    return JSONResponse({"basemap": _basemap(settings), "roads": network is not None,
                         "roads_bbox": _padded(network.bbox, settings.roads_max_snap_m)
                         if network is not None and network.bbox else None},
                        headers={"Cache-Control": "no-cache"})


def _padded(box: tuple[float, float, float, float], metres: float) -> list[float]:
    """The roads' extent grown by the snap limit: outside it nearest by road refuses
    (409), so the app asks straight-line there without the round trip."""
    dlat = metres / 111_320
    dlon = dlat / max(math.cos(math.radians(max(abs(box[1]), abs(box[3])))), 0.01)
    return [round(box[0] - dlon, 6), round(box[1] - dlat, 6),
            round(box[2] + dlon, 6), round(box[3] + dlat, 6)]


@router.get("/{name}")
def static_file(request: Request, name: str) -> Response:
    return _serve(request, name)
