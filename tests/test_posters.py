"""Station posters (issue 26): a district's PDF has a page per serving station, each with
its name, fonts embedded, and a QR code that decodes to the station's check-in URL.

The PDFs are read back as a print shop's software would: text and fonts with pypdf,
one page rasterised with PDFium and its QR code decoded with zxing-cpp. A handful
of stations in two sample districts; one page is rasterised.
"""

from __future__ import annotations

import datetime as dt
import io
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pypdf
import pypdfium2
import pytest
import zxingcpp
from fastapi.testclient import TestClient

from geo_service.cli import main
from geo_service.infra.settings import Settings
from geo_service.posters.model import PageSize, Poster
from geo_service.posters.printing import DrawSlots
from geo_service.posters.render import LocalFetcher, posters_html, render_pdf
from tests.conftest import station_body

BASE = "https://stations.example.org/geo"
HOTLINE = "12351"
TIANYA = [(109.500, 18.250), (109.490, 18.260), (109.495, 18.255), (109.505, 18.245)]
JIYANG = (109.55, 18.27)
#: A4 and A5 in PDF points (1/72 inch).
A4 = (595.3, 841.9)
A5 = (419.5, 595.3)


@pytest.fixture
def settings(db_url: str) -> Settings:
    """The conftest settings with a public address and a hotline, as a deployment has."""
    return Settings(database_url=db_url, allowed_hosts=["testserver"], nearest_index="off",
                    public_base_url=BASE, union_hotline=HOTLINE)


@pytest.fixture
def stations(client: TestClient, keys: dict[str, str]) -> dict[str, str]:
    """Tianya: two that serve (one temporarily closed), a planned and a closed one;
    Jiyang: one open. Returns code -> name."""
    specs = [("PT-2", TIANYA[0], {"status": "temporarily_closed"}),
             ("PT-1", TIANYA[1], {"opening_hours": "Mo-Fr 08:00-18:00",
                                  "amenities": ["microwave", "restroom", "ebike_charging"]}),
             ("PT-3", TIANYA[2], {"status": "planned"}),
             ("PT-4", TIANYA[3], {"status": "closed"}),
             ("PJ-1", JIYANG, {})]
    names = {}
    for code, (lon, lat), over in specs:
        body = station_body(code, lon, lat, **over)
        r = client.post("/v1/stations", headers={"Authorization": keys["admin"]}, json=body)
        assert r.status_code == 201, r.text
        names[code] = body["name"]
    return names


def _pdf(response: Any) -> pypdf.PdfReader:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    return pypdf.PdfReader(io.BytesIO(response.content))


def _size(page: pypdf.PageObject) -> tuple[float, float]:
    return round(float(page.mediabox.width), 1), round(float(page.mediabox.height), 1)


def _unembedded_fonts(page: pypdf.PageObject) -> list[str]:
    """The page's fonts whose program is not in the file (pdffonts' "emb no")."""
    missing = []
    for font in page["/Resources"]["/Font"].values():
        font = font.get_object()
        described = font["/DescendantFonts"][0].get_object() if "/DescendantFonts" in font \
            else font
        descriptor = described["/FontDescriptor"].get_object()
        if not any(k in descriptor for k in ("/FontFile", "/FontFile2", "/FontFile3")):
            missing.append(str(font["/BaseFont"]))
    return missing


def _qr(pdf: bytes, page: int) -> list[str]:
    """The QR codes on page ``page`` when rasterised at 108 dpi."""
    image = pypdfium2.PdfDocument(pdf)[page].render(scale=1.5).to_pil()
    return [b.text for b in zxingcpp.read_barcodes(image)]


def test_a_districts_posters_one_page_per_station_qr_to_its_checkin_page(
        client: TestClient, keys: dict[str, str], stations: dict[str, str]) -> None:
    r = client.get("/v1/posters/areas/460204.pdf", headers={"Authorization": keys["tianya_editor"]})
    pdf = _pdf(r)
    # Open and temporarily closed print, by name; planned, closed and Jiyang's do not.
    assert len(pdf.pages) == 2
    texts = [p.extract_text() for p in pdf.pages]
    today = dt.datetime.now(ZoneInfo("Asia/Shanghai")).date().isoformat()  # the union's day
    for text, code in zip(texts, ["PT-1", "PT-2"], strict=True):
        assert stations[code] in text
        assert f"{BASE}/v1/checkin/{code}" in text
        assert HOTLINE in text and today in text
    assert "✓ 微波炉" in texts[0] and "✓ 卫生间" in texts[0] and "✘ 座椅" in texts[0]
    assert "电动车充电" not in texts[0]  # an extra, not one of the ten ones
    assert "周一至周五 08:00-18:00" in texts[0]
    assert "暂停开放" in texts[1] and "暂停开放" not in texts[0]
    assert all(_size(p) == A4 for p in pdf.pages)
    assert [_unembedded_fonts(p) for p in pdf.pages] == [[], []]
    # The QR code, read off the printed page, is the link the check-in API hands out.
    link = client.get("/v1/stations/PT-1/checkin-link").json()["url"]
    assert _qr(r.content, 0) == [link] == [f"{BASE}/v1/checkin/PT-1"]
    assert client.get(link.removeprefix(BASE)).status_code == 200


def test_a_station_poster_on_a5(client: TestClient, keys: dict[str, str],
                                stations: dict[str, str]) -> None:
    r = client.get("/v1/posters/stations/PJ-1.pdf", params={"size": "A5"},
                   headers={"Authorization": keys["editor"]})
    pdf = _pdf(r)
    assert len(pdf.pages) == 1 and _size(pdf.pages[0]) == A5
    assert stations["PJ-1"] in pdf.pages[0].extract_text()


def test_keys_print_only_within_their_area(client: TestClient, keys: dict[str, str],
                                           stations: dict[str, str]) -> None:
    tianya = {"Authorization": keys["tianya_editor"]}
    for path, area_named in (("/v1/posters/stations/PJ-1.pdf", "PJ-1"),
                             ("/v1/posters/areas/460203.pdf", "460203"),
                             ("/v1/posters/areas/460200.pdf", "460200")):
        r = client.get(path, headers=tianya)
        assert r.status_code == 403, (path, r.text)
        error = r.json()["error"]
        assert "460204" in error["message"] and area_named in error["message"]
        assert error["fields"][0]["field"] == "code"
    assert client.get("/v1/posters/stations/PT-1.pdf").status_code == 401


@pytest.mark.parametrize(("path", "status"), [
    ("/v1/posters/stations/NOPE-1.pdf", 404), ("/v1/posters/areas/999999.pdf", 404),
    ("/v1/posters/stations/PT-3.pdf", 409), ("/v1/posters/stations/PT-4.pdf", 409),
    ("/v1/posters/stations/PT-1.pdf?size=A3", 422)])
def test_nothing_to_print_is_a_json_4xx_naming_the_field(
        client: TestClient, keys: dict[str, str], stations: dict[str, str],
        path: str, status: int) -> None:
    r = client.get(path, headers={"Authorization": keys["admin"]})
    assert r.status_code == status, r.text
    assert r.json()["error"]["fields"][0]["field"] in ("code", "size")


def test_page_cap_busy_renderer_and_missing_public_address(
        client: TestClient, keys: dict[str, str], settings: Settings,
        stations: dict[str, str]) -> None:
    admin = {"Authorization": keys["admin"]}
    settings.poster_max_pages = 1
    r = client.get("/v1/posters/areas/460204.pdf", headers=admin)
    assert r.status_code == 413 and "GEO_POSTER_MAX_PAGES" in r.text
    settings.poster_max_pages = 500

    app: Any = client.app
    app.state.poster_slots = DrawSlots(0)
    r = client.get("/v1/posters/stations/PT-1.pdf", headers=admin)
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
    app.state.poster_slots = DrawSlots(1)

    # No public address: refused, unless a test print is asked for (and then marked).
    settings.public_base_url = None
    r = client.get("/v1/posters/stations/PT-1.pdf", headers=admin)
    assert r.status_code == 409
    assert r.json()["error"]["fields"][0]["field"] == "allow_local"
    r = client.get("/v1/posters/stations/PT-1.pdf", params={"allow_local": "true"},
                   headers=admin)
    text = _pdf(r).pages[0].extract_text()
    assert "测试打印" in text and "http://testserver/v1/checkin/PT-1" in text
    # A configured address on this machine is no better.
    settings.public_base_url = "http://127.0.0.1:8000"
    assert client.get("/v1/posters/stations/PT-1.pdf", headers=admin).status_code == 409


def test_the_command_line_prints_an_area(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, db_url: str,
        stations: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("GEO_DATABASE_URL", db_url)
    monkeypatch.setenv("GEO_PUBLIC_BASE_URL", BASE)
    out = tmp_path / "tianya.pdf"
    assert main(["posters", "area", "460204", "-o", str(out), "--size", "A5"]) == 0
    pdf = pypdf.PdfReader(out)
    assert len(pdf.pages) == 2 and _size(pdf.pages[0]) == A5
    assert main(["posters", "area", "460204", "-o", str(out), "--max-pages", "1"]) == 1
    assert "GEO_POSTER_MAX_PAGES" in capsys.readouterr().err
    assert main(["posters", "station", "NOPE-1", "-o", str(tmp_path / "x.pdf")]) == 1
    assert "no station 'NOPE-1'" in capsys.readouterr().err
    assert not (tmp_path / "x.pdf").exists()
    monkeypatch.delenv("GEO_PUBLIC_BASE_URL")
    assert main(["posters", "station", "PT-1", "-o", str(tmp_path / "y.pdf")]) == 1
    assert main(["posters", "station", "PT-1", "-o", str(tmp_path / "y.pdf"),
                 "--base-url", "http://localhost:8000", "--allow-local"]) == 0


# -- nothing is fetched from outside while a PDF is drawn --------------------------------


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A local TCP port that records whether anyone connected."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        s.setblocking(False)
        yield s


def _connected(s: socket.socket) -> bool:
    try:
        s.accept()[0].close()
    except BlockingIOError:
        return False
    return True


def _poster(**over: Any) -> Poster:
    values: dict[str, Any] = {
        "code": "X-1", "name": "驿站", "address": None, "district": None, "status": "open",
        "opening_hours": None, "amenity_mask": 0, "sample": True,
        "checkin_url": f"{BASE}/v1/checkin/X-1"}
    return Poster(**{**values, **over})


def test_the_fetcher_serves_data_and_the_font_only(settings: Settings) -> None:
    font = settings.poster_font_file
    fetcher = LocalFetcher([font])
    assert fetcher.fetch("data:text/plain,hi").read() == b"hi"
    assert fetcher.fetch(Path(font).as_uri()).read(4) == Path(font).read_bytes()[:4]
    for url in ("http://127.0.0.1:9/x.png", "https://example.org/x.css",
                "file:///etc/passwd", Path(font).parent.as_uri() + "/../../../../etc/passwd",
                "ftp://example.org/x"):
        with pytest.raises(ValueError, match="fetch nothing outside"):
            fetcher.fetch(url)
    assert len(fetcher.refused) == 5


def test_an_outside_url_in_a_name_or_the_page_fetches_nothing(
        settings: Settings, listener: socket.socket) -> None:
    from weasyprint import HTML  # type: ignore[import-untyped]

    url = f"http://127.0.0.1:{listener.getsockname()[1]}/x.png"
    font = settings.poster_font_file
    # In a name or address the tag is text: escaped, shown, never asked for.
    fetcher = LocalFetcher([font])
    hostile = _poster(name=f'<img src="{url}">驿站', address=f"<link rel=stylesheet href={url}>")
    pdf = render_pdf([hostile], printed_on=dt.date(2026, 1, 1), font_file=font, fetcher=fetcher)
    assert '<img src="' in pypdf.PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
    assert fetcher.refused == [] and not _connected(listener)
    # Had one reached the page's HTML, the fetcher refuses it: still no connection.
    page = posters_html([_poster()], size=PageSize.A4, printed_on=dt.date(2026, 1, 1),
                        font_file=font).replace("</body>", f'<img src="{url}"></body>')
    HTML(string=page, url_fetcher=fetcher).write_pdf()
    assert fetcher.refused == [url] and not _connected(listener)



def test_long_text_stays_on_its_own_page(settings: Settings) -> None:
    """A name, address or hours rule as long as the API takes still prints one page a
    station (cut off at its box), so page N is always station N."""
    long = _poster(name="很长的站名" * 40, address="很长的地址" * 100,
                   opening_hours="; ".join(f"2026 Jan {d:02d} 08:00-18:00" for d in range(1, 29)))
    pdf = render_pdf([long, _poster(code="X-2")], size=PageSize.A5,
                     printed_on=dt.date(2026, 1, 1), font_file=settings.poster_font_file)
    pages = pypdf.PdfReader(io.BytesIO(pdf)).pages
    assert len(pages) == 2 and "X-2" in pages[1].extract_text()


def test_a_sample_poster_says_sample_once_in_its_heading() -> None:
    """Sample names carry their tag in the data ("【示例】…"); the poster shows the red 示例
    tag above the name, so the name is printed without it (the tag once, as on the app)."""
    from geo_service.posters.render import poster_section

    poster = Poster(code="SY-9", name="【示例】河东路环卫驿站", address=None, district=None,
                    status="open", opening_hours="24/7", amenity_mask=0, sample=True,
                    checkin_url="https://stations.example.cn/v1/checkin/SY-9")
    page = poster_section(poster, printed_on=dt.date(2026, 12, 7), hotline=None)
    assert "<h1>河东路环卫驿站</h1>" in page
    assert page.count('<span class="tag">示例</span>') == 1
    real = poster_section(Poster(**{**poster.__dict__, "sample": False,
                                    "name": "【示例】不是示例数据的名字"}),
                          printed_on=dt.date(2026, 12, 7), hotline=None)
    assert "<h1>【示例】不是示例数据的名字</h1>" in real  # only sample rows lose the prefix
