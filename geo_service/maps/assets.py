"""Where a map page gets Leaflet and its plugins: this service, the page itself, or a CDN.

Many union offices have no open internet, so no page depends on one: the files
come from the npm packages installed at setup (``package.json``: ``leaflet``,
``leaflet.markercluster``). Three modes:

- ``local`` (the default, live pages and rendered files alike):
  ``/maps/assets/...`` URLs, served by this service from ``node_modules``;
- ``inline``: the files written into the page, images as ``data:`` URIs
  (``geo-service maps render --offline``: one HTML file that opens from a USB
  stick);
- ``cdn``: only when asked for (``geo-service maps render --cdn BASE``): the
  same package versions from an npm CDN the user names (``BASE/leaflet@1.9.4/…``,
  the layout jsDelivr's and unpkg's ``/npm`` paths share). The project names
  no CDN itself.

Folium's own defaults (jQuery, Bootstrap, Font Awesome, awesome-markers) are
dropped: the maps draw their markers with Leaflet ``divIcon``s and their
popups and legends with plain HTML, so those libraries would only be four more
outside requests.
"""

from __future__ import annotations

import base64
import json
import mimetypes
import os
import re
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

#: The project root (``node_modules`` sits beside ``geo_service``).
ROOT = Path(__file__).resolve().parents[2]


class AssetMode(StrEnum):
    """How a page loads Leaflet and its plugins."""

    CDN = "cdn"
    LOCAL = "local"
    INLINE = "inline"


@dataclass(frozen=True)
class Asset:
    """One file of an npm package the maps use."""

    package: str
    path: str  # inside the package
    kind: str  # "js" or "css"

    @property
    def key(self) -> str:
        """The URL path under ``/maps/assets/``."""
        return f"{self.package}/{self.path}"


#: Every file a map page loads, in load order (Leaflet before its plugins).
ASSETS: tuple[Asset, ...] = (
    Asset("leaflet", "dist/leaflet.css", "css"),
    Asset("leaflet.markercluster", "dist/MarkerCluster.css", "css"),
    Asset("leaflet.markercluster", "dist/MarkerCluster.Default.css", "css"),
    Asset("leaflet", "dist/leaflet.js", "js"),
    Asset("leaflet.markercluster", "dist/leaflet.markercluster.js", "js"),
)

#: The street basemap's renderer (issue 28): protomaps-leaflet draws the service's own
#: vector tiles (/tiles/base) on the pages that have no tile URL and are served by this
#: service (``MapOptions.streets``); the app loads it as ``/app/vendor/protomaps.js``.
STREETS = Asset("protomaps-leaflet", "dist/protomaps-leaflet.js", "js")

#: Files the CSS refers to (Leaflet's control and marker images), served in ``local`` mode.
_EXTRA_FILES = frozenset({
    "leaflet/dist/images/layers.png", "leaflet/dist/images/layers-2x.png",
    "leaflet/dist/images/marker-icon.png", "leaflet/dist/images/marker-icon-2x.png",
    "leaflet/dist/images/marker-shadow.png",
})

#: What ``/maps/assets/{key}`` may serve: nothing else under node_modules.
SERVABLE = frozenset(a.key for a in (*ASSETS, STREETS)) | _EXTRA_FILES

_SOURCE_MAP = re.compile(r"\n?/[/*]# sourceMappingURL=\S+(?: \*/)?\s*$")
_CSS_URL = re.compile(r"url\((['\"]?)(images/[^'\")]+)\1\)")


class AssetsMissingError(RuntimeError):
    """The npm packages are not installed (``make bootstrap`` runs ``npm ci``)."""


def node_modules() -> Path:
    """The folder holding the npm packages (``GEO_ASSETS_DIR`` overrides it)."""
    return Path(os.environ.get("GEO_ASSETS_DIR") or ROOT / "node_modules")


@cache
def version(package: str) -> str:
    """The installed version of an npm package (from its ``package.json``)."""
    path = node_modules() / package / "package.json"
    try:
        return str(json.loads(path.read_text())["version"])
    except (OSError, ValueError, KeyError) as exc:
        raise AssetsMissingError(
            f"{path} is missing: run `make bootstrap` (npm ci) to install the map assets"
        ) from exc


def file_path(key: str) -> Path | None:
    """The file behind ``/maps/assets/{key}``, or None when it is not servable."""
    if key not in SERVABLE:
        return None
    path = node_modules() / key
    return path if path.is_file() else None


def url(asset: Asset, mode: AssetMode, prefix: str = "/maps/assets") -> str:
    """The URL of an asset in ``local`` mode (``prefix``: this service's
    ``/maps/assets``) or ``cdn`` mode (``prefix``: the npm CDN's base URL)."""
    if mode is AssetMode.CDN:
        return f"{prefix}/{asset.package}@{version(asset.package)}/{asset.path}"
    return f"{prefix}/{asset.key}"


def check_cdn(base: str) -> str:
    """An npm CDN's base URL, checked (http or https, a host, no query), without a
    final slash; ``ValueError`` naming the problem otherwise."""
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query \
            or parts.fragment or any(c in base for c in "\"'<> "):
        raise ValueError(f"--cdn must be an http(s) URL with a host and no query, "
                         f"like https://cdn.example.org/npm: got {base!r}")
    return base.rstrip("/")


def cdn_origin(base: str) -> str:
    """The origin a page's policy allows for assets from the CDN at ``base``."""
    parts = urlsplit(base)
    return f"{parts.scheme}://{parts.netloc}"


def _data_uri(path: Path) -> str:
    mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


@cache
def inline_text(key: str) -> str:
    """An asset's text ready to sit inside the page: no source-map comment, CSS
    images as ``data:`` URIs, and no ``</`` that could close the surrounding tag."""
    path = node_modules() / key
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise AssetsMissingError(
            f"{path} is missing: run `make bootstrap` (npm ci) to install the map assets"
        ) from exc
    text = _SOURCE_MAP.sub("\n", text)
    if key.endswith(".css"):
        folder = path.parent
        text = _CSS_URL.sub(lambda m: f"url({_data_uri(folder / m.group(2))})", text)
        return text.replace("</", "<\\/")
    return text.replace("</script", "<\\/script")


def head_html(mode: AssetMode, prefix: str = "/maps/assets", *, streets: bool = False) -> str:
    """The ``<link>``/``<script>`` tags (or inlined files) a page needs, in order;
    ``streets``: with the street basemap's renderer."""
    parts = []
    for a in (*ASSETS, STREETS) if streets else ASSETS:
        if mode is AssetMode.INLINE:
            tag = "style" if a.kind == "css" else "script"
            parts.append(f"<{tag} data-asset=\"{a.key}\">\n{inline_text(a.key)}\n</{tag}>")
        elif a.kind == "css":
            parts.append(f'<link rel="stylesheet" href="{url(a, mode, prefix)}"/>')
        else:
            parts.append(f'<script src="{url(a, mode, prefix)}"></script>')
    return "\n".join(parts)
