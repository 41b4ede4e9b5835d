"""The console's demand page: where outdoor workers gather, for the coverage runs.

Editors and admins, within their area. Four things on one page, each a small form:
download the Chinese template; upload a filled sheet to check it (nothing written) or
import it (all or nothing: the report names every bad row by the row number Excel shows
and the column by the sheet's own header); upload a population raster (GeoTIFF) to
estimate an area's demand; and see what demand an area holds, by origin and worker type.
Without any, coverage runs measure area instead (按面积覆盖（无需求数据）), which the page
says. No script: plain forms with the session's CSRF token, multipart for the files.
"""

from __future__ import annotations

from html import escape
from typing import Any

from geo_service.console.pages import csrf_field, href, notes, page, t
from geo_service.coverage.area_cover import BASIS_WORDS
from geo_service.coverage.demand_stock import ORIGIN_WORDS
from geo_service.coverage.raster import DEFAULT_SHARE
from geo_service.operations.visits import WORKER_TYPE_LABELS

_T: dict[str, tuple[str, str]] = {
    "title": ("需求数据", "Demand data"),
    "intro": ("需求点是户外劳动者聚集的位置和人数，覆盖分析据此计算“多少劳动者在驿站服务范围内”。"
              "没有需求数据时，覆盖分析按面积计算（{basis}）。",
              "Demand points are where outdoor workers gather and how many; coverage runs "
              "count the workers within reach of a station. Without demand data a run "
              "measures area instead ({basis})."),
    "template": ("1. 下载模板", "1. Download the template"),
    "template_note": ("列：编号、经度、纬度、人数、工种、坐标系（另有来源、统计日期、示例数据）；"
                      "「说明」工作表列出每列的其他写法和工种的写法。",
                      "Columns 编号 (id), 经度, 纬度, 人数 (workers), 工种 (worker type), 坐标系 "
                      "(and 来源, 统计日期, 示例数据); its 说明 sheet lists every other header "
                      "and worker-type word accepted."),
    "download": ("下载需求点导入模板（XLSX）", "Download the demand template (XLSX)"),
    "sheet": ("2. 上传需求表", "2. Upload a demand sheet"),
    "sheet_note": ("XLSX 或 CSV。先“预检”：只检查、不写入；无误后“导入”。有一行出错则整份不写入。",
                   "XLSX or CSV. “Check” first: nothing is written; then “Import”. One bad "
                   "row and nothing is written."),
    "file": ("文件", "File"),
    "crs": ("「坐标系」为空的行按", "Rows with a blank 坐标系 are in"),
    "check": ("预检（不写入）", "Check (writes nothing)"),
    "import": ("导入", "Import"),
    "raster": ("3. 由人口栅格估算", "3. Estimate from a population raster"),
    "raster_note": ("GeoTIFF（如 WorldPop），每个像元为人口数，任意坐标系。按区域边界求和到 H3 "
                    "网格，需求人数 = 人口 × 比例。再次上传会替换该区域此前由栅格估算的需求。",
                    "A GeoTIFF (e.g. WorldPop), population per pixel, any CRS. Summed into "
                    "H3 cells inside the area's boundary; workers = population × share. A new "
                    "raster replaces the area's earlier raster demand."),
    "area": ("区域", "Area"),
    "worker_type": ("工种", "Worker type"),
    "share": ("比例（0–1，如 0.02 表示 2%）", "Share (0–1, e.g. 0.02 = 2 %)"),
    "estimate": ("估算并保存", "Estimate and store"),
    "stock": ("4. 区域现有需求", "4. Demand the area holds"),
    "show": ("查看", "Show"),
    "origin": ("来源", "Origin"),
    "points": ("点数", "Points"),
    "workers": ("劳动者人数", "Workers"),
    "total": ("合计", "Total"),
    "none": ("该区域没有需求数据：覆盖分析将按面积计算（{basis}）。",
             "The area has no demand data: coverage runs there measure area ({basis})."),
    "report": ("{fmt} 共 {rows} 行，有效 {valid} 行；新增 {created}，更新 {updated}，"
               "未变 {unchanged}。", "{fmt}: {rows} rows, {valid} valid; created {created}, "
               "updated {updated}, unchanged {unchanged}."),
    "written": ("已导入。", "Imported."),
    "checked_ok": ("预检通过，尚未写入：确认无误后请点“导入”。",
                   "The check found no problem; nothing is written yet: press “Import”."),
    "refused": ("发现 {n} 处问题，未写入任何数据。请修改后重新上传。",
                "{n} problem(s) found; nothing was written. Fix them and upload again."),
    "skipped": ("已跳过模板示例行（第 {row} 行）。", "Skipped the template's example row "
                "(row {row})."),
    "excel_row": ("Excel 行号", "Excel row"),
    "column": ("列", "Column"),
    "problem": ("问题", "Problem"),
    "code": ("编号", "Id"),
    "raster_done": ("已由栅格估算：{text}", "Estimated from the raster: {text}"),
    "problems": ("问题列表", "Problems"),
    "sample_areas": ("标“示例”的区域为示例数据。", "Areas marked “sample” are sample data."),
}


def dt_(lang: str, key: str, **values: Any) -> str:
    """The demand page's text ``key`` in ``lang`` (values escaped)."""
    text = _T[key][0 if lang == "zh" else 1]
    return text.format(**{k: escape(str(v)) for k, v in values.items()})


def _basis(lang: str) -> str:
    return BASIS_WORDS["area"][0 if lang == "zh" else 1]


def _area_options(lang: str, areas: list[dict[str, Any]], chosen: str | None) -> str:
    """The person's areas as options (an option holds text only: "sample" in words)."""
    out = []
    for a in areas:
        name = a["name_en"] if lang == "en" and a.get("name_en") else a["name"]
        tag = f" · {t(lang, 'sample')}" if a.get("sample") else ""
        picked = " selected" if a["code"] == chosen else ""
        out.append(f'<option value="{escape(a["code"])}"{picked}>{escape(name)} '
                   f'({escape(a["code"])}){tag}</option>')
    return "".join(out)


def report_html(lang: str, report: dict[str, Any]) -> str:
    """An import report as people read it: the counts, then each problem's Excel row,
    column and reason."""
    counts = dt_(lang, "report", fmt=report["format"].upper(), rows=report["rows"],
                 valid=report["valid_rows"], created=report["created"],
                 updated=report["updated"], unchanged=report["unchanged"])
    skipped = "".join(f"<p>{dt_(lang, 'skipped', row=s['row'] + 1)}</p>"
                      for s in report.get("skipped", []))
    if not report["errors"]:
        verdict = dt_(lang, "written" if report["written"] else "checked_ok")
        return (f'<div class="msg" role="status"><p>{verdict}</p><p>{counts}</p>{skipped}'
                "</div>")
    heads = "".join(f'<th scope="col">{dt_(lang, k)}</th>'
                    for k in ("excel_row", "code", "column", "problem"))
    rows = "".join(
        f"<tr><td>{escape(str(p.get('sheet_row') or p['row']))}</td>"
        f"<td>{escape(p.get('code') or '')}</td><td>{escape(p['field'])}</td>"
        f"<td>{escape(p['problem'])}</td></tr>" for p in report["errors"])
    return (f'<div class="err" role="alert"><p>{dt_(lang, "refused", n=report["error_count"])}'
            f"</p><p>{counts}</p></div>"
            f'<div class="scroll" role="region" aria-label="{dt_(lang, "problems")}" '
            f'tabindex="0"><table><thead><tr>{heads}</tr></thead><tbody>{rows}</tbody>'
            "</table></div>")


def _stock_html(lang: str, stock: list[dict[str, Any]] | None) -> str:
    if stock is None:
        return ""
    if not stock:
        return f"<p>{dt_(lang, 'none', basis=_basis(lang))}</p>"
    heads = "".join(f'<th scope="col">{dt_(lang, k)}</th>'
                    for k in ("origin", "worker_type", "points", "workers"))
    i = 0 if lang == "zh" else 1
    rows = "".join(
        f"<tr><td>{escape(ORIGIN_WORDS[r['origin']][i])}"
        f"{escape(' · ' + r['file']) if r['file'] else ''}</td>"
        f"<td>{escape(WORKER_TYPE_LABELS.get(r['worker_type'], (r['worker_type'],) * 2)[i])}"
        f'</td><td>{r["points"]:,}</td><td>{r["workers"]:,.1f}</td>'
        "</tr>" for r in stock)
    total = (f'<tr><th scope="row" colspan="2">{dt_(lang, "total")}</th>'
             f'<td>{sum(r["points"] for r in stock):,}</td>'
             f'<td>{sum(r["workers"] for r in stock):,.1f}</td></tr>')
    return (f'<div class="scroll" role="region" aria-label="{dt_(lang, "stock")}" '
            f'tabindex="0"><table id="stock"><thead><tr>{heads}</tr></thead>'
            f"<tbody>{rows}{total}</tbody></table></div>")


def demand_page(lang: str, csrf: str, *, who: str, admin: bool, areas: list[dict[str, Any]],
                chosen: str | None, stock: list[dict[str, Any]] | None,
                result: str = "", error: str | None = None) -> str:
    """The whole page; ``result`` is a report already rendered (:func:`report_html`)."""
    area_opts = _area_options(lang, areas, chosen)
    types = "".join(f'<option value="{code}">{escape(zh if lang == "zh" else en)}</option>'
                    for code, (zh, en) in WORKER_TYPE_LABELS.items())
    crs_opts = "".join(f'<option value="{v}">{n}</option>' for v, n in (
        ("wgs84", "WGS-84 (GPS)"), ("gcj02", "GCJ-02 (高德/腾讯)"), ("bd09", "BD-09 (百度)")))
    sheet = (f'<form class="card" method="post" enctype="multipart/form-data" '
             f'action="{href("/console/demand/sheet", lang)}">'
             f'<h2>{dt_(lang, "sheet")}</h2><p>{dt_(lang, "sheet_note")}</p>{csrf_field(csrf)}'
             f'<label for="sheet_file">{dt_(lang, "file")}</label>'
             '<input id="sheet_file" name="file" type="file" required '
             'accept=".xlsx,.csv,application/vnd.openxmlformats-officedocument.'
             'spreadsheetml.sheet,text/csv">'
             f'<label for="sheet_crs">{dt_(lang, "crs")}</label>'
             f'<select id="sheet_crs" name="crs">{crs_opts}</select>'
             f'<button type="submit" name="action" value="check" class="plain">'
             f'{dt_(lang, "check")}</button><button type="submit" name="action" '
             f'value="import">{dt_(lang, "import")}</button></form>')
    raster = (f'<form class="card" method="post" enctype="multipart/form-data" '
              f'action="{href("/console/demand/raster", lang)}">'
              f'<h2>{dt_(lang, "raster")}</h2><p>{dt_(lang, "raster_note")}</p>'
              f'{csrf_field(csrf)}<label for="raster_file">{dt_(lang, "file")}</label>'
              '<input id="raster_file" name="file" type="file" required '
              'accept=".tif,.tiff,image/tiff">'
              f'<label for="raster_area">{dt_(lang, "area")}</label>'
              f'<select id="raster_area" name="area">{area_opts}</select>'
              f'<label for="raster_type">{dt_(lang, "worker_type")}</label>'
              f'<select id="raster_type" name="worker_type">{types}</select>'
              f'<label for="raster_share">{dt_(lang, "share")}</label>'
              f'<input id="raster_share" name="share" type="number" min="0.0001" max="1" '
              f'step="any" value="{DEFAULT_SHARE}" required>'
              f'<button type="submit">{dt_(lang, "estimate")}</button></form>')
    look = (f'<section class="card"><h2>{dt_(lang, "stock")}</h2>'
            f'<form class="filters" method="get" action="/console/demand">'
            + ('<input type="hidden" name="lang" value="en">' if lang == "en" else "")
            + f'<div><label for="stock_area">{dt_(lang, "area")}</label>'
            f'<select id="stock_area" name="area">{area_opts}</select></div>'
            f'<button type="submit" class="plain">{dt_(lang, "show")}</button></form>'
            + _stock_html(lang, stock)
            + (f"<p>{dt_(lang, 'sample_areas')}</p>" if any(a.get("sample") for a in areas)
               else "") + "</section>")
    body = (notes(None, error) + result
            + f'<p>{dt_(lang, "intro", basis=_basis(lang))}</p>'
            + f'<section class="card"><h2>{dt_(lang, "template")}</h2>'
            f'<p>{dt_(lang, "template_note")}</p>'
            f'<p><a href="/v1/demand:template.xlsx" download>{dt_(lang, "download")}</a></p>'
            "</section>" + sheet + raster + look)
    # ``chosen`` matches AREA_PATTERN (the route checks it): nothing in it to escape
    path = "/console/demand" + ("" if chosen is None else f"?area={chosen}")
    return page(lang, dt_(lang, "title"), body, path=path, who=who, csrf=csrf, admin=admin,
                editor=True)
