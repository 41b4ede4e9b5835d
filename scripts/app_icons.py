"""Draw the courier app's icons once (``geo_service/app/static/icon-{32,192,512}.png``).

An SVG drawn by Debian's Chromium through Playwright (both already in the
environment; no image library added for three files). The icons are maskable:
the background fills the whole square and the mark keeps inside the central
80% safe zone, so a launcher may cut any shape. The 32 px one is the page's
favicon: the browser fetches it while the first list is on its way, so it is kept
small (bench/APP_LOAD.md counts it). Each is stored as an indexed PNG when it
has at most 256 colours (the drawing has ~230: red, white and the edges between),
pixel for pixel the same image at about half the bytes. Run it again only to
change them: ``.venv/bin/python scripts/app_icons.py``; the PNGs are committed.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

from playwright.sync_api import sync_playwright

OUT = Path(__file__).parents[1] / "geo_service" / "app" / "static"
CHROMIUM = "/usr/bin/chromium"
THEME = "#b71c1c"
SIZES = (32, 192, 512)

SVG = f"""<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 100 100" width="100%" height="100%">
  <rect width="100" height="100" fill="{THEME}"/>
  <circle cx="50" cy="50" r="33" fill="#ffffff"/>
  <text x="50" y="51" font-family="WenQuanYi Micro Hei, sans-serif" font-size="38"
        font-weight="700" fill="{THEME}" text-anchor="middle" dominant-baseline="central">驿</text>
</svg>"""


def _chunks(png: bytes) -> dict[bytes, bytes]:
    """A PNG's chunks by type (IDAT joined), checked to be a PNG."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    out: dict[bytes, bytes] = {}
    pos = 8
    while pos < len(png):
        (n,) = struct.unpack(">I", png[pos:pos + 4])
        kind = png[pos + 4:pos + 8]
        out[kind] = out.get(kind, b"") + png[pos + 8:pos + 8 + n]
        pos += 12 + n
    return out


def _pixels(png: bytes) -> tuple[int, int, list[list[bytes]]]:
    """Width, height and RGB pixels of an 8-bit RGB or RGBA, non-interlaced PNG (what
    Chromium's screenshots are)."""
    c = _chunks(png)
    w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", c[b"IHDR"])
    assert depth == 8 and ctype in (2, 6) and interlace == 0, "unexpected PNG layout"
    bpp = 3 if ctype == 2 else 4
    raw, stride = zlib.decompress(c[b"IDAT"]), w * bpp
    rows, prev = [], bytearray(stride)
    for y in range(h):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        for x in range(stride):  # undo the PNG row filters
            a = line[x - bpp] if x >= bpp else 0
            b, up_left = prev[x], prev[x - bpp] if x >= bpp else 0
            if kind == 1:
                line[x] = (line[x] + a) & 255
            elif kind == 2:
                line[x] = (line[x] + b) & 255
            elif kind == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - up_left
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - up_left)
                best = a if pa <= pb and pa <= pc else b if pb <= pc else up_left
                line[x] = (line[x] + best) & 255
        rows.append([bytes(line[i:i + 3]) for i in range(0, stride, bpp)])
        prev = line
    return w, h, rows


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def indexed(png: bytes) -> bytes:
    """The same image as an indexed PNG, or ``png`` itself when it has more than 256
    colours (or the indexed one would not be smaller)."""
    w, h, rows = _pixels(png)
    palette = sorted({p for row in rows for p in row})
    if len(palette) > 256:
        return png
    index = {p: i for i, p in enumerate(palette)}
    raw = b"".join(b"\0" + bytes(index[p] for p in row) for row in rows)
    out = (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 3, 0, 0, 0))
           + _chunk(b"PLTE", b"".join(palette)) + _chunk(b"IDAT", zlib.compress(raw, 9))
           + _chunk(b"IEND", b""))
    return out if len(out) < len(png) else png


def main() -> None:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM,
                                    args=["--no-sandbox", "--disable-gpu"])
        for size in SIZES:
            page = browser.new_page(viewport={"width": size, "height": size})
            page.set_content(f"<body style='margin:0'>{SVG}</body>")
            (OUT / f"icon-{size}.png").write_bytes(indexed(page.screenshot(omit_background=False)))
            page.close()
        browser.close()


if __name__ == "__main__":
    main()
