"""Headers and URLs: no forged Host in any link, security headers on every response.

Absolute links (OGC, TileJSON, feed discovery, JSON Schema ``$id``, the QR
check-in link) once followed the request's ``Host``, so ``Host: evil.example``
got links to evil.example, and the OGC landing page was publicly cacheable. HTML
pages carried no CSP, no framing rule and no ``nosniff``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from geo_service.infra.settings import Settings
from geo_service.web.app import create_app
from tests.conftest import station_body
from tests.helpers import insert_stations

EVIL = "evil.example"
#: Every response that carries an absolute link, and redirects the framework makes.
LINKED = ["/ogc", "/ogc/", "/ogc/collections", "/ogc/collections/stations",
          "/ogc/collections/stations/queryables", "/ogc/collections/stations/items?limit=1",
          "/ogc/collections/stations/items/L-1", "/v1/feeds", "/v1/feeds/",
          "/v1/feeds/schemas/stations.json", "/tiles/stations.json",
          "/v1/stations/L-1/checkin-link"]
OTHER = ["/", "/docs", "/openapi.json", "/v1/checkin/L-1", "/v1/stations/L-1",
         "/v1/feeds/stations.geojson", "/maps/stations.html?offline=true", "/healthz",
         "/v1/stations/nope", "/tiles/8/0/0.mvt"]
PUBLIC = "https://stations.example.org/geo"


@pytest.fixture
def station(db: psycopg.Connection[Any]) -> None:
    insert_stations(db, [station_body("L-1", 109.5, 18.25)])


def app_client(db_url: str, host: str, **settings: Any) -> TestClient:
    return TestClient(create_app(Settings(database_url=db_url, **settings)),
                      base_url=f"http://{host}", raise_server_exceptions=False,
                      follow_redirects=False)


@pytest.fixture
def forged(db_url: str, station: None) -> Iterator[TestClient]:
    with app_client(db_url, EVIL) as c:
        yield c


def _leaks(r: Any) -> list[str]:
    found = [f"body of {r.url}"] if EVIL in r.text else []
    return found + [f"{k} of {r.url}" for k, v in r.headers.items() if EVIL in v]


def test_forged_host_never_appears_in_a_response(forged: TestClient) -> None:
    for path in LINKED + OTHER:
        r = forged.get(path)
        assert r.status_code < 500, (path, r.text)
        assert _leaks(r) == []
    # Where a link must be written, a foreign Host is refused, naming the field.
    r = forged.get("/ogc")
    assert r.status_code == 400
    assert [f["field"] for f in r.json()["error"]["fields"]] == ["Host"]
    redirect = forged.get("/ogc/")
    assert redirect.status_code in (307, 308) and redirect.headers["location"] == "/ogc"


def test_public_base_url_builds_every_link(db_url: str, station: None) -> None:
    with app_client(db_url, EVIL, public_base_url=PUBLIC + "/") as c:
        for path in LINKED:
            r = c.get(path)
            assert r.status_code < 400 or path.endswith("/"), (path, r.text)
            assert _leaks(r) == []
        landing = c.get("/ogc")
        assert {link["href"] for link in landing.json()["links"]} >= {
            f"{PUBLIC}/ogc", f"{PUBLIC}/ogc/collections"}
        assert landing.headers["cache-control"].startswith("public")
        assert c.get("/tiles/stations.json").json()["tiles"] == [
            f"{PUBLIC}/tiles/{{z}}/{{x}}/{{y}}.mvt"]
        assert c.get("/v1/stations/L-1/checkin-link").json()["url"] == f"{PUBLIC}/v1/checkin/L-1"
        items = c.get("/ogc/collections/stations/items?limit=1&offset=0").json()
        assert all(link["href"].startswith(PUBLIC + "/") for link in items["links"])
        feeds = c.get("/v1/feeds").json()["data"]["feeds"]
        assert all(f["url"].startswith(PUBLIC + "/") for f in feeds)
        schema = c.get("/v1/feeds/schemas/stations.json").json()
        assert schema["$id"] == f"{PUBLIC}/v1/feeds/schemas/stations.json"


def test_links_from_the_request_are_not_shared_cache_material(
        db_url: str, station: None) -> None:
    with app_client(db_url, "localhost:8000") as c:
        landing = c.get("/ogc")
        assert landing.status_code == 200
        assert landing.json()["links"][0]["href"] == "http://localhost:8000/ogc"
        for path in ("/ogc", "/ogc/collections", "/ogc/collections/stations/items",
                     "/ogc/collections/stations/queryables", "/v1/feeds",
                     "/tiles/stations.json", "/v1/feeds/schemas/stations.json"):
            cache = c.get(path).headers["cache-control"]
            assert "public" not in cache and "private" in cache, (path, cache)
        # Plain feeds without links stay publicly cacheable.
        assert c.get("/v1/feeds/station_status").headers["cache-control"].startswith("public")


@pytest.mark.parametrize("url", ["ftp://x.example", "https://x.example/?a=1",
                                 "stations.example.org", "https://x.example/#top"])
def test_public_base_url_must_be_a_plain_http_url(url: str) -> None:
    with pytest.raises(ValidationError):
        Settings(public_base_url=url)


def test_allowed_hosts_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEO_ALLOWED_HOSTS", "Stations.example.org, [::1]")
    assert Settings().allowed_hosts == ["stations.example.org", "::1"]


def test_security_headers(client: TestClient, station: None) -> None:
    for path in LINKED + OTHER:
        r = client.get(path, follow_redirects=False)
        assert r.headers["x-content-type-options"] == "nosniff", path
        assert r.headers["x-frame-options"] == "DENY", path
        assert r.headers["referrer-policy"] == ("strict-origin-when-cross-origin"
                                                if path.startswith("/maps/") else
                                                "no-referrer"), path
        if r.headers.get("content-type", "").startswith("text/html"):
            csp = r.headers["content-security-policy"]
            assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp, path
            assert "base-uri 'none'" in csp and "unsafe-inline' " not in csp.split(
                "script-src")[-1].split(";")[0], path
    root = client.get("/").headers["content-security-policy"]
    assert "default-src 'none'" in root and "script-src" not in root
    checkin = client.get("/v1/checkin/L-1").headers["content-security-policy"]
    assert "script-src 'sha256-" in checkin and "connect-src 'self'" in checkin
    page = client.get("/maps/stations.html?offline=true").text
    assert '<meta http-equiv="Content-Security-Policy"' in page
    assert client.post("/v1/stations", content=b"x" * 2_000_000).headers[
        "x-content-type-options"] == "nosniff"


def test_serve_allows_the_host_it_listens_on() -> None:
    from geo_service.cli import listening_on

    base = Settings(database_url="postgresql://unused@localhost/unused")
    assert listening_on(base, "10.0.0.5").allowed_hosts == [*base.allowed_hosts, "10.0.0.5"]
    assert listening_on(base, "0.0.0.0").allowed_hosts == base.allowed_hosts
    assert listening_on(base, "127.0.0.1").allowed_hosts == base.allowed_hosts
