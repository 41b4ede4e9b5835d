"""A bulletin as an A4 PDF (WeasyPrint), Chinese first, fetching nothing outside.

Plain values in, bytes out: the figures (:class:`~geo_service.bulletin.model.Bulletin`),
the two charts as PNGs (:mod:`~geo_service.bulletin.charts`, embedded as ``data:`` URIs)
and the Chinese font file. The posters' :class:`~geo_service.posters.render.LocalFetcher`
serves that font and the ``data:`` URIs and refuses everything else, so an area name
carrying a link cannot make the renderer call out; every value is HTML-escaped as well.
The font is embedded (subset), so the reader needs no Chinese font.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

from weasyprint import HTML  # type: ignore[import-untyped]

from geo_service.bulletin import charts
from geo_service.bulletin.model import (
    COLUMNS,
    Bulletin,
    CoverageRun,
    Figures,
    change,
    share,
)
from geo_service.posters.render import LocalFetcher

e = html.escape


def month_zh(b: Bulletin) -> str:
    return f"{b.month.year}年{b.month.month}月"


def runs_text(b: Bulletin) -> str:
    """Which stored coverage runs the change compares, in words (Chinese · English)."""
    def one(run: CoverageRun | None) -> str:
        return "无 none" if run is None else f"#{run.id}（{run.created_at:%Y-%m-%d}）"

    return (f"月末覆盖分析 run at month end: {one(b.run_after)}；"
            f"上月末 at the previous month end: {one(b.run_before)}")


def _row(f: Figures, *, head: str = "td") -> str:
    cells = "".join(f"<td>{getattr(f, attr)}</td>" for attr, _zh, _en in COLUMNS)
    return (f"<tr><{head} class=\"name\">{e(f.name)}<br><small>{e(f.code)}</small></{head}>"
            f"{cells}<td>{share(f.covered_after)}</td><td>{change(f.coverage_change)}</td></tr>")


def bulletin_html(b: Bulletin, *, font_file: str, bar_png: bytes, line_png: bytes) -> str:
    """The whole document (one A4 page or two)."""
    heads = "".join(f"<th>{zh}<br><small>{en}</small></th>" for _a, zh, en in COLUMNS)
    table_head = (f"<tr><th>区域<br><small>Area</small></th>{heads}"
                  "<th>覆盖率<br><small>Covered</small></th>"
                  "<th>覆盖变化<br><small>Change</small></th></tr>")
    rows = "".join(_row(d) for d in b.districts) + _row(b.total, head="th")
    workers = "".join(
        f'<tr><td class="name">{e(zh)} <small>{e(en)}</small></td><td>{n}</td></tr>'
        for zh, en, n in b.by_worker) or '<tr><td colspan="2">—</td></tr>'
    sample = ('<p class="sample">示例数据：本通报中的驿站和运营数据为示例，并非真实情况。'
              "SAMPLE DATA: the stations and operations in this bulletin are made up.</p>"
              if b.sample else "")

    def img(png: bytes, alt: str) -> str:
        return (f'<img src="data:image/png;base64,{base64.b64encode(png).decode()}" '
                f'alt="{e(alt)}">')

    made = f"{b.made_at:%Y-%m-%d %H:%M}" if b.made_at else ""
    font = Path(font_file).resolve().as_uri()
    return f"""<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<title>{e(b.area_name)} {month_zh(b)} 驿站工作通报</title><style>
@font-face {{ font-family: "BulletinCJK"; src: url("{font}"); }}
@page {{ size: A4; margin: 14mm 12mm; @bottom-right {{ content: counter(page) " / "
  counter(pages); font-family: "BulletinCJK"; font-size: 8pt; }} }}
html {{ font-family: "BulletinCJK"; font-size: 9.5pt; color: #111; }}
h1 {{ font-size: 17pt; margin: 0 0 2mm; color: #8b1a1a; }}
h2 {{ font-size: 12pt; margin: 5mm 0 1.5mm; }}
table {{ border-collapse: collapse; width: 100%; }}
th, td {{ border: 0.5pt solid #888; padding: 1mm 1mm; text-align: right;
          vertical-align: top; white-space: nowrap; }}
table.figures {{ font-size: 8pt; }}
table.figures tr:first-child th {{ white-space: normal; vertical-align: bottom; }}
th {{ background: #f1e4e4; font-weight: normal; }}
td.name, th.name {{ text-align: left; }}
small {{ font-size: 7pt; color: #444; }}
.sample {{ border: 1.5pt solid #b00; color: #b00; padding: 1.5mm; font-size: 10.5pt; }}
.note {{ font-size: 8pt; color: #333; margin: 1mm 0; }}
img {{ width: 100%; }}
table.workers {{ width: 60%; }}
</style></head><body>
<h1>{e(b.area_name)}（{e(b.area_code)}）{month_zh(b)}驿站工作通报</h1>
<p>Monthly bulletin of the outdoor workers' stations · {e(b.area_name)} · {b.month.label}</p>
{sample}
<h2>分区统计 Figures by district</h2>
<table class="figures">{table_head}{rows}</table>
<p class="note">统计期间为 {b.month.first_day} 至 {b.month.last_day}（{e(b.month.tz)}）。
新建：建站日期（未填时为录入日期）在本月。月末在服务：月末前建站且现为开放或暂停开放的驿站。本月核实：本月有巡查或最近核实日期在本月。
已上图：在服务且地址、电话、开放时间、区县、服务设施齐全。逾期未巡查：在服务且截至月末
{b.overdue_days} 天内无巡查、无核实。The period is the calendar month; overdue: serving and
not verified in the {b.overdue_days} days up to the month's end.</p>
<p class="note">覆盖变化 Coverage change — {e(runs_text(b))}</p>
<h2>按工种服务人次 Person-times by worker type</h2>
<table class="workers"><tr><th class="name">工种 Worker type</th><th>服务人次 Person-times</th>
</tr>{workers}<tr><th class="name">合计 Total</th><th>{b.total.person_times}</th></tr></table>
<h2>图表 Charts</h2>
{img(bar_png, "各区服务人次 Person-times by district")}
{img(line_png, "每日服务人次 Person-times per day")}
<p class="note">生成时间 Made {made} · geo_service</p>
</body></html>"""


def render_pdf(b: Bulletin, *, font_file: str, fetcher: LocalFetcher | None = None) -> bytes:
    """The bulletin as an A4 PDF (blocking: a second or two of CPU for the charts)."""
    bar = charts.bar_by_district(
        [(d.name, d.person_times) for d in b.districts] or [(b.total.name,
                                                             b.total.person_times)],
        title=f"各区服务人次 Person-times by district · {b.month.label}", font_file=font_file)
    line = charts.line_by_day(b.by_day, title=f"每日服务人次 Person-times per day · "
                                              f"{b.month.label}", font_file=font_file)
    document = bulletin_html(b, font_file=font_file, bar_png=bar, line_png=line)
    fetch = fetcher if fetcher is not None else LocalFetcher([font_file])
    pdf: bytes = HTML(string=document, url_fetcher=fetch).write_pdf()
    return pdf
