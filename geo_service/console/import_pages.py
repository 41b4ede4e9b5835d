"""The console's import pages: upload, preview (every problem at once), result.

Rendered from the import report (:func:`geo_service.stations.importer.import_bytes`)
as it was stored with the upload, so the page, the confirmation and the sheet with the
错误说明 column all speak of the same preview. Chinese first, English by ``?lang=en``;
no script; every value escaped; the confirm form carries the session's CSRF token.
"""

from __future__ import annotations

from html import escape
from typing import Any

from geo_service.console.pages import csrf_field, href, notes, page

#: Rows of each table a page shows (the counts say how many there are in all).
SHOWN = 200
CRS_OPTIONS = (("wgs84", "WGS-84（GPS、天地图）", "WGS-84 (GPS, Tianditu)"),
               ("gcj02", "GCJ-02（高德、腾讯地图拾取的坐标）", "GCJ-02 (Amap, Tencent maps)"),
               ("bd09", "BD-09（百度地图）", "BD-09 (Baidu maps)"))

_T: dict[str, tuple[str, str]] = {
    "import": ("批量导入", "Import stations"),
    "steps": ("① 下载模板填写，或直接上传现有台账（表头上方的标题行、序号、备注等列、"
              "合并的表头单元格都能识别；无法识别的列会列出并忽略）。"
              "② 上传后系统一次列出全部问题，行号与 Excel 左侧行号一致。"
              "③ 核对预览（新增、更新、不变）后确认导入；有问题时可下载带“错误说明”列的"
              "表格，改好后重新上传。",
              "① Fill in the template, or upload your own ledger as it is (title rows above the "
              "header, 序号/备注 and other columns, merged header cells are understood; columns "
              "not recognised are listed and ignored). ② The upload lists every problem at "
              "once, with row numbers as Excel shows them. ③ Check the preview (add, update, "
              "unchanged) and confirm; or download the sheet with an error column, fix it and "
              "upload it again."),
    "template": ("下载模板", "Download the template"),
    "file": ("表格文件（.xlsx 或 .csv）", "Spreadsheet (.xlsx or .csv)"),
    "crs": ("坐标系（每行“坐标系”列填写时以该列为准）",
            "Coordinate system (a row's 坐标系 cell overrides it)"),
    "upload": ("上传并预览", "Upload and preview"),
    "preview": ("导入预览", "Import preview"),
    "file_line": ("文件：{name}（坐标系 {crs}，表头在第 {row} 行）",
                  "File: {name} (coordinates {crs}, header on row {row})"),
    "n_add": ("新增 {n} 个", "{n} to add"),
    "n_update": ("更新 {n} 个", "{n} to update"),
    "n_same": ("不变 {n} 个", "{n} unchanged"),
    "n_bad": ("有问题的行 {n} 行（{p} 个问题）", "{n} rows with problems ({p} problems)"),
    "problems": ("问题（请在表格中修正）", "Problems (fix them in the sheet)"),
    "row": ("行号", "Row"),
    "column": ("列", "Column"),
    "reason": ("问题", "Problem"),
    "hint": ("提示", "Hint"),
    "download_errors": ("下载带错误说明的表格", "Download the sheet with an error column"),
    "fix_reupload": ("改好后重新上传：", "Fix it and upload again: "),
    "ignored": ("以下列未导入（已忽略）：", "Columns ignored (not imported): "),
    "zones": ("按坐标归入区县：", "Districts decided by the point: "),
    "zone_item": ("第 {row} 行 {given} → 按坐标归入 {district}",
                  "row {row}: {given} → by the point, {district}"),
    "to_add": ("新增", "To add"),
    "to_update": ("更新（原值 → 新值）", "To update (old → new)"),
    "unchanged": ("不变", "Unchanged"),
    "code": ("站点编码", "Code"),
    "name": ("站点名称", "Name"),
    "district": ("区县", "District"),
    "changes": ("变更", "Changes"),
    "moved": ("位置移动约 {m} 米", "point moves about {m} m"),
    "empty": ("（空）", "(blank)"),
    "confirm": ("确认导入（新增 {a} 个，更新 {u} 个）", "Confirm: add {a}, update {u}"),
    "confirm_note": ("确认后将原样应用上面的预览；若其间有人修改了这些站点，系统会要求重新核对。",
                     "Confirming applies exactly this preview; if someone changed these "
                     "stations meanwhile, you will be asked to check a new preview."),
    "nothing": ("没有需要导入的变化。", "Nothing to import: no changes."),
    "first_n": ("（仅列出前 {n} 条）", "(first {n} shown)"),
    "done": ("导入完成", "Import done"),
    "done_line": ("已导入：新增 {a} 个，更新 {u} 个，不变 {s} 个。",
                  "Imported: {a} added, {u} updated, {s} unchanged."),
    "import_id": ("导入编号（操作记录中可查）：{id}", "Import id (in the audit trail): {id}"),
    "again": ("再导入一个文件", "Import another file"),
    "stations": ("查看驿站列表", "See the stations"),
    "stale": ("在您预览之后，有人修改了这些站点：下面是按最新数据重新生成的预览，"
              "请再核对一次后确认。",
              "These stations changed after your preview: below is a new preview from the "
              "current data; check it again before confirming."),
    "recheck": ("改用此坐标系重新预览", "Preview again with this coordinate system"),
    "gone": ("这个预览已过期或不存在，请重新上传。", "This preview has expired or does not "
             "exist; upload the file again."),
    "refused_all": ("有问题时不能导入：全部改好后才会写入（一次导入要么全部成功，"
                    "要么什么都不写）。",
                    "Nothing is imported while there are problems: an import writes all its "
                    "rows or none."),
}


def it(lang: str, key: str, **values: Any) -> str:
    """The import pages' text ``key`` in ``lang`` (escaped values filled in)."""
    text = _T[key][0 if lang == "zh" else 1]
    return text.format(**{k: escape(str(v)) for k, v in values.items()})


def _crs_select(lang: str, chosen: str, field_id: str) -> str:
    opts = "".join(f'<option value="{v}"{" selected" if v == chosen else ""}>'
                   f"{escape(zh if lang == 'zh' else en)}</option>"
                   for v, zh, en in CRS_OPTIONS)
    return f'<select id="{field_id}" name="crs">{opts}</select>'


def _crs_name(crs: str) -> str:
    return {"wgs84": "WGS-84", "gcj02": "GCJ-02", "bd09": "BD-09"}.get(crs, crs)


def upload_form(lang: str, csrf: str, crs: str = "wgs84") -> str:
    return (f'<form class="card" method="post" enctype="multipart/form-data" '
            f'action="{href("/console/import", lang)}">{csrf_field(csrf)}'
            f'<label for="file">{it(lang, "file")}</label>'
            '<input id="file" name="file" type="file" required '
            'accept=".xlsx,.csv,application/vnd.openxmlformats-officedocument.spreadsheetml.'
            'sheet,text/csv">'
            f'<label for="crs">{it(lang, "crs")}</label>{_crs_select(lang, crs, "crs")}'
            f'<button type="submit">{it(lang, "upload")}</button></form>')


def upload_page(lang: str, csrf: str, *, who: str, admin: bool,
                error: str | None = None) -> str:
    body = (notes(None, error)
            + f'<section class="card"><p>{it(lang, "steps")}</p>'
            f'<p><a href="/v1/stations:template.xlsx" download>{it(lang, "template")}</a></p>'
            "</section>" + upload_form(lang, csrf))
    return page(lang, it(lang, "import"), body, path="/console/import", who=who, csrf=csrf,
                admin=admin, editor=True)


def _table(label: str, heads: list[str], rows: list[str]) -> str:
    head = "".join(f'<th scope="col">{h}</th>' for h in heads)
    return (f'<div class="scroll" role="region" aria-label="{label}" tabindex="0">'
            f'<table><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
            "</div>")


def _cell(lang: str, value: Any) -> str:
    if value is None or value == "":
        return it(lang, "empty")
    return escape(str(value))


def _problems(lang: str, report: dict[str, Any]) -> str:
    rows = []
    for e in report["errors"][:SHOWN]:
        row = e.get("sheet_row") or e["row"]
        reason = e.get("reason_zh") if lang == "zh" and e.get("reason_zh") else None
        english = escape(e["problem"])
        text = (f"{escape(reason)}<br><small lang=\"en\">{english}</small>" if reason
                else english)
        column = e.get("column") or e["field"]
        rows.append(f"<tr><td>{row}</td><td>{escape(str(column))}</td><td>{text}</td>"
                    f"<td>{escape(e.get('hint') or '')}</td></tr>")
    more = (f"<p>{it(lang, 'first_n', n=SHOWN)}</p>"
            if report["error_count"] > len(rows) else "")
    return _table(it(lang, "problems"), [it(lang, k) for k in ("row", "column", "reason",
                                                               "hint")], rows) + more


def _changes(lang: str, u: dict[str, Any]) -> str:
    items = [f"<li>{escape(c['column'])}：{_cell(lang, c['old'])} → {_cell(lang, c['new'])}"
             "</li>" for c in u["changes"]]
    if u.get("moved_m") is not None:
        metres = f"{u['moved_m']:.0f}"
        items.append(f"<li>{it(lang, 'moved', m=metres)}</li>")
    return f'<ul class="notes">{"".join(items)}</ul>'


def preview_page(lang: str, csrf: str, *, who: str, admin: bool, token: str,
                 upload: dict[str, Any], message: str | None = None) -> str:
    """Counts, the GCJ-02 question, districts placed by the point, ignored columns,
    every problem (row, column, reason, hint), then the rows to add, update and leave."""
    report = upload["report"]
    preview = report.get("preview") or {"add": [], "update": [], "unchanged": [],
                                        "add_count": 0, "update_count": 0,
                                        "unchanged_count": 0, "crs_hint": None}
    base = f"/console/import/{escape(token)}"
    bad_rows = len({e.get("sheet_row") or e["row"] for e in report["errors"]})
    counts = [it(lang, "n_add", n=preview["add_count"]),
              it(lang, "n_update", n=preview["update_count"]),
              it(lang, "n_same", n=preview["unchanged_count"])]
    if report["error_count"]:
        counts.append(it(lang, "n_bad", n=bad_rows, p=report["error_count"]))
    body = notes(message, None)
    line = it(lang, "file_line", name=upload["filename"], crs=_crs_name(upload["crs"]),
              row=report.get("header_row") or 1)
    listed = "".join(f"<li>{c}</li>" for c in counts)
    body += f'<section class="card"><p>{line}</p><ul class="counts">{listed}</ul>'
    hint = preview.get("crs_hint")
    if hint:
        said = hint["message_zh"] if lang == "zh" else hint["message"]
        body += (f'<div class="err" role="alert"><p>{escape(said)}</p>'
                 f'<form class="inline" method="post" action="{href(base + "/recheck", lang)}">'
                 f'{csrf_field(csrf)}<label for="recrs">{it(lang, "crs")}</label>'
                 f'{_crs_select(lang, "gcj02", "recrs")}'
                 f'<button type="submit">{it(lang, "recheck")}</button></form></div>')
    zones = report.get("districts_by_point") or []
    if zones:
        items = "".join(
            "<li>" + it(lang, "zone_item", row=z["sheet_row"] or z["row"], given=z["given"],
                        district=z["district"] or z["district_code"]) + "</li>"
            for z in zones)
        body += f'<p>{it(lang, "zones")}</p><ul>{items}</ul>'
    if report.get("ignored_columns"):
        body += (f'<p>{it(lang, "ignored")}'
                 + escape("、".join(report["ignored_columns"])) + "</p>")
    body += "</section>"
    if report["error_count"]:
        body += (f'<section class="card" aria-labelledby="h-problems">'
                 f'<h2 id="h-problems">{it(lang, "problems")}</h2>'
                 f'<p>{it(lang, "refused_all")}</p>{_problems(lang, report)}'
                 f'<p><a href="{href(base + "/errors", lang)}">{it(lang, "download_errors")}'
                 f'</a></p><p>{it(lang, "fix_reupload")}</p>'
                 + upload_form(lang, csrf, upload["crs"]) + "</section>")
    adds = [f"<tr><td>{a['sheet_row'] or a['row']}</td><td>{escape(a['code'])}</td>"
            f"<td>{_cell(lang, a['name'])}</td><td>{_cell(lang, a.get('district'))}</td></tr>"
            for a in preview["add"][:SHOWN]]
    updates = [f"<tr><td>{u['sheet_row'] or u['row']}</td><td>{escape(u['code'])}</td>"
               f"<td>{_cell(lang, u['name'])}</td><td>{_changes(lang, u)}</td></tr>"
               for u in preview["update"][:SHOWN]]
    for key, rows, total, heads in (
            ("to_add", adds, preview["add_count"], ["row", "code", "name", "district"]),
            ("to_update", updates, preview["update_count"], ["row", "code", "name", "changes"])):
        if not rows:
            continue
        more = f"<p>{it(lang, 'first_n', n=len(rows))}</p>" if total > len(rows) else ""
        body += (f'<section class="card" aria-labelledby="h-{key}"><h2 id="h-{key}">'
                 f'{it(lang, key)}（{total}）</h2>'
                 + _table(it(lang, key), [it(lang, h) for h in heads], rows) + more
                 + "</section>")
    if preview["unchanged"]:
        items = "、".join(escape(f"{u['code']} {u['name'] or ''}".strip())
                         for u in preview["unchanged"][:SHOWN])
        body += (f'<section class="card"><details><summary>{it(lang, "unchanged")}'
                 f'（{preview["unchanged_count"]}）</summary><p>{items}</p></details></section>')
    if not report["error_count"]:
        if preview["add_count"] or preview["update_count"]:
            body += (f'<form class="card" method="post" action="{href(base + "/confirm", lang)}">'
                     f'{csrf_field(csrf)}<p>{it(lang, "confirm_note")}</p>'
                     '<button type="submit">'
                     + it(lang, "confirm", a=preview["add_count"], u=preview["update_count"])
                     + "</button></form>")
        else:
            body += f'<p class="msg" role="status">{it(lang, "nothing")}</p>'
    return page(lang, it(lang, "preview"), body, path=f"/console/import/{token}", who=who,
                csrf=csrf, admin=admin, editor=True)


def result_page(lang: str, csrf: str, *, who: str, admin: bool,
                result: dict[str, Any]) -> str:
    done = it(lang, "done_line", a=result["created"], u=result["updated"],
              s=result["unchanged"])
    body = (f'<p class="msg" role="status">{done}</p>'
            f'<section class="card"><p>{it(lang, "import_id", id=result.get("import_id") or "")}'
            f'</p><ul><li><a href="{href("/console/stations", lang)}">{it(lang, "stations")}'
            f'</a></li><li><a href="{href("/console/import", lang)}">{it(lang, "again")}</a>'
            "</li></ul></section>")
    return page(lang, it(lang, "done"), body, path="/console/import", who=who, csrf=csrf,
                admin=admin, editor=True)


def gone_page(lang: str, csrf: str, *, who: str, admin: bool) -> str:
    body = (f'<p class="err" role="alert">{it(lang, "gone")}</p>'
            f'<p><a href="{href("/console/import", lang)}">{it(lang, "again")}</a></p>')
    return page(lang, it(lang, "import"), body, path="/console/import", who=who, csrf=csrf,
                admin=admin, editor=True)

