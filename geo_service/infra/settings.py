"""Configuration read from the environment (prefix ``GEO_``).

Nothing here runs at import time: :func:`Settings` is built by the CLI or by
tests and handed to :func:`geo_service.web.app.create_app`, so tests never need
set-env-then-import tricks.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import os
import secrets
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, PrivateAttr, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from geo_service.infra.paths import PROJECT_ROOT

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
#: Keys that were ever published (the first releases' default): never a secret.
PUBLIC_KEYS = frozenset({"geo_service-development-key"})
log = logging.getLogger(__name__)


def _read_or_make_key(path: Path) -> str:
    """The key in ``path``, made (random, 0600, never overwritten) if the file is missing."""
    try:
        key = path.read_text().strip()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = secrets.token_urlsafe(32)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it meanwhile: use theirs
            return _read_or_make_key(path)
        with os.fdopen(fd, "w") as f:
            f.write(key + "\n")
        log.warning("generated a new feedback hash key in %s (keep it; see README, secrets)",
                    path)
    if len(key) < 32:
        raise ValueError(f"{path} holds a key shorter than 32 characters")
    return key


@functools.lru_cache(maxsize=8)
def proxy_networks(value: str) -> tuple[IPNetwork, ...]:
    """``"10.0.0.0/8, 127.0.0.1"`` → networks (a bare address is a one-address network);
    cached, as every check-in and report asks."""
    return tuple(ipaddress.ip_network(part.strip(), strict=False)
                 for part in value.split(",") if part.strip())


class _GeoSettings(BaseSettings):
    """Every concern reads ``GEO_<NAME>`` from the environment."""

    model_config = SettingsConfigDict(env_prefix="GEO_", extra="ignore")


class DatabaseSettings(_GeoSettings):
    """The primary, its pools and standbys, PgBouncer, statement limits."""

    database_url: str | None = Field(
        default=None,
        description="libpq URL of a PostGIS database; unset means the project-local cluster",
    )
    pool_min: int = 2
    pool_max: int = 8
    pool_timeout_s: float = 5.0
    pool_reconnect_timeout_s: float = Field(
        default=5.0,
        description="a failing reconnection gives up after this long, and the next request "
                    "tries at once (longer: it backs off further and lags the database's return)")
    statement_timeout_ms: int = 15_000
    db_pgbouncer: bool = Field(
        default=False,
        description="GEO_DB_PGBOUNCER=1: the database URL is a PgBouncer in transaction pooling "
                    "mode. Connections then send no startup options (PgBouncer refuses them; "
                    "its connect_query sets statement_timeout and plan_cache_mode) and prepare "
                    "no statements (Debian 12's PgBouncer 1.18 cannot keep them across "
                    "transactions; max_prepared_statements needs 1.21)")
    db_prepare_threshold: int | None = Field(
        default=5,
        description="psycopg's prepare_threshold: a query run this many times on a connection "
                    "is prepared server-side; 0 prepares at once; GEO_DB_PREPARE_THRESHOLD=none "
                    "never prepares (forced when db_pgbouncer is set)")
    import_statement_timeout_ms: int = Field(
        default=600_000, ge=1000,
        description="an import's transaction may run statements this long (the whole file "
                    "is written at once; statement_timeout_ms caps the request path)")
    read_database_urls: Annotated[list[str], NoDecode] = Field(
        default=[],
        description="libpq URLs of hot standbys for stale-tolerant reads, comma-separated in "
                    "GEO_READ_DATABASE_URLS (a URL itself must hold no comma); empty: every "
                    "read goes to the primary")
    max_replica_lag_s: float = Field(
        default=5.0, gt=0,
        description="a standby further behind the primary than this is skipped")
    replica_check_interval_s: float = Field(
        default=0.5, gt=0, description="how often each database's position and lag are checked")
    replica_checkout_timeout_s: float = Field(
        default=1.0, gt=0,
        description="a read waits this long for a standby's connection before taking the "
                    "primary's")
    served_by_header: bool = Field(
        default=False,
        description="debug aid: answers say which database served them (X-Served-By: primary "
                    "or replica-N; never a host name)")
    @field_validator("db_prepare_threshold", mode="before")
    @classmethod
    def _none_word(cls, value: Any) -> Any:
        """``none`` / ``off`` / empty in the environment: never prepare."""
        if isinstance(value, str) and value.strip().lower() in ("", "none", "null", "off"):
            return None
        return value

    def prepare_threshold(self) -> int | None:
        """The threshold the connections get: never prepare behind PgBouncer."""
        return None if self.db_pgbouncer else self.db_prepare_threshold
    @field_validator("read_database_urls", mode="before")
    @classmethod
    def _split_urls(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.split(",")
        if isinstance(value, list | tuple):
            return [str(u).strip() for u in value if str(u).strip()]
        return value
    def resolved_database_url(self) -> str:
        """The URL to connect to: the configured one, else the local cluster's."""
        if self.database_url:
            return self.database_url
        from geo_service.infra.localdb import LocalCluster

        return LocalCluster.default().url


class NearestSettings(_GeoSettings):
    """Nearest queries: their caps and the in-memory index."""

    write_coalescing: bool = Field(
        default=True,
        description="geo-service serve: send each response's head and body in one system "
                    "call, and answer clients that half-close, through a protocol that "
                    "subclasses uvicorn's (off, or when the installed uvicorn lacks what it "
                    "relies on: uvicorn's own protocol; /healthz says which under serving)")

    max_k: int = Field(default=100, description="cap on k in nearest queries")
    max_radius_m: float = Field(default=50_000.0, description="cap on radius_m in nearest queries")
    default_radius_m: float = 50_000.0
    nearest_index: Literal["on", "off"] = Field(
        default="on",
        description="answer nearest from an in-process index of the stations kept fresh "
                    "by LISTEN/NOTIFY (off: every nearest query goes to PostgreSQL)")
    nearest_index_database_url: str | None = Field(
        default=None,
        description="libpq URL of the primary, connected directly (not through PgBouncer), "
                    "for the memory index's LISTEN connection, its load and its re-reads: "
                    "notifications need a session of their own, which a transaction pooler "
                    "does not keep (a standby receives none). Unset: GEO_DATABASE_URL, "
                    "except with GEO_DB_PGBOUNCER=1, where the index then cannot follow and "
                    "nearest uses SQL (/healthz says degraded)")
    nearest_index_max_lag_s: float = Field(
        default=1.0, gt=0,
        description="the index answers only while it has provably applied every commit "
                    "older than this; past it, and until it is loaded, nearest uses SQL")


class HttpSettings(_GeoSettings):
    """What a request may ask and send, how slow a client may read, the
    address links are built from, and who the client is behind proxies."""

    max_page_size: int = 500
    max_body_bytes: int = 1_000_000
    client_send_timeout_s: float = Field(
        default=60.0, gt=0,
        description="a streamed body (GeoJSON feed, exports) is abandoned when the client "
                    "has not taken a chunk for this long")
    public_base_url: str | None = Field(
        default=None,
        description="the service's public address (http(s), optional path, no query), e.g. "
                    "https://stations.example.org/geo: every absolute link (OGC, TileJSON, feed "
                    "discovery, QR check-in) starts with it; unset: the request's own address, "
                    "only for a Host in allowed_hosts")
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default=["127.0.0.1", "localhost", "::1"],
        description="Host names whose requests may build absolute links when public_base_url "
                    "is unset (comma-separated in GEO_ALLOWED_HOSTS)")
    trusted_proxies: str = Field(
        default="", description="comma list of the reverse proxies (addresses or CIDR "
                                "networks) whose X-Forwarded-For is believed; empty: none, "
                                "the client is the TCP peer")
    ipv6_prefix: int = Field(
        default=64, ge=1, le=128,
        description="an IPv6 client counts as its /N network for rate limits and the "
                    "independent-reporters rule (one host commonly holds a whole /64); 128: "
                    "per address. IPv4 (and IPv4-mapped IPv6) counts per address")
    @field_validator("public_base_url")
    @classmethod
    def _check_public_base_url(cls, value: str | None) -> str | None:
        """An http(s) URL with a host and no query or fragment; kept without a final slash."""
        if value is None or not value.strip():
            return None
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http or https URL with a host, e.g. "
                             "https://stations.example.org")
        if parts.query or parts.fragment or "?" in value or "#" in value:
            raise ValueError("must not have a query or fragment")
        return value.strip().rstrip("/")
    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.split(",")
        if isinstance(value, list | tuple):
            return [str(h).strip().lower().strip("[]") for h in value if str(h).strip()]
        return value
    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: str) -> str:
        proxy_networks(value)  # refuse a typo at start-up, not at the first request
        return value

    def proxy_networks(self) -> tuple[IPNetwork, ...]:
        """:attr:`trusted_proxies` parsed."""
        return proxy_networks(self.trusted_proxies)


class ImportSettings(_GeoSettings):
    """Imports: size, rows, cells, the report's length, duplicates."""

    max_import_bytes: int = 20_000_000
    max_import_rows: int = 200_000
    max_import_unpacked_bytes: int = Field(
        default=100_000_000, description="an XLSX import may unpack to at most this many bytes")
    max_import_cell_chars: int = Field(
        default=10_000, description="longest cell (characters) an import may hold")
    max_import_errors_reported: int = Field(
        default=100, description="an import report lists this many errors (and as many "
                                 "(field, problem) counts); the total is always given")
    duplicate_distance_m: float = 30.0


class PublishingSettings(_GeoSettings):
    """Feeds, exports, OGC pages and the rendered maps."""

    feed_ttl_s: int = Field(
        default=60, description="how long consumers may keep a feed (GBFS ttl, max-age)"
    )
    export_xlsx_concurrency: int = Field(
        default=2, ge=1,
        description="XLSX exports built at once per process (CPU-bound); more get 429 with "
                    "Retry-After")
    union_hotline: str | None = Field(
        default=None, max_length=40,
        description="the union's hotline printed on station posters (e.g. 12351); unset: "
                    "the posters show none")
    poster_max_pages: int = Field(
        default=500, ge=1,
        description="stations (pages) one poster PDF from the API may hold; a larger area is "
                    "refused with 413: print its districts one by one, or use "
                    "`geo-service posters area --max-pages`. Drawing takes ~30-45 ms and "
                    "~0.5 MB of memory a page (1,000 pages: 43 s, 545 MB)")
    poster_concurrency: int = Field(
        default=2, ge=1,
        description="poster PDFs drawn at once per process (CPU-bound); more get 429 with "
                    "Retry-After")
    poster_font_file: str = Field(
        default="/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
        description="the Chinese font embedded in poster PDFs (a local TrueType/OpenType "
                    "file; fonts-wqy-microhei by default)")
    ogc_max_page_bytes: int = Field(
        default=4_000_000, ge=16_384,
        description="an OGC items page holds fewer features than its limit rather than grow "
                    "past this many bytes (its next link goes on from there)")
    map_basemap: str | None = Field(
        default=None,
        description="basemap preset of the maps: osm, amap, tencent or none (unset: the "
                    "pages this service serves draw its own street basemap; rendered files "
                    "osm, or none with --offline)",
    )
    map_tiles_url: str | None = Field(
        default=None,
        description="a tile URL template for the maps (e.g. an intranet tile server); "
                    "wins over map_basemap",
    )
    map_tiles_attribution: str | None = None
    map_tiles_crs: str = Field(default="wgs84",
                               description="wgs84 or gcj02: map_tiles_url's system")
    maps_dir: str | None = Field(
        default=None, description="where `geo-service maps render` writes (default: ./maps)"
    )
    guide_dir: str | None = Field(
        default=None, description="the built manual served at /guide/ (`make guide` builds "
                                  "it; default: ./build/guide)"
    )


class PrivacySettings(_GeoSettings):
    """Check-ins and reports: the privacy hashes' key, rate limits,
    the reported-closed rule, and how precisely locations are logged."""

    _feedback_key: bytes | None = PrivateAttr(default=None)
    env: Literal["development", "production"] = Field(
        default="development", description="production refuses weak or public secrets")
    feedback_hash_key: SecretStr | None = Field(
        default=None,
        description="HMAC key for the device and client hashes of check-ins and reports "
                    "(at least 32 characters); unset: a random key generated on first start "
                    "and kept in feedback_key_file")
    feedback_key_file: str | None = Field(
        default=None, description="where the generated key is kept, mode 0600 (default: "
                                  ".secrets/feedback_hash.key in the project, git-ignored)")
    checkin_dedup_minutes: int = Field(
        default=30, description="check-ins from one device at one station within this "
                                "many minutes count once")
    checkin_rate_per_hour: int = Field(
        default=30, description="check-ins one client address may make per hour")
    report_rate_per_hour: int = Field(
        default=10, description="reports and confirmations one client address may make per hour")
    reported_closed_threshold: int = Field(
        default=3, description="independent 'closed' reports that mark a station reported "
                               "closed")
    reported_closed_window_h: int = Field(
        default=24, description="…within this many hours")
    log_location_decimals: int = Field(
        default=3,
        description="query coordinates are rounded to this many decimals in logs (~100 m)",
    )
    def feedback_key(self) -> bytes:
        """The HMAC key of the privacy hashes: configured, or generated once per installation.

        A key anyone knows would let anyone recompute which IPv4 address or
        device made a visit or a report (there are only 2^32 addresses), so
        the old public default is refused in production and a fresh random key
        is written (``O_EXCL``, 0600) the first time none exists.
        """
        if self._feedback_key is None:
            if self.feedback_hash_key is not None:
                key = self.feedback_hash_key.get_secret_value()
                if self.env == "production" and (key in PUBLIC_KEYS or len(key) < 32):
                    raise ValueError("GEO_FEEDBACK_HASH_KEY is public or shorter than 32 "
                                     "characters: unset it to generate one, or set a secret")
            else:
                key = _read_or_make_key(Path(self.feedback_key_file) if self.feedback_key_file
                                        else PROJECT_ROOT / ".secrets" / "feedback_hash.key")
            self._feedback_key = key.encode()
        return self._feedback_key


class ConsoleSettings(_GeoSettings):
    """The staff console's sign-in: session lifetimes, lockout and throttling."""

    console_idle_minutes: int = Field(
        default=30, ge=1, le=24 * 60,
        description="a console session unused this long ends (minutes)")
    console_session_hours: int = Field(
        default=12, ge=1, le=30 * 24,
        description="a console session ends this long after sign-in, used or not (hours)")
    console_lockout_failures: int = Field(
        default=5, ge=1, le=100,
        description="failed sign-ins in a row that lock an account")
    console_lockout_minutes: int = Field(
        default=15, ge=1, le=24 * 60, description="how long a locked account stays locked")
    console_client_failures: int = Field(
        default=20, ge=1, le=10_000,
        description="failed sign-ins one client address (group) may make per "
                    "console_client_window_minutes, whatever the account names")
    console_client_window_minutes: int = Field(
        default=15, ge=1, le=24 * 60, description="…within this many minutes")


#: E-bike speeds by OSM ``highway`` class, metres a second (4.2 m/s ≈ 15 km/h, the
#: national e-bike limit is 25 km/h but couriers' average in streets is lower); a class
#: not listed is never ridden (steps, motorways). Footways and pedestrian streets are
#: ridden only where bicycle=yes/designated/permissive says so, at their speed here.
EBIKE_SPEEDS_MPS: dict[str, float] = {
    "trunk": 4.2, "trunk_link": 4.2, "primary": 4.2, "primary_link": 4.2,
    "secondary": 4.2, "secondary_link": 4.2, "tertiary": 4.2, "tertiary_link": 4.2,
    "unclassified": 4.2, "residential": 4.2, "road": 4.2, "cycleway": 4.2,
    "living_street": 2.8, "service": 3.5, "track": 3.0, "path": 2.5,
    "footway": 1.5, "pedestrian": 1.5, "bridleway": 2.5,
}


class RoadSettings(_GeoSettings):
    """Roads (issue 28): the speeds edge costs are computed with at load time, and the
    nearest-by-road search's bounds."""

    roads_walk_speed_mps: float = Field(
        default=1.2, gt=0, description="walking speed on every walkable way (1.2 m/s ≈ "
                                       "4.3 km/h), also the speed off the network (snap)")
    roads_ebike_speeds_mps: dict[str, float] = Field(
        default_factory=lambda: dict(EBIKE_SPEEDS_MPS),
        description="e-bike speed by highway class, JSON (GEO_ROADS_EBIKE_SPEEDS_MPS); a "
                    "class not listed is not ridden")
    roads_max_minutes: float = Field(
        default=90.0, gt=0, description="nearest by road searches this far in time; "
                                        "stations farther by road are not answered")
    roads_max_snap_m: float = Field(
        default=1000.0, gt=0, description="nearest by road refuses (409) a point farther "
                                          "than this from any usable road: the loaded "
                                          "roads do not cover it")


class PhotoSettings(_GeoSettings):
    """Station, inspection and report photos: where they are kept and what an upload may be."""

    photo_store: Literal["local", "s3"] = Field(
        default="local",
        description="where photos are kept: local (files by SHA-256 under photo_dir) or s3 "
                    "(an S3-compatible bucket, photo_s3_*)")
    photo_dir: str | None = Field(
        default=None, description="the local store's folder (default: data/photos in the "
                                  "project); back it up with `geo-service backup`")
    photo_max_bytes: int = Field(
        default=15_000_000, ge=1024,
        description="an uploaded photo may be at most this many bytes (413 past it)")
    photo_max_pixels: int = Field(
        default=40_000_000, ge=10_000,
        description="an uploaded photo may have at most this many pixels (width × height; "
                    "413 past it, judged from the header before anything is decoded)")
    photo_jpeg_quality: int = Field(default=85, ge=30, le=95,
                                    description="JPEG quality of the stored photo")
    photo_thumb_px: int = Field(default=320, ge=64, le=1024,
                                description="a thumbnail's long side, in pixels")
    photo_concurrency: int = Field(
        default=2, ge=1,
        description="uploads decoded at once per process (CPU and memory: a 40-megapixel "
                    "photo holds about half a gigabyte while it is decoded); more get 429 "
                    "with Retry-After")
    photo_s3_bucket: str | None = Field(default=None, description="the bucket (photo_store=s3)")
    photo_s3_endpoint_url: str | None = Field(
        default=None, description="an S3-compatible server's URL (MinIO, Ceph, a cloud's); "
                                  "unset: AWS")
    photo_s3_region: str | None = Field(default=None, description="the bucket's region")
    photo_s3_access_key_id: str | None = Field(
        default=None, description="unset: boto3's usual places (environment, instance role)")
    photo_s3_secret_access_key: SecretStr | None = None
    photo_s3_prefix: str = Field(default="photos/", max_length=200,
                                 description="key prefix of the photos in the bucket")


class Settings(RoadSettings, PhotoSettings, ConsoleSettings, PrivacySettings,
               PublishingSettings, ImportSettings, HttpSettings, NearestSettings,
               DatabaseSettings):
    """Service settings, one object passed around; every field can be set as ``GEO_<NAME>``.

    Composed of one class per concern (the database, nearest, HTTP limits, imports,
    publishing, privacy) so each concern's fields and rules read together; the names
    and defaults are those of the single class it was.
    """

    model_config = SettingsConfigDict(env_prefix="GEO_", extra="ignore")

    default_timezone: str = "Asia/Shanghai"

    def nearest_index_url(self, database_url: str) -> str | None:
        """Where the memory index listens and reads: its own URL, else the service's
        unless that is a transaction pooler (None: the index cannot follow there)."""
        if self.nearest_index_database_url:
            return self.nearest_index_database_url
        return None if self.db_pgbouncer else database_url


def sqlalchemy_url(libpq: str) -> str:
    """Turn a libpq URL or key=value string into a SQLAlchemy URL for the psycopg 3 driver."""
    from psycopg.conninfo import conninfo_to_dict
    from sqlalchemy.engine import URL

    params = {k: str(v) for k, v in conninfo_to_dict(libpq).items() if v is not None}
    host = params.pop("host", None)
    port = params.pop("port", None)
    url = URL.create(
        "postgresql+psycopg",
        username=params.pop("user", None),
        password=params.pop("password", None),
        host=None if host is None or host.startswith("/") else host,
        port=int(port) if port else None,
        database=params.pop("dbname", None),
        query={**params, **({"host": host} if host and host.startswith("/") else {})},
    )
    return url.render_as_string(hide_password=False)
