"""Draw the courier app's icons once (``geo_service/app/static/icon-{192,512}.png``).

An SVG drawn by Debian's Chromium through Playwright (both already in the
environment; no image library added for two files). The icons are maskable:
the background fills the whole square and the mark keeps inside the central
80% safe zone, so a launcher may cut any shape. Run it again only to change them:
``.venv/bin/python scripts/app_icons.py``; the PNGs are committed.
"""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import sync_playwright

OUT = Path(__file__).parents[1] / "geo_service" / "app" / "static"
CHROMIUM = "/usr/bin/chromium"
THEME = "#b71c1c"

SVG = f"""<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 100 100" width="100%" height="100%">
  <rect width="100" height="100" fill="{THEME}"/>
  <circle cx="50" cy="50" r="33" fill="#ffffff"/>
  <text x="50" y="51" font-family="WenQuanYi Micro Hei, sans-serif" font-size="38"
        font-weight="700" fill="{THEME}" text-anchor="middle" dominant-baseline="central">驿</text>
</svg>"""


def main() -> None:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM,
                                    args=["--no-sandbox", "--disable-gpu"])
        for size in (192, 512):
            page = browser.new_page(viewport={"width": size, "height": size})
            page.set_content(f"<body style='margin:0'>{SVG}</body>")
            page.screenshot(path=str(OUT / f"icon-{size}.png"), omit_background=False)
            page.close()
        browser.close()


if __name__ == "__main__":
    main()
