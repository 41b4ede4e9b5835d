"""Photos (issue 27): uploads made safe, stored once, served with caching, kept private
until approved, in the S3 store, in backups and in the exports."""

from __future__ import annotations

import hashlib
import io
import struct
import zlib
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from geo_service.domain.errors import GeoServiceError
from geo_service.infra.photo_store import LocalStore
from geo_service.infra.settings import Settings
from geo_service.photos import images
from tests.conftest import station_body

TIANYA = (109.50, 18.25)
GPS_IFD = 0x8825


def photo_bytes(fmt: str = "JPEG", size: tuple[int, int] = (200, 100), *,
                orientation: int | None = None, gps: bool = True,
                color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    """A small photo as a phone makes it: GPS position, make and model, orientation."""
    image = Image.new("RGB", size, color)
    image.putpixel((0, 0), (0, 0, 255))  # a corner to tell rotations apart
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x0110] = "Phone 15 Pro"  # Model
    if orientation is not None:
        exif[0x0112] = orientation
    if gps:
        exif[GPS_IFD] = {1: "N", 2: (18.0, 15.0, 30.0), 3: "E", 4: (109.0, 30.0, 0.0)}
    out = io.BytesIO()
    if fmt == "HEIF":
        images._register_heif()
    image.save(out, fmt, exif=exif.tobytes())
    return out.getvalue()


def png_bomb(width: int = 20_000, height: int = 20_000) -> bytes:
    """A PNG whose header declares ``width`` × ``height`` pixels, in a few hundred bytes."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    row = b"\x00" + b"\x00" * width
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(row * 8)) + chunk(b"IEND", b""))


def gps_of(data: bytes) -> dict[int, Any]:
    return dict(Image.open(io.BytesIO(data)).getexif().get_ifd(GPS_IFD))


# --- the image pipeline (no database) ----------------------------------------------------

def test_gps_and_device_data_are_gone_and_the_photo_is_upright() -> None:
    sent = photo_bytes(orientation=6)
    assert gps_of(sent), "the test photo must carry GPS to prove anything"
    done = images.process(sent, images.Limits())
    stored = Image.open(io.BytesIO(done.data))
    assert stored.format == "JPEG"
    assert gps_of(done.data) == {}
    assert dict(stored.getexif()) == {}
    assert b"PhoneMaker" not in done.data and b"Phone 15 Pro" not in done.data
    # Orientation 6 (rotate 90° clockwise to view): a 200×100 picture shows 100×200.
    assert stored.size == (100, 200) == (done.width, done.height)
    assert max(Image.open(io.BytesIO(done.thumb)).size) <= images.Limits().thumb_px
    assert done.sha == hashlib.sha256(done.data).hexdigest()


def test_heic_from_an_iphone_is_read() -> None:
    sent = photo_bytes("HEIF")
    assert Image.open(io.BytesIO(sent)).format == "HEIF"
    done = images.process(sent, images.Limits())
    assert done.source_format == "HEIF"
    assert Image.open(io.BytesIO(done.data)).format == "JPEG"
    assert gps_of(done.data) == {}


def test_the_same_photo_gives_the_same_bytes() -> None:
    sent = photo_bytes("PNG")
    assert images.process(sent, images.Limits()).sha == images.process(sent, images.Limits()).sha


@pytest.mark.parametrize(("data", "status", "words"), [
    (png_bomb(), 413, "图片像素过多"),
    (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj <<>> endobj\n" * 20, 415, "不是图片文件"),
    (b"GIF89a" + b"\x00" * 100, 415, "不是图片文件"),
])
def test_bombs_and_non_images_are_refused_naming_the_field(data: bytes, status: int,
                                                           words: str) -> None:
    with pytest.raises(GeoServiceError) as caught:
        images.process(data, images.Limits())
    assert caught.value.status == status
    assert words in caught.value.message
    assert caught.value.fields[0][0] == "file"


def test_the_local_store_keeps_a_file_once_by_hash(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    data = b"\xff\xd8 pretend jpeg"
    sha = hashlib.sha256(data).hexdigest()
    assert not store.exists(sha) and store.get(sha) is None
    store.put(sha, data, "image/jpeg")
    store.put(sha, data, "image/jpeg")
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert files == [tmp_path / sha[:2] / sha[2:4] / f"{sha}.jpg"]
    got = store.get(sha)
    assert got is not None and got.data == data and got.content_type == "image/jpeg"
    assert list(store.hashes()) == [sha]
    store.delete(sha)
    assert not store.exists(sha)
    with pytest.raises(ValueError):
        store.put("../../etc/passwd", data, "image/jpeg")


# --- the API -----------------------------------------------------------------------------

@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    """The conftest settings with a photo store of the test's own and a public address."""
    return Settings(database_url=db_url, allowed_hosts=["testserver"], nearest_index="off",
                    photo_dir=str(tmp_path / "photos"),
                    public_base_url="https://stations.example.org")


@pytest.fixture
def station(client: TestClient, keys: dict[str, str]) -> str:
    r = client.post("/v1/stations", headers={"Authorization": keys["admin"]},
                    json=station_body("PH-1", *TIANYA))
    assert r.status_code == 201, r.text
    return "PH-1"


def upload(client: TestClient, key: str | None, code: str, data: bytes, *,
           kind: str = "exterior", name: str = "IMG_0001.jpg") -> Any:
    return client.post(f"/v1/stations/{code}/photos", data={"kind": kind},
                       files={"file": (name, data, "image/jpeg")},
                       headers={"Authorization": key} if key else {})


def test_upload_strips_gps_and_stores_once(client: TestClient, keys: dict[str, str],
                                           station: str, settings: Settings) -> None:
    sent = photo_bytes(orientation=6)
    first = upload(client, keys["editor"], station, sent)
    assert first.status_code == 201, first.text
    body = first.json()
    assert body["kind"] == "exterior" and body["station_code"] == station
    again = upload(client, keys["editor"], station, sent)
    assert again.status_code == 200 and again.json()["id"] == body["id"]
    root = Path(str(settings.photo_dir))
    files = sorted(p for p in root.rglob("*.jpg"))
    assert len(files) == 2  # the photo and its thumbnail, once
    stored = (root / body["sha"][:2] / body["sha"][2:4] / f"{body['sha']}.jpg").read_bytes()
    assert gps_of(sent) and gps_of(stored) == {}
    listed = client.get(f"/v1/stations/{station}/photos").json()
    assert [p["sha"] for p in listed["photos"]] == [body["sha"]]


def test_refusals_name_the_field(client: TestClient, keys: dict[str, str],
                                 station: str) -> None:
    bomb = upload(client, keys["editor"], station, png_bomb(), name="big.png")
    assert bomb.status_code == 413
    assert "图片像素过多" in bomb.json()["error"]["message"]
    assert bomb.json()["error"]["fields"][0]["field"] == "file"
    fake = upload(client, keys["editor"], station, b"%PDF-1.4 not a photo" * 10)
    assert fake.status_code == 415 and "不是图片文件" in fake.json()["error"]["message"]
    assert upload(client, None, station, photo_bytes()).status_code == 401
    outside = client.post("/v1/stations", headers={"Authorization": keys["admin"]},
                          json=station_body("PJ-9", 109.55, 18.27))  # Jiyang
    assert outside.status_code == 201
    assert upload(client, keys["tianya_editor"], "PJ-9", photo_bytes()).status_code == 403
    bad_kind = upload(client, keys["editor"], station, photo_bytes(), kind="roof")
    assert bad_kind.status_code == 422


def test_files_are_served_with_long_caching(client: TestClient, keys: dict[str, str],
                                            station: str) -> None:
    sha = upload(client, keys["editor"], station, photo_bytes()).json()["sha"]
    r = client.get(f"/v1/photos/{sha}.jpg")
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert r.headers["etag"] == f'"{sha}"'
    assert hashlib.sha256(r.content).hexdigest() == sha
    again = client.get(f"/v1/photos/{sha}.jpg", headers={"If-None-Match": f'"{sha}"'})
    assert again.status_code == 304
    thumb = client.get(f"/v1/photos/{sha}/thumb.jpg")
    assert thumb.status_code == 200 and thumb.headers["cache-control"].endswith("immutable")
    assert max(Image.open(io.BytesIO(thumb.content)).size) <= 320
    assert client.get(f"/v1/photos/{'0' * 64}.jpg").status_code == 404


def test_set_exterior_and_soft_delete(client: TestClient, keys: dict[str, str],
                                      station: str, db: psycopg.Connection[Any]) -> None:
    ed = keys["editor"]
    a = upload(client, ed, station, photo_bytes(color=(1, 2, 3)), kind="exterior").json()
    b = upload(client, ed, station, photo_bytes(color=(9, 9, 9)), kind="interior").json()
    r = client.patch(f"/v1/stations/{station}/photos/{b['id']}", json={"kind": "exterior"},
                     headers={"Authorization": ed})
    assert r.status_code == 200, r.text
    order = [p["id"] for p in client.get(f"/v1/stations/{station}/photos").json()["photos"]]
    assert order == [b["id"], a["id"]]
    assert client.delete(f"/v1/stations/{station}/photos/{b['id']}",
                         headers={"Authorization": ed}).status_code == 204
    assert client.delete(f"/v1/stations/{station}/photos/{b['id']}",
                         headers={"Authorization": ed}).status_code == 404
    left = client.get(f"/v1/stations/{station}/photos").json()["photos"]
    assert [p["id"] for p in left] == [a["id"]]
    row = db.execute("SELECT deleted_at IS NOT NULL FROM station_photo WHERE id = %s",
                     (b["id"],)).fetchone()
    assert row == (True,)
    audited = db.execute("SELECT count(*) FROM audit_log WHERE action LIKE 'station_photo.%%'"
                         ).fetchone()
    assert audited is not None and audited[0] >= 3


# --- the S3 store, against a real S3-compatible server on the loopback --------------------

@pytest.fixture(scope="module")
def s3_endpoint() -> Any:
    """moto's S3 server (werkzeug on a free loopback port, in a thread): real HTTP, real
    signatures, the same boto3 calls a MinIO or a cloud bucket answers."""
    from moto.server import ThreadedMotoServer

    from tests.helpers import free_port

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def test_the_s3_store_round_trips_through_a_real_server(s3_endpoint: str) -> None:
    import boto3

    from geo_service.infra.photo_store import S3Store, store_for

    settings = Settings(photo_store="s3", photo_s3_bucket="photos",
                        photo_s3_endpoint_url=s3_endpoint, photo_s3_region="us-east-1",
                        photo_s3_access_key_id="test", photo_s3_secret_access_key="test")
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1",
                 aws_access_key_id="test", aws_secret_access_key="test"
                 ).create_bucket(Bucket="photos")
    store = store_for(settings)
    assert isinstance(store, S3Store)
    done = images.process(photo_bytes(), images.Limits())
    assert not store.exists(done.sha) and store.get(done.sha) is None
    store.put(done.sha, done.data, "image/jpeg")
    store.put(done.sha, done.data, "image/jpeg")
    got = store.get(done.sha)
    assert got is not None and got.data == done.data and got.content_type == "image/jpeg"
    assert store.exists(done.sha)
    assert list(store.hashes()) == [done.sha]
    store.delete(done.sha)
    assert not store.exists(done.sha) and list(store.hashes()) == []


# --- backups -------------------------------------------------------------------------------

def test_backup_and_restore_keep_the_photos(client: TestClient, keys: dict[str, str],
                                            station: str, settings: Settings, db_url: str,
                                            server_url: str, tmp_path: Path) -> None:
    import secrets

    from geo_service.infra.backup import backup, restore
    from tests.conftest import _with_db

    sha = upload(client, keys["editor"], station, photo_bytes()).json()["sha"]
    source = LocalStore(Path(str(settings.photo_dir)))
    archive = tmp_path / "geo.backup"
    backup(db_url, archive, source)
    name = f"geo_restore_{secrets.token_hex(4)}"
    target_url = _with_db(server_url, name)
    target = LocalStore(tmp_path / "restored-photos")
    try:
        done = restore(archive, target_url, store=target)
        assert done.photos == 2  # the photo and its thumbnail
        assert sorted(target.hashes()) == sorted(source.hashes())
        kept = target.get(sha)
        assert kept is not None and hashlib.sha256(kept.data).hexdigest() == sha
        with psycopg.connect(target_url) as conn:
            row = conn.execute("SELECT s.code FROM station_photo sp JOIN station s "
                               "ON s.id = sp.station_id WHERE sp.photo_sha = %s",
                               (sha,)).fetchone()
        assert row == (station,)
    finally:
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- worker reports and inspections ----------------------------------------------------------

def test_a_report_photo_is_private_until_a_clerk_approves_it(
        client: TestClient, keys: dict[str, str], station: str) -> None:
    sent = client.post("/v1/report-photos", files={"file": ("x.heic", photo_bytes("HEIF"),
                                                             "image/heic")})
    assert sent.status_code == 201, sent.text
    sha = sent.json()["sha"]
    report = client.post(f"/v1/stations/{station}/reports",
                         json={"kind": "other", "comment": "门口积水", "photo": sha})
    assert report.status_code == 201, report.text
    report_id = report.json()["id"]
    assert client.get(f"/v1/photos/{sha}.jpg").status_code == 404
    assert client.get(f"/v1/photos/{sha}/thumb.jpg").status_code == 404
    staff = client.get(f"/v1/photos/{sha}.jpg", headers={"Authorization": keys["editor"]})
    assert staff.status_code == 200 and staff.headers["cache-control"] == "private, no-store"
    pending = client.get("/v1/report-photos/pending",
                         headers={"Authorization": keys["editor"]}).json()
    assert [p["report_id"] for p in pending["photos"]] == [report_id]
    decided = client.post(f"/v1/reports/{report_id}/photo/decision", json={"action": "approve"},
                          headers={"Authorization": keys["editor"]})
    assert decided.status_code == 204, decided.text
    public = client.get(f"/v1/photos/{sha}.jpg")
    assert public.status_code == 200 and public.headers["cache-control"].endswith("immutable")
    assert client.post(f"/v1/reports/{report_id}/photo/decision", json={"action": "reject"},
                       headers={"Authorization": keys["editor"]}).status_code == 404
    unknown = client.post(f"/v1/stations/{station}/reports",
                          json={"kind": "closed", "photo": "a" * 64})
    assert unknown.status_code == 422 and "photo" in unknown.text
    other_site = client.post("/v1/report-photos", headers={"Origin": "https://evil.example"},
                             files={"file": ("x.jpg", photo_bytes(), "image/jpeg")})
    assert other_site.status_code == 415


def test_a_pending_report_photo_is_seen_only_by_staff_of_its_area(
        client: TestClient, keys: dict[str, str], station: str,
        areas: psycopg.Connection[Any]) -> None:
    """A worker's photo shows where the worker stood: before approval only staff whose
    area holds the station see it, by key or in the console (Haitang's staff do not
    see a Tianya report's photo; Tianya's and the unscoped do)."""
    from geo_service.domain.auth import create_key
    from tests.test_console import make, sign_in

    sent = client.post("/v1/report-photos", files={"file": ("x.jpg", photo_bytes(),
                                                             "image/jpeg")})
    sha = sent.json()["sha"]
    assert client.post(f"/v1/stations/{station}/reports",
                       json={"kind": "other", "photo": sha}).status_code == 201
    haitang = f"Bearer {create_key(areas, name='haitang', role='editor', area_code='460202')}"
    for path in (f"/v1/photos/{sha}.jpg", f"/v1/photos/{sha}/thumb.jpg"):
        assert client.get(path, headers={"Authorization": haitang}).status_code == 404
        for key in ("tianya_editor", "editor"):
            assert client.get(path, headers={"Authorization": keys[key]}).status_code == 200
    thumb = f"/console/photos/{sha}/thumb.jpg"
    make(areas, "haitang-clerk", "editor", area="460202")
    make(areas, "tianya-clerk", "editor")
    assert sign_in(client, "haitang-clerk").status_code == 303
    assert client.get(thumb).status_code == 404
    client.cookies.clear()
    assert sign_in(client, "tianya-clerk").status_code == 303
    assert client.get(thumb).status_code == 200


def test_an_inspection_carries_uploaded_photos(client: TestClient, keys: dict[str, str],
                                               station: str, db: psycopg.Connection[Any],
                                               areas: psycopg.Connection[Any]) -> None:
    from geo_service.domain.auth import create_key
    from geo_service.domain.catalogue import TEN_ONES

    inspector = f"Bearer {create_key(areas, name='巡查员', role='inspector')}"
    shas = []
    for color in ((10, 20, 30), (40, 50, 60)):
        r = client.post("/v1/photos", headers={"Authorization": inspector},
                        files={"file": ("p.jpg", photo_bytes(color=color), "image/jpeg")})
        assert r.status_code == 201, r.text
        shas.append(r.json()["sha"])
    body = {"inspected_on": "2026-11-02", "items": {a.code: "present" for a in TEN_ONES},
            "photos": [*shas, "https://example.org/old.jpg"]}
    r = client.post(f"/v1/stations/{station}/inspections", json=body,
                    headers={"Authorization": inspector})
    assert r.status_code == 201, r.text
    linked = db.execute("SELECT photo_sha FROM inspection_photo WHERE inspection_id = %s "
                        "ORDER BY position", (r.json()["id"],)).fetchall()
    assert [s for (s,) in linked] == shas
    for sha in shas:
        stored = client.get(f"/v1/photos/{sha}.jpg")
        assert stored.status_code == 200 and gps_of(stored.content) == {}
    missing = client.post(f"/v1/stations/{station}/inspections",
                          json={**body, "photos": ["b" * 64]},
                          headers={"Authorization": inspector})
    assert missing.status_code == 422 and missing.json()["error"]["fields"][0]["field"] == "photos"


# --- exports and feeds ---------------------------------------------------------------------

def test_exports_and_feeds_carry_the_exterior_photo_url(
        client: TestClient, keys: dict[str, str], station: str) -> None:
    import csv

    import jsonschema

    before = client.get("/v1/feeds/stations.geojson")
    assert before.json()["features"][0]["properties"]["exterior_photo"] is None
    upload(client, keys["editor"], station, photo_bytes(color=(5, 5, 5)), kind="interior")
    sha = upload(client, keys["editor"], station, photo_bytes(), kind="exterior").json()["sha"]
    url = f"https://stations.example.org/v1/photos/{sha}.jpg"
    geojson = client.get("/v1/feeds/stations.geojson",
                         headers={"If-None-Match": before.headers["ETag"]})
    assert geojson.status_code == 200  # the new exterior photo is a change consumers see
    doc = geojson.json()
    assert doc["features"][0]["properties"]["exterior_photo"] == url
    schema = client.get("/v1/feeds/schemas/stations.json").json()
    jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER).validate(doc)
    ogc = client.get(f"/ogc/collections/stations/items/{station}").json()
    assert ogc["properties"]["exterior_photo"] == url
    changes = client.get("/v1/feeds/changes").json()
    assert changes["changes"][-1]["feature"]["properties"]["exterior_photo"] == url
    for platform in ("amap", "baidu", "tencent"):
        text = client.get(f"/v1/exports/{platform}.csv").content.decode("utf-8-sig")
        rows = list(csv.DictReader(io.StringIO(text)))
        assert rows[0]["外观图片"] == url, platform


def test_a_photo_may_be_larger_than_other_bodies_but_not_than_its_own_limit(
        db_url: str, tmp_path: Path, keys: dict[str, str], db: psycopg.Connection[Any]) -> None:
    """Other request bodies stop at GEO_MAX_BODY_BYTES (1 MB); a photo upload at
    GEO_PHOTO_MAX_BYTES, read with a cap, and the body limit just past it."""
    import os

    from geo_service.web.app import create_app

    limit = 1_500_000
    settings = Settings(database_url=db_url, allowed_hosts=["testserver"], nearest_index="off",
                        photo_dir=str(tmp_path), photo_max_bytes=limit)
    noise = Image.frombytes("RGB", (800, 600), os.urandom(800 * 600 * 3))
    out = io.BytesIO()
    noise.save(out, "PNG")
    big = out.getvalue()
    assert settings.max_body_bytes < len(big) < limit
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        r = client.post("/v1/stations", headers={"Authorization": keys["admin"]},
                        json=station_body("PH-2", *TIANYA))
        assert r.status_code == 201
        assert upload(client, keys["editor"], "PH-2", big).status_code == 201
        capped = upload(client, keys["editor"], "PH-2", b"\xff" * (limit + 10))
        assert capped.status_code == 413
        assert capped.json()["error"]["fields"][0]["field"] == "file"
        assert upload(client, keys["editor"], "PH-2", b"\xff" * (2 * limit)).status_code == 413


# --- the console (its pages in Chromium: tests/test_console_browser.py) ----------------------

def test_console_photo_forms_need_the_csrf_token_and_an_editor(
        client: TestClient, keys: dict[str, str], station: str,
        areas: psycopg.Connection[Any]) -> None:
    from tests.test_console import csrf_of, make, sign_in

    make(areas, "insp", "inspector", area=None)
    make(areas, "ed", "editor", area=None)
    sign_in(client, "insp")
    page = client.get(f"/console/stations/{station}/photos")
    assert page.status_code == 200 and 'id="photo_file"' not in page.text
    token = csrf_of(page.text)
    files = {"file": ("a.jpg", photo_bytes(), "image/jpeg")}
    refused = client.post(f"/console/stations/{station}/photos", files=files,
                          data={"csrf_token": token, "kind": "exterior"})
    assert refused.status_code == 403
    client.cookies.clear()
    sign_in(client, "ed")
    page = client.get(f"/console/stations/{station}/photos")
    assert 'accept="image/*"' in page.text and 'capture="environment"' in page.text
    forged = client.post(f"/console/stations/{station}/photos", files=files,
                         data={"csrf_token": "x" * 43, "kind": "exterior"})
    assert forged.status_code == 403
    assert client.get(f"/v1/stations/{station}/photos").json()["count"] == 0
    bomb = client.post(f"/console/stations/{station}/photos",
                       files={"file": ("b.png", png_bomb(), "image/png")},
                       data={"csrf_token": csrf_of(page.text), "kind": "exterior"})
    assert bomb.status_code == 413 and "图片像素过多" in bomb.text
    done = client.post(f"/console/stations/{station}/photos", files=files,
                       data={"csrf_token": csrf_of(page.text), "kind": "exterior"},
                       follow_redirects=False)
    assert done.status_code == 303
    assert client.get(f"/v1/stations/{station}/photos").json()["count"] == 1


def test_uploads_past_the_decoding_slots_are_told_to_retry() -> None:
    from geo_service.domain.errors import Busy
    from geo_service.photos.service import Slots

    slots = Slots(1)
    with slots.take():
        with pytest.raises(Busy) as caught, slots.take():
            pass
        assert caught.value.status == 429 and caught.value.fields[0][0] == "file"
    with slots.take():  # given back: the next upload goes ahead
        assert slots.busy == 1
    assert slots.busy == 0
