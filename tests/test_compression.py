"""Bytes on the wire: bodies gzipped when the client asks, files revalidated with 304.

Each case fetches the same resource twice, once accepting gzip and once not, and
checks the compressed body inflates to exactly the plain one: compression may
change the bytes on the wire, never the content.
"""

from __future__ import annotations

import gzip
import re
from typing import Any

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient

GZIP = {"Accept-Encoding": "gzip"}
PLAIN = {"Accept-Encoding": "identity"}


def _raw(client: TestClient, url: str, headers: dict[str, str]
         ) -> tuple[httpx.Response, bytes]:
    """The response and its body as sent (``.content`` would be inflated)."""
    with client.stream("GET", url, headers=headers) as r:
        return r, b"".join(r.iter_raw())


@pytest.mark.parametrize("url", [
    "/v1/feeds/stations.geojson",
    "/v1/feeds/changes?after=0",
    "/v1/exports/amap.csv",
    "/v1/stations/nearest?lon=109.51&lat=18.25",
    "/v1/app/snapshot?lon=109.51&lat=18.25",
    "/maps/stations.html",
    "/app/",
    "/app/app.js",
])
def test_bodies_are_gzipped_when_accepted_and_inflate_to_the_plain_body(
        client: TestClient, seeded: psycopg.Connection[Any], url: str) -> None:
    zipped, sent = _raw(client, url, GZIP)
    plain, plain_body = _raw(client, url, PLAIN)
    assert zipped.status_code == plain.status_code == 200
    assert zipped.headers["content-encoding"] == "gzip"
    assert "Accept-Encoding" in zipped.headers["vary"]
    assert "content-encoding" not in plain.headers
    body = gzip.decompress(sent)
    assert len(sent) < len(body)
    if url.startswith("/maps/"):  # random element ids and a fresh script nonce per page
        assert len(body) == len(plain_body) and body.startswith(b"<!DOCTYPE html>")
    else:  # equal but for digits: a "generated at" instant may tick in between
        assert re.sub(rb"[0-9]", b"0", body) == re.sub(rb"[0-9]", b"0", plain_body)


def test_already_compressed_and_small_bodies_go_as_they_are(
        client: TestClient, seeded: psycopg.Connection[Any]) -> None:
    xlsx, body = _raw(client, "/v1/exports/amap.xlsx", GZIP)
    assert xlsx.status_code == 200 and "content-encoding" not in xlsx.headers
    assert body[:2] == b"PK"
    small, _ = _raw(client, "/healthz", GZIP)
    assert small.status_code == 200 and "content-encoding" not in small.headers


def test_a_304_stays_empty(client: TestClient, seeded: psycopg.Connection[Any]) -> None:
    first = client.get("/v1/feeds/stations.geojson", headers=GZIP)
    again, body = _raw(client, "/v1/feeds/stations.geojson",
                 {**GZIP, "If-None-Match": first.headers["etag"]})
    assert again.status_code == 304 and body == b""


@pytest.mark.parametrize("path", ["app/vendor/geodesic.js", "maps/assets/leaflet/dist/leaflet.js",
                                  "app/app.js"])
def test_files_answer_a_revalidation_with_304(client: TestClient, path: str) -> None:
    """A phone revalidating its copy pays for headers, not the file again."""
    first = client.get(chr(47) + path)
    assert first.status_code == 200 and first.headers["etag"]
    again, body = _raw(client, chr(47) + path, {**GZIP, "If-None-Match": first.headers["etag"]})
    assert again.status_code == 304 and body == b""
    assert again.headers["etag"] == first.headers["etag"]
    assert again.headers["cache-control"] == first.headers["cache-control"]
    weak, _ = _raw(client, chr(47) + path, {"If-None-Match": "W/" + first.headers["etag"]})
    assert weak.status_code == 304
    other, _ = _raw(client, chr(47) + path, {"If-None-Match": '"something-else"'})
    assert other.status_code == 200
