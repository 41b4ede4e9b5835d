"""The deployment topology: docker-compose.yml as docker-compose reads it, and nginx's
configuration as nginx itself checks it (no container engine needed for either)."""

from __future__ import annotations

import configparser
import functools
import os
import re
import secrets
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import yaml

from geo_service.infra.localdb import LocalCluster
from geo_service.infra.paths import PROJECT_ROOT
from geo_service.infra.pgbouncer import LocalPgBouncer
from tests.conftest import station_body
from tests.faults_support import ARTIFACTS
from tests.helpers import free_port, insert_stations, live_server

COMPOSE = PROJECT_ROOT / "docker-compose.yml"
NGINX_CONF = PROJECT_ROOT / "deploy" / "nginx" / "nginx.conf"
PGBOUNCER_INI = PROJECT_ROOT / "deploy" / "pgbouncer" / "pgbouncer.ini"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def _compose_config(**env: str) -> dict[str, Any]:
    """``docker-compose config``: the file with variables, anchors and paths resolved."""
    return _compose_config_cached(tuple(sorted(env.items())))


@functools.lru_cache(maxsize=4)
def _compose_config_cached(env_items: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    env = dict(env_items)
    if not shutil.which("docker-compose"):
        pytest.skip("docker-compose is missing (scripts/system-deps.sh installs it)")
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GEO_")}
    res = subprocess.run(["docker-compose", "-f", str(COMPOSE), "config"], capture_output=True,
                         text=True, env={**clean, **env}, cwd=PROJECT_ROOT, timeout=60)
    assert res.returncode == 0, res.stderr
    config: dict[str, Any] = yaml.safe_load(res.stdout)
    return config


def test_compose_has_the_topology() -> None:
    services = _compose_config()["services"]
    assert set(services) == {"db", "db-replica", "pgbouncer", "migrate", "api1", "api2",
                             "nginx"}
    assert "wal_level=replica" in services["db"]["command"]
    assert "pg_basebackup" in Path(PROJECT_ROOT / "deploy/postgres/replica-entrypoint.sh"
                                   ).read_text()
    for name in ("api1", "api2"):
        api = services[name]
        env = api["environment"]
        assert "@pgbouncer:6432/geo" in env["GEO_DATABASE_URL"]
        assert env["GEO_DB_PGBOUNCER"] == "1"
        # The memory index listens on a direct connection to the primary, not the pooler.
        assert "@db:5432/geo" in env["GEO_NEAREST_INDEX_DATABASE_URL"]
        assert api["depends_on"]["db"]["condition"] == "service_healthy"
        assert "--workers" in api["command"]
        assert api["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert "ports" not in api, "the API is reached through nginx only"
        # Both replicas hash devices with one key.
        assert any(v.startswith("secrets:") or v.get("source") == "secrets"
                   for v in _volumes(api))
    assert services["nginx"]["ports"], "nginx is the one published entry"
    for service in services.values():  # every file a service mounts is in the repository
        for vol in _volumes(service):
            source = vol if isinstance(vol, str) else vol.get("source", "")
            if isinstance(source, str) and source.startswith("/"):
                assert Path(source.split(":")[0]).exists(), source


def _volumes(service: dict[str, Any]) -> list[Any]:
    return list(service.get("volumes", []))


def test_sample_data_only_when_asked() -> None:
    default = _compose_config()["services"]
    assert default["migrate"]["environment"]["GEO_LOAD_SAMPLE"] == "0"
    assert "geo-service seed" in default["migrate"]["command"]
    assert re.search(r'if \[ "\$+GEO_LOAD_SAMPLE" = 1 \]', default["migrate"]["command"])
    for name, service in default.items():
        if name != "migrate":
            assert "seed" not in str(service.get("command", "")), name
    asked = _compose_config(GEO_LOAD_SAMPLE="1")["services"]
    assert asked["migrate"]["environment"]["GEO_LOAD_SAMPLE"] == "1"


def test_shipped_pgbouncer_config_matches_the_tested_one(tmp_path: Path) -> None:
    """The compose pooler's settings are the ones tests/test_pgbouncer.py runs."""
    def read(text: str) -> configparser.ConfigParser:
        p = configparser.ConfigParser(delimiters=("=",), comment_prefixes=(";",),
                                      interpolation=None)
        p.read_string(text)
        return p

    shipped = read(PGBOUNCER_INI.read_text())
    tested = read(LocalPgBouncer(tmp_path, LocalCluster(tmp_path)).config())
    assert shipped["pgbouncer"]["pool_mode"] == tested["pgbouncer"]["pool_mode"] == "transaction"
    tested_query = re.search(r"connect_query='([^']*)'", tested["databases"]["*"])
    assert tested_query
    for db in ("geo", "geo_replica"):
        assert f"connect_query='{tested_query.group(1)}'" in shipped["databases"][db]


def _nginx_copy(tmp_path: Path, upstreams: tuple[str, str], listen: int | None = None) -> Path:
    """The shipped nginx.conf with loopback upstreams and paths under ``tmp_path``
    (compose's host names resolve only inside compose)."""
    text = NGINX_CONF.read_text()
    for name, addr in zip(("api1:8000", "api2:8000"), upstreams, strict=True):
        assert name in text
        text = text.replace(name, addr)
    text = text.replace("/var/cache/nginx/geo", str(tmp_path / "cache"))
    text = text.replace("/var/log/nginx/access.log", str(tmp_path / "access.log"))
    if listen is not None:
        assert "listen 80;" in text
        text = text.replace("listen 80;", f"listen 127.0.0.1:{listen};")
    conf = tmp_path / "nginx.conf"
    conf.write_text(text)
    return conf


@pytest.mark.skipif(not Path(NGINX).exists(), reason="Debian's nginx is missing")
def test_nginx_accepts_the_config(tmp_path: Path) -> None:
    text = NGINX_CONF.read_text()
    for directive in ("gzip on;", "proxy_cache_revalidate on;", "limit_req zone=public",
                      "limit_req_zone", "proxy_cache_path", "upstream geo_api"):
        assert directive in text, directive
    conf = _nginx_copy(tmp_path, ("127.0.0.1:18001", "127.0.0.1:18002"))
    res = subprocess.run([NGINX, "-t", "-c", str(conf), "-p", str(tmp_path),
                          "-g", f"pid {tmp_path / 'nginx.pid'}; "
                                f"error_log {tmp_path / 'error.log'};"],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    assert "test is successful" in res.stderr


@pytest.mark.slow
@pytest.mark.skipif(not Path(NGINX).exists(), reason="Debian's nginx is missing")
def test_nginx_caches_feeds_with_revalidation_compresses_and_limits(
        db_url: str, db: psycopg.Connection[Any]) -> None:
    """The shipped config, run: a feed is kept for its max-age, then revalidated with its
    ETag (the API answers 304), refetched once a write changes it; gzip; 429 past the rate.

    Issue 24, item 16: no step may depend on the machine's speed. The feed revalidated is
    the change feed past its last change, whose ETag moves with writes only (the
    station feed's also moves with the open-now minute, so a slow run that crossed a
    minute got EXPIRED where REVALIDATED was due), and each expiry is waited for
    explicitly: the max-age plus the second nginx rounds its clock to.
    """
    insert_stations(db, [station_body(f"N-{i}", 109.5 + i * 0.01, 18.25) for i in range(20)])
    ARTIFACTS.mkdir(exist_ok=True)
    os.chmod(ARTIFACTS, 0o755)
    work = ARTIFACTS / f"nginx-{secrets.token_hex(3)}"
    work.mkdir()
    os.chmod(work, 0o777)  # nginx's workers run as nobody: cache and temp files go here
    port = free_port()
    ttl = 2
    with live_server(db_url, {"GEO_FEED_TTL_S": str(ttl)}) as api:
        upstream = api.removeprefix("http://")
        conf = _nginx_copy(work, (upstream, upstream), listen=port)
        nginx = subprocess.Popen(
            [NGINX, "-c", str(conf), "-p", str(work),
             "-g", f"daemon off; pid {work / 'nginx.pid'}; error_log {work / 'error.log'};"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 15
            while True:
                try:
                    if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline and nginx.poll() is None, "nginx did not start"
                time.sleep(0.1)

            def get(url: str) -> httpx.Response:
                return httpx.get(url, timeout=30, headers={"Accept-Encoding": "gzip"})

            def expire() -> None:
                """Past the cached copy's max-age, whatever the machine's speed."""
                time.sleep(ttl + 1.2)

            stations = get(f"{base}/v1/feeds/stations.geojson")
            assert stations.headers["x-cache-status"] == "MISS"
            assert stations.headers["content-encoding"] == "gzip"
            assert len(stations.json()["features"]) == 20
            cursor = get(f"{base}/v1/feeds/changes").json()["next_cursor"]
            feed = f"{base}/v1/feeds/changes?since={cursor}"
            first, second = get(feed), get(feed)
            assert (first.headers["x-cache-status"], second.headers["x-cache-status"]) == \
                ("MISS", "HIT")
            assert second.json()["changes"] == [] and second.headers["etag"]
            expire()  # nginx now asks the API with If-None-Match
            third = get(feed)
            assert third.headers["x-cache-status"] == "REVALIDATED", (first.headers, third.headers)
            assert third.content == second.content
            db.execute("UPDATE station SET name = 'renamed', version = version + 1, "
                       "updated_at = now() WHERE code = 'N-0'")
            expire()
            fourth = get(feed)
            assert fourth.headers["x-cache-status"] == "EXPIRED", fourth.headers
            assert fourth.headers["etag"] != second.headers["etag"]
            assert "renamed" in fourth.text

            # Public requests past 20/s (+ a burst of 40) are refused; keyed ones are not.
            with httpx.Client(timeout=30) as c, ThreadPoolExecutor(16) as pool:
                statuses = list(pool.map(lambda _: c.get(f"{base}/v1/amenities").status_code,
                                         range(150)))
            assert 429 in statuses and statuses.count(200) >= 40, statuses
            keyed = httpx.get(f"{base}/v1/amenities", timeout=10,
                              headers={"Authorization": "Bearer x"})
            assert keyed.status_code != 429
        finally:
            nginx.terminate()
            nginx.wait(10)
            shutil.rmtree(work, ignore_errors=True)
