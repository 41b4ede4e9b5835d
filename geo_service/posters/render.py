"""A station's poster as HTML, and posters as one PDF (WeasyPrint), fetching nothing outside.

Plain values in, bytes out: no database and no web framework, so the API, the
command line and the tests draw the same pages. Each poster is one page:
the station's name (示例 on sample data), its address, a QR code to its
check-in page, the ten ones as ✓/✘ with their Chinese names, its hours in plain
Chinese, the union's hotline when one is set, and the date printed.

Nothing is fetched while a PDF is drawn except the one font file and the QR
code's ``data:`` URI: :class:`LocalFetcher` refuses every other URL (http(s),
ftp, any other file), so a station name or address carrying a link, or a
stylesheet someone adds later, cannot make the renderer call out or read the
disk. Text is HTML-escaped as well; the fetcher is the second wall. The font is
embedded (subset) in the PDF, so the print shop needs no Chinese font.
"""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.request import url2pathname

import segno
from weasyprint import HTML  # type: ignore[import-untyped]
from weasyprint.urls import URLFetcher, URLFetcherResponse  # type: ignore[import-untyped]

from geo_service.domain.catalogue import STATUS_ZH, TEN_ONES, Status
from geo_service.hours.text import hours_label
from geo_service.posters.model import PageSize, Poster

#: The QR code's error correction: the check-in page's QR (operations.visits.qr_svg)
#: uses the same level, so a poster and the console's QR read the same.
QR_ERROR = "m"
#: The tag sample names carry in the data (as the courier app strips it for its own tag).
SAMPLE_PREFIX = re.compile(r"^\s*(【示例】|\[SAMPLE\])\s*", re.IGNORECASE)
#: How much smaller an A5 poster's type and QR code are than an A4's (A5 is A4 halved:
#: each side 1/√2 as long).
_SCALE = {PageSize.A4: 1.0, PageSize.A5: 0.707}


class LocalFetcher(URLFetcher):  # type: ignore[misc]
    """WeasyPrint's URL fetcher that serves ``data:`` URIs and the listed files only.

    Every other URL is refused (and kept in :attr:`refused`): WeasyPrint then
    leaves the resource out, and nothing leaves the machine. The listed files are
    compared by resolved path, so ``file:///usr/share/../etc/passwd`` is refused.
    """

    def __init__(self, files: Sequence[str]) -> None:
        super().__init__(allowed_protocols=("data", "file"), allow_redirects=False)
        self.files = {Path(f).resolve() for f in files}
        self.refused: list[str] = []

    def fetch(self, url: str, headers: Any = None) -> URLFetcherResponse:
        """The resource at ``url`` when it is a ``data:`` URI or a listed file."""
        scheme = url.split(":", 1)[0].lower()
        if scheme == "data":
            return super().fetch(url, headers)  # decoded in memory by urllib's DataHandler
        if scheme == "file":
            path = Path(_file_path(url)).resolve()
            if path in self.files:
                return URLFetcherResponse(url, path.read_bytes())
        self.refused.append(url)
        raise ValueError(f"posters fetch nothing outside: {url[:80]!r} refused")


def _file_path(url: str) -> str:
    return url2pathname(url.split("?", 1)[0].removeprefix("file://"))


def qr_data_uri(url: str) -> str:
    """The link as a QR code (SVG with a viewBox, so it scales to any size), a data URI."""
    return str(segno.make(url, error=QR_ERROR).svg_data_uri(scale=1, border=4, omitsize=True))


def _css(size: PageSize, font_file: str) -> str:
    k = _SCALE[size]

    def pt(v: float) -> str:
        return f"{v * k:.1f}pt"

    def mm(v: float) -> str:
        return f"{v * k:.1f}mm"

    font = Path(font_file).resolve().as_uri()
    return f"""
@font-face {{ font-family: "PosterCJK"; src: url("{font}"); }}
@page {{ size: {size.value}; margin: {mm(12)}; }}
html {{ font-family: "PosterCJK"; color: #111; }}
body {{ margin: 0; }}
section {{ break-after: page; height: {mm(271)}; overflow: hidden; position: relative; }}
section:last-child {{ break-after: auto; }}
.org {{ font-size: {pt(13)}; margin: 0; color: #8a1c1c; }}
.tag {{ border: 1.5pt solid #b00; color: #b00; padding: 0 {mm(2)}; margin-left: {mm(2)};
        font-size: {pt(13)}; }}
h1 {{ font-size: {pt(30)}; margin: {mm(3)} 0 {mm(1)}; max-height: {mm(26)};
      overflow: hidden; line-height: 1.2; }}
.addr {{ font-size: {pt(13)}; margin: 0; max-height: {mm(12)}; overflow: hidden; }}
.state {{ font-size: {pt(15)}; color: #b00; margin: {mm(1)} 0 0; }}
.qr {{ text-align: center; margin: {mm(4)} 0 0; }}
.qr img {{ width: {mm(112)}; height: {mm(112)}; }}
.scan {{ text-align: center; font-size: {pt(16)}; margin: 0; }}
.url {{ text-align: center; font-size: {pt(8)}; margin: 0; color: #444;
        word-break: break-all; }}
h2 {{ font-size: {pt(15)}; margin: {mm(4)} 0 {mm(1)}; }}
ul {{ list-style: none; padding: 0; margin: 0; columns: 2; font-size: {pt(14)};
      line-height: 1.55; }}
.no {{ color: #888; }}
.hours, .hotline {{ font-size: {pt(13)}; margin: {mm(2)} 0 0; max-height: {mm(16)};
                    overflow: hidden; }}
.hotline b {{ font-size: {pt(16)}; }}
.test {{ font-size: {pt(12)}; color: #b00; border: 1pt solid #b00; padding: {mm(1)};
         margin: {mm(2)} 0 0; }}
footer {{ position: absolute; bottom: 0; left: 0; right: 0; font-size: {pt(9)};
          color: #555; border-top: 0.5pt solid #999; padding-top: {mm(1)}; }}
"""


def poster_section(p: Poster, *, printed_on: dt.date, hotline: str | None,
                   test_print: bool = False) -> str:
    """One poster's page as an HTML ``<section>`` (every value escaped)."""
    e = html.escape
    tag = '<span class="tag">示例</span>' if p.sample else ""
    # Sample names carry their tag in the data; the red tag above says it once.
    name = SAMPLE_PREFIX.sub("", p.name) if p.sample else p.name
    address = f'<p class="addr">地址：{e(p.address)}</p>' if p.address else ""
    state = (f'<p class="state">{e(STATUS_ZH[Status(p.status)])} Temporarily closed</p>'
             if p.status == Status.TEMPORARILY_CLOSED else "")
    ten = "".join(
        f'<li class="{"yes" if p.amenity_mask >> a.bit & 1 else "no"}">'
        f'{"✓" if p.amenity_mask >> a.bit & 1 else "✘"} {e(a.label_zh)}</li>'
        for a in TEN_ONES)
    line = (f'<p class="hotline">工会服务热线 Union hotline：<b>{e(hotline)}</b></p>'
            if hotline else "")
    test = ('<p class="test">测试打印：二维码指向的不是服务的公网地址，请勿张贴。'
            "Test print: the QR code does not point to the public address; do not post.</p>"
            if test_print else "")
    sample = " · 示例数据，非真实站点 Sample data, not a real station" if p.sample else ""
    return f"""<section>
<p class="org">职工户外劳动者服务站点 · Rest station for outdoor workers{tag}</p>
<h1>{e(name)}</h1>
{address}{state}
<div class="qr"><img src="{qr_data_uri(p.checkin_url)}" alt="签到二维码 check-in QR code"></div>
<p class="scan">微信或相机扫码签到 · Scan to check in</p>
<p class="url">{e(p.checkin_url)}</p>
<h2>“十个一”服务设施 · The ten ones</h2>
<ul>{ten}</ul>
<p class="hours">开放时间 Hours：{e(hours_label(p.opening_hours))}</p>
{line}{test}
<footer>打印日期 Printed {printed_on.isoformat()} · 站点编号 {e(p.code)}{sample}</footer>
</section>"""


def posters_html(posters: Sequence[Poster], *, size: PageSize = PageSize.A4,
                 printed_on: dt.date, hotline: str | None = None, test_print: bool = False,
                 font_file: str) -> str:
    """The whole document: one ``<section>`` (one page) per poster, in the order given."""
    body = "\n".join(poster_section(p, printed_on=printed_on, hotline=hotline,
                                    test_print=test_print) for p in posters)
    return (f'<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
            f"<title>站点海报 Station posters</title><style>{_css(size, font_file)}</style>"
            f"</head><body>{body}</body></html>")



def render_pdf(posters: Sequence[Poster], *, size: PageSize = PageSize.A4,
               printed_on: dt.date, hotline: str | None = None, test_print: bool = False,
               font_file: str, fetcher: LocalFetcher | None = None) -> bytes:
    """The posters as one PDF, a page each (blocking: seconds of CPU for hundreds).

    ``font_file`` is the Chinese font to embed (``settings.poster_font_file``).
    ``fetcher`` defaults to a :class:`LocalFetcher` serving ``font_file`` only; a
    test passes its own to read what was refused.
    """
    document = posters_html(posters, size=size, printed_on=printed_on, hotline=hotline,
                            test_print=test_print, font_file=font_file)
    fetch = fetcher if fetcher is not None else LocalFetcher([font_file])
    pdf: bytes = HTML(string=document, url_fetcher=fetch).write_pdf()
    return pdf
