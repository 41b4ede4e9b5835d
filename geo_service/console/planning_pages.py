"""The console's planning page: coverage by district name, sites to act on, what-if.

Issue 27. A planner picks an area (theirs or one below it), runs coverage and the
recommendations in one go, and reads: the scorecard by district name, worst first;
a link to the coverage map of the run (served by this service, no tiles: no request
leaves it); the recommended sites with district, street, GCJ-02 / BD-09 coordinates
and an Amap link; a button that adds them as planned stations (筹建中); and a what-if
form (close stations, add the sites) answered with one before/after table.

No script (the console's strict policy); every form that writes POSTs the session's
CSRF token. Values from the database go through :func:`html.escape`.
"""

from __future__ import annotations

from html import escape
from typing import Any

from geo_service.console.pages import csrf_field, href, notes, page, t

_T: dict[str, tuple[str, str]] = {
    "title": ("覆盖规划", "Coverage planning"),
    "intro": ("选择区域，计算驿站对户外劳动者的覆盖：各区按覆盖率从低到高排列，并给出新建"
              "驿站的建议位置。", "Pick an area to see how far outdoor workers are from a "
              "station: districts from worst covered to best, and where new stations would "
              "help most."),
    "area": ("区域", "Area"),
    "threshold": ("覆盖半径（米）", "Reach (metres)"),
    "add": ("建议新建站点数", "New sites to recommend"),
    "run": ("计算覆盖与选址", "Run coverage and recommendations"),
    "scorecard": ("各区覆盖情况（最差在前）", "Districts, worst covered first"),
    "district": ("区", "District"),
    "code": ("代码", "Code"),
    "stations": ("驿站数", "Stations"),
    "covered": ("覆盖率", "Covered"),
    "doubly": ("双重覆盖", "Covered twice"),
    "gap": ("未覆盖人数", "Gap workers"),
    "gap_cells": ("未覆盖六边形数", "Uncovered cells"),
    "map": ("在地图上查看本次分析（新窗口）", "See this run on the map (new window)"),
    "sites": ("建议新建站点", "Recommended sites"),
    "rank": ("序号", "Rank"),
    "street": ("街道/乡镇", "Street"),
    "new_workers": ("新增覆盖人数", "Workers newly covered"),
    "new_cells": ("新增覆盖六边形数", "Cells newly covered"),
    "amap": ("在高德地图打开", "Open in Amap"),
    "plan": ("加入为筹建驿站", "Add as planned stations"),
    "plan_note": ("将上述站点作为“筹建中”驿站写入驿站库（可重复点击，不会重复添加）。",
                  "Writes the sites above as planned (筹建中) stations; pressing again "
                  "adds nothing twice."),
    "planned": ("已加入 {n} 座筹建驿站；{m} 座此前已加入。",
                "{n} planned stations added; {m} were added before."),
    "sheet": ("下载工会模板表（xlsx）", "Download in the union template (xlsx)"),
    "whatif": ("假设分析：关闭驿站或新建站点", "What if: close stations or add the sites"),
    "close": ("关闭的驿站编号（用逗号分隔）", "Station codes to close (comma-separated)"),
    "with_sites": ("同时新建上述建议站点", "Also add the recommended sites"),
    "compare": ("比较前后", "Compare before and after"),
    "before": ("之前", "before"),
    "after": ("之后", "after"),
    "change": ("变化", "change"),
    "whatif_map": ("在地图上查看假设后的覆盖（新窗口）",
                   "See the what-if coverage on the map (new window)"),
    "sample_run": ("本次分析包含示例数据，并非真实站点或劳动者。",
                   "This run includes SAMPLE DATA, not real stations or workers."),
    "sample_remove": ("删除示例数据", "Remove the sample data"),
    "sample_intro": ("删除全部示例数据（标“示例”的驿站、需求点、巡查、签到、报告和分析），"
                     "真实数据不受影响。此操作不可撤销。",
                     "Removes all sample data (stations, demand, inspections, check-ins, "
                     "reports and runs marked sample); real data is untouched. It cannot be "
                     "undone."),
    "sample_confirm": ("确认删除示例数据", "Yes, remove the sample data"),
    "sample_done": ("已删除示例数据：{what}。", "Sample data removed: {what}."),
    "no_editor": ("运行分析和加入筹建驿站需要编辑或管理员角色。",
                  "Running analyses and adding planned stations needs the editor or admin "
                  "role."),
    "total": ("合计", "Total"),
    "overdue": ("逾期未核实驿站（{days} 天内无巡查、也无导入的最近核实日期）",
                "Stations overdue for a visit (neither inspected nor verified, per the "
                "imported 最近核实日期, within {days} days)"),
    "overdue_count": ("{area}：共 {n} 座，以下为最久未核实的 {m} 座。",
                      "{area}: {n} in all; the {m} longest unverified below."),
    "last_verified": ("最近核实", "Last verified"),
    "never": ("从未", "never"),
    "name": ("名称", "Name"),
    "by_area": ("{label}：本区域没有需求数据，覆盖率是面积（H3 六边形）的占比，"
                "“未覆盖人数”一列为未覆盖的六边形数。",
                "{label}: no demand data here, so shares are shares of area (H3 cells) and "
                "the gap column counts uncovered cells, not workers."),
}


def pt(lang: str, key: str, **values: Any) -> str:
    """The planning page's text ``key`` in ``lang`` (escaped values filled in)."""
    text = _T[key][0 if lang == "zh" else 1]
    return text.format(**{k: escape(str(v)) for k, v in values.items()})


def _region(label: str) -> str:
    """A wide table's scrolling box, reachable by keyboard (so it can be scrolled) and
    named for screen readers."""
    return f'<div class="scroll" tabindex="0" role="region" aria-label="{label}">'


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.1f}%"


def _num(x: float | None) -> str:
    return "—" if x is None else f"{x:,.0f}"


def _diff(x: float | None, pct: bool) -> str:
    if x is None:
        return "—"
    return f"{100 * x:+.1f} pt" if pct else f"{x:+,.0f}"


def _run_form(lang: str, csrf: str, areas: list[dict[str, Any]], chosen: str | None,
              threshold: float, add: int) -> str:
    def label(a: dict[str, Any]) -> str:
        name = a["name_en"] if lang == "en" and a.get("name_en") else a["name"]
        tag = " · " + t(lang, "sample") if a.get("sample") else ""
        return f'{escape(name)} ({escape(a["code"])}){tag}'

    options = "".join(
        f'<option value="{escape(a["code"])}"{" selected" if a["code"] == chosen else ""}>'
        f"{label(a)}</option>" for a in areas if a["level"] in ("city", "district"))
    return (f'<form class="card" method="post" action="{href("/console/planning/run", lang)}">'
            + csrf_field(csrf)
            + f'<label for="area">{pt(lang, "area")}</label>'
            f'<select id="area" name="area" required>{options}</select>'
            f'<label for="threshold_m">{pt(lang, "threshold")}</label>'
            f'<input id="threshold_m" name="threshold_m" type="number" min="100" max="20000" '
            f'step="50" value="{threshold:.0f}" required>'
            f'<label for="add">{pt(lang, "add")}</label>'
            f'<input id="add" name="add" type="number" min="1" max="50" value="{add}" required>'
            f'<button type="submit">{pt(lang, "run")}</button></form>')


def scorecard_table(lang: str, rows: list[dict[str, Any]], by_area: bool = False) -> str:
    """The run's scorecard, in the order the run ranks it (worst first, total last);
    ``by_area``: a run with no demand, whose gap column counts H3 cells, not workers."""
    head = "".join(f'<th scope="col">{pt(lang, k)}</th>' for k in (
        "district", "code", "stations", "covered", "doubly", "gap_cells" if by_area else "gap"))
    body = "".join(
        f'<tr><th scope="row">{escape(r.get("name") or r["area"])}</th>'
        f'<td>{escape(r["area"]) if r["area"] != "total" else ""}</td>'
        f'<td>{r["stations"]}</td><td>{_pct(r.get("covered_share"))}</td>'
        f'<td>{_pct(r.get("doubly_share"))}</td><td>{_num(r.get("uncovered_demand"))}</td></tr>'
        for r in rows)
    caption = pt(lang, "scorecard")
    return (f'{_region(caption)}<table id="scorecard"><caption>{caption}'
            f"</caption><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>")


def _coord(p: list[float | None]) -> str:
    return "—" if p[0] is None or p[1] is None else f"{p[0]:.6f},{p[1]:.6f}"


def sites_table(lang: str, sites: list[dict[str, Any]], by_area: bool = False) -> str:
    """Each site: rank, district, street, workers (``by_area``: cells) newly covered,
    GCJ-02, BD-09, Amap."""
    head = "".join(f'<th scope="col">{h}</th>' for h in (
        pt(lang, "rank"), pt(lang, "district"), pt(lang, "street"),
        pt(lang, "new_cells" if by_area else "new_workers"),
        "GCJ-02", "BD-09", "WGS-84", pt(lang, "amap")))
    rows = []
    for s in sites:
        g, b = s.get("gcj02") or [None, None], s.get("bd09") or [None, None]
        rows.append(
            f'<tr><td>{s["rank"]}</td>'
            f'<td>{escape(s.get("district") or "—")} {escape(s.get("district_code") or "")}</td>'
            f'<td>{escape(s.get("street") or "—")}</td><td>{_num(s.get("gain"))}</td>'
            f'<td class="gcj02">{_coord(g)}</td><td class="bd09">{_coord(b)}</td>'
            f'<td>{s["lon"]:.6f},{s["lat"]:.6f}</td>'
            + (f'<td><a href="{escape(s["amap"])}" rel="noopener noreferrer" target="_blank">'
               f'{pt(lang, "amap")} #{s["rank"]}</a></td>' if s.get("amap") else "<td>—</td>")
            + "</tr>")
    return (f'{_region(pt(lang, "sites"))}<table id="sites"><caption>{pt(lang, "sites")}</caption>'
            f'<thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>')


def whatif_table(lang: str, rows: list[dict[str, Any]]) -> str:
    """Before, after and the change per district, in one table."""
    parts = (("stations", False), ("covered_share", True), ("uncovered_demand", False))
    labels = {"stations": pt(lang, "stations"), "covered_share": pt(lang, "covered"),
              "uncovered_demand": pt(lang, "gap")}
    top = "".join(f'<th scope="colgroup" colspan="3">{labels[k]}</th>' for k, _ in parts)
    sub = "".join(f'<th scope="col">{pt(lang, w)}</th>' for _ in parts
                  for w in ("before", "after", "change"))
    body = []
    for r in rows:
        cells = []
        for key, pct in parts:
            fmt = _pct if pct else _num
            cells += [fmt(r[f"{key}_before"]), fmt(r[f"{key}_after"]),
                      _diff(r[f"{key}_change"], pct)]
        body.append(f'<tr><th scope="row">{escape(r.get("name") or r["area"])}</th>'
                    + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return (f'{_region(pt(lang, "whatif"))}<table id="whatif"><thead><tr><td></td>{top}</tr><tr>'
            f'<th scope="col">{pt(lang, "district")}</th>{sub}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table></div>')


def overdue_section(lang: str, found: dict[str, Any]) -> str:
    """The area's overdue stations, by the one rule the API, CLI and compliance map use."""
    rows = "".join(
        f'<tr><td>{escape(r["code"])}</td><td>{escape(r["name"])}</td>'
        f'<td>{escape(r.get("district") or "—")}</td>'
        f'<td>{r["last_verified_on"] or pt(lang, "never")}</td></tr>'
        for r in found["stations"])
    head = "".join(f'<th scope="col">{pt(lang, k)}</th>' for k in (
        "code", "name", "district", "last_verified"))
    title = pt(lang, "overdue", days=found["days"])
    count = pt(lang, "overdue_count", area=found["area"] or "", n=found["total"],
               m=found["count"])
    return (f'<section class="card" id="overdue"><h2>{title}</h2><p>{count}</p>'
            f"{_region(title)}<table><thead><tr>{head}"
            f"</tr></thead><tbody>{rows}</tbody></table></div></section>")


def map_link(lang: str, run_id: int, key: str = "map") -> str:
    """The coverage map of a run, as the service draws it, with no tiles from outside."""
    return (f'<p><a href="/maps/coverage.html?run={run_id}&amp;offline=true" '
            f'target="_blank" rel="noopener">{pt(lang, key)}</a></p>')


def planning_page(lang: str, csrf: str, *, who: str, role: str, areas: list[dict[str, Any]],
                  chosen: str | None = None, threshold: float = 1000, add: int = 5,
                  coverage: dict[str, Any] | None = None,
                  plan: dict[str, Any] | None = None, whatif: dict[str, Any] | None = None,
                  overdue: dict[str, Any] | None = None,
                  message: str | None = None, error: str | None = None) -> str:
    """The page: the run form; with a run, its scorecard, map link, sites and what-if."""
    admin, editor = role == "admin", role in ("admin", "editor")
    # The sites and what-if tables are wide: this page takes more of a wide screen.
    body = ("<style>main{max-width:84rem}#sites td,#whatif td{white-space:nowrap}</style>"
            + notes(message, error) + f"<p>{pt(lang, 'intro')}</p>")
    body += (_run_form(lang, csrf, areas, chosen, threshold, add) if editor
             else f'<p class="err">{pt(lang, "no_editor")}</p>')
    if coverage is not None:
        summary = coverage["summary"]
        sample = (f'<p class="err">{pt(lang, "sample_run")}</p>'
                  if coverage.get("sample") else "")
        if summary.get("basis") == "area":  # no demand data: shares of area, not workers
            sample += f'<p class="msg">{pt(lang, "by_area", label=summary["basis_label"])}</p>'

        body += (f'<section class="card" id="coverage">{sample}'
                 + scorecard_table(lang, summary.get("areas", []),
                                   by_area=summary.get("basis") == "area")
                 + map_link(lang, coverage["id"]) + "</section>")
    if plan is not None and editor:
        sites = plan["summary"].get("sites", [])
        body += ('<section class="card" id="recommendations">'
                 + sites_table(lang, sites, by_area=plan["summary"].get("basis") == "area")
                 + map_link(lang, plan["id"])
                 + f'<form method="post" action="{href("/console/planning/plan", lang)}">'
                 + csrf_field(csrf)
                 + f'<input type="hidden" name="run" value="{plan["id"]}">'
                 + _keep(coverage, chosen, threshold, add)
                 + f'<p>{pt(lang, "plan_note")}</p>'
                 f'<button type="submit">{pt(lang, "plan")}</button></form>'
                 f'<p><a href="/v1/analysis/runs/{plan["id"]}/sites/plan.xlsx">'
                 f'{pt(lang, "sheet")}</a></p></section>')
        body += (f'<form class="card" id="whatif-form" method="post" '
                 f'action="{href("/console/planning/whatif", lang)}">'
                 f'<h2>{pt(lang, "whatif")}</h2>' + csrf_field(csrf)
                 + f'<input type="hidden" name="run" value="{plan["id"]}">'
                 + _keep(coverage, chosen, threshold, add)
                 + f'<label for="close">{pt(lang, "close")}</label>'
                 '<input id="close" name="close" maxlength="1000" autocomplete="off">'
                 '<label class="check"><input type="checkbox" name="with_sites" value="1"> '
                 f'{pt(lang, "with_sites")}</label>'
                 f'<button type="submit">{pt(lang, "compare")}</button></form>')
    if whatif is not None:
        body += (f'<section class="card" id="whatif-result"><h2>{pt(lang, "whatif")}</h2>'
                 + whatif_table(lang, whatif["rows"])
                 + map_link(lang, whatif["run_id"], "whatif_map") + "</section>")
    if overdue is not None:
        body += overdue_section(lang, overdue)
    if admin:
        body += (f'<section class="card"><h2>{pt(lang, "sample_remove")}</h2>'
                 f'<p><a href="{href("/console/planning/sample", lang)}">'
                 f'{pt(lang, "sample_remove")}</a></p></section>')
    return page(lang, pt(lang, "title"), body, path="/console/planning", who=who, csrf=csrf,
                admin=admin, editor=editor)


def _keep(coverage: dict[str, Any] | None, chosen: str | None, threshold: float,
          add: int) -> str:
    """Hidden fields that bring the page back to the same runs after a POST."""
    fields = {"coverage": coverage["id"] if coverage else "", "area": chosen or "",
              "threshold_m": f"{threshold:.0f}", "add": add}
    return "".join(f'<input type="hidden" name="{k}" value="{escape(str(v))}">'
                   for k, v in fields.items())


def sample_page(lang: str, csrf: str, *, who: str, done: dict[str, int] | None = None) -> str:
    """The admin's confirm step before the sample data goes (and what went, after)."""
    if done is not None:
        what = ", ".join(f"{k} {v}" for k, v in done.items())
        body = notes(pt(lang, "sample_done", what=what), None)
    else:
        body = (f'<form class="card" method="post" '
                f'action="{href("/console/planning/sample", lang)}">' + csrf_field(csrf)
                + f'<p>{pt(lang, "sample_intro")}</p>'
                f'<button type="submit">{pt(lang, "sample_confirm")}</button></form>')
    body += f'<p><a href="{href("/console/planning", lang)}">{pt(lang, "title")}</a></p>'
    return page(lang, pt(lang, "sample_remove"), body, path="/console/planning/sample",
                who=who, csrf=csrf, admin=True, editor=True)


def home_link(lang: str) -> str:
    """The home page's list item for this page."""
    return f'<li><a href="{href("/console/planning", lang)}">{pt(lang, "title")}</a></li>'


