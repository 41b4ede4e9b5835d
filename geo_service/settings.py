"""Configuration read from the environment (prefix ``GEO_``).

Nothing here runs at import time: :func:`Settings` is built by the CLI or by
tests and handed to :func:`geo_service.main.create_app`, so tests never need
set-env-then-import tricks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Service settings; every field can be set as ``GEO_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="GEO_", extra="ignore")

    database_url: str | None = Field(
        default=None,
        description="libpq URL of a PostGIS database; unset means the project-local cluster",
    )
    pool_min: int = 2
    pool_max: int = 8
    pool_timeout_s: float = 5.0
    statement_timeout_ms: int = 15_000

    max_k: int = Field(default=100, description="cap on k in nearest queries")
    max_radius_m: float = Field(default=50_000.0, description="cap on radius_m in nearest queries")
    default_radius_m: float = 50_000.0
    max_page_size: int = 500
    max_body_bytes: int = 1_000_000
    max_import_bytes: int = 20_000_000
    max_import_rows: int = 200_000
    duplicate_distance_m: float = 30.0
    log_location_decimals: int = Field(
        default=3,
        description="query coordinates are rounded to this many decimals in logs (~100 m)",
    )
    default_timezone: str = "Asia/Shanghai"
    feed_ttl_s: int = Field(
        default=60, description="how long consumers may keep a feed (GBFS ttl, max-age)"
    )
    map_basemap: str | None = Field(
        default=None,
        description="basemap preset of the maps: osm, amap, tencent or none "
                    "(unset: osm online, none offline)",
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
    feedback_hash_key: str = Field(
        default="geo_service-development-key",
        description="HMAC key for the device and client hashes of check-ins and reports; "
                    "set a secret one in production",
    )
    trust_forwarded_for: bool = Field(
        default=False, description="take the client address from X-Forwarded-For (behind a "
                                   "trusted proxy only)")
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

    def resolved_database_url(self) -> str:
        """The URL to connect to: the configured one, else the local cluster's."""
        if self.database_url:
            return self.database_url
        from geo_service.localdb import LocalCluster

        return LocalCluster.default().url


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
