"""The console's posters page: print the QR posters of an area, or of one station.

The same PDFs as ``/v1/posters`` (:mod:`geo_service.posters`), drawn with the signed-in
person's principal: any role prints, within its area. Two small forms (an area, picked
by name among the person's area and the areas below it; or one station's code), each
with the paper size and, when the service has no public address for the QR codes, the
test print the API offers (``allow_local``). Both POST with the session's CSRF token;
the answer is the PDF as a download, or this page again naming what stood in the way.
"""

from __future__ import annotations

from html import escape
from typing import Any

from geo_service.console.pages import csrf_field, href, notes, page, t
from geo_service.domain.params import CODE_PATTERN
from geo_service.posters.model import PageSize

_T: dict[str, tuple[str, str]] = {
    "intro": ("为驿站打印张贴用的二维码海报（PDF，每座驿站一页）：驿站名称、签到二维码、"
              "十项基本服务、开放时间和工会服务热线。只打印开放和暂停开放的驿站。",
              "Print the QR posters stations put up (PDF, one page per station): the name, "
              "the check-in QR code, the ten basics, the hours and the union hotline. Only "
              "open and temporarily closed stations print."),
    "by_area": ("按区域打印", "An area's stations"),
    "by_station": ("打印单座驿站", "One station"),
    "area_pick": ("区域（含其下级区域）", "Area (and the areas within it)"),
    "station_code": ("驿站编号", "Station code"),
    "size": ("纸张", "Paper"),
    "test_print": ("测试打印（二维码指向本机地址，每页标明“请勿张贴”）",
                   "Test print (QR codes on this address, every page marked not to be posted)"),
    "no_public": ("本服务未设置公开地址（GEO_PUBLIC_BASE_URL），手机在街上无法打开海报上的"
                  "二维码：正式海报暂不能打印，只能勾选“测试打印”。请联系系统管理员设置该地址。",
                  "The service has no public address (GEO_PUBLIC_BASE_URL), so a phone on the "
                  "street could not open the posters' QR codes: real posters cannot be printed "
                  "yet, only a test print. Ask the system administrator to set the address."),
    "cap": ("每份 PDF 最多 {n} 页（GEO_POSTER_MAX_PAGES）；"
            "区域内驿站更多时，请按其下级区域分别打印。",
            "One PDF holds at most {n} pages (GEO_POSTER_MAX_PAGES); for an area with more "
            "stations, print the areas within it one by one."),
    "pages": ("{n} 张", "{n} posters"),
    "over_cap": ("{n} 张，超过上限", "{n} posters, over the cap"),
    "download": ("下载 PDF", "Download PDF"),
    "sample_areas": ("标“示例”的区域和驿站为示例数据，其海报也标明“示例”。",
                     "Areas and stations marked “sample” are sample data; so are their "
                     "posters."),
    "busy": ("正在生成的海报已达本服务同时生成的上限（{n} 份），请 {s} 秒后再试。",
             "The service is already drawing {n} poster PDFs, the most it draws at once: "
             "try again in {s} seconds."),
    "too_many": ("该区域可打印的驿站超过 {n} 座，超出一份 PDF 的上限（GEO_POSTER_MAX_PAGES）："
                 "请按其下级区域分别打印。",
                 "The area has more than {n} stations to print, more than one PDF holds "
                 "(GEO_POSTER_MAX_PAGES): print the areas within it one by one."),
    "must_test": ("本服务未设置公开地址（GEO_PUBLIC_BASE_URL），不能打印正式海报：请勾选"
                  "“测试打印”，或请系统管理员设置该地址。",
                  "The service has no public address (GEO_PUBLIC_BASE_URL), so real posters "
                  "cannot be printed: tick “Test print”, or ask the system administrator to "
                  "set the address."),
    "outside": ("您只能打印本人管辖区域（{area}）内的海报。",
                "You can print posters within your own area ({area}) only."),
    "unknown_station": ("没有编号为 {code} 的驿站。", "There is no station {code}."),
    "unknown_area": ("没有编号为 {code} 的区域。", "There is no area {code}."),
    "nothing": ("没有可打印的驿站：只有开放或暂停开放的驿站才有海报。",
                "Nothing to print: only open or temporarily closed stations get a poster."),
    "bad_size": ("纸张只能是 A4 或 A5。", "The paper is A4 or A5."),
    "bad_code": ("请填写有效的驿站编号（字母、数字、-、_、.，至多 64 个字符）。",
                 "Give a valid station code (letters, digits, - _ ., at most 64 characters)."),
    "bad_area": ("请选择一个区域。", "Choose an area."),
}


def pt(lang: str, key: str, **values: Any) -> str:
    """The posters page's text ``key`` in ``lang``, values filled in as they are: the
    page fills in numbers only, and an error message goes through ``notes``, which
    escapes it whole (escaping here as well would show ``&amp;`` to the person)."""
    return _T[key][0 if lang == "zh" else 1].format(**values)


def _area_option(lang: str, area: dict[str, Any], chosen: str | None, max_pages: int) -> str:
    """An area as the list shows it: name, code, how many posters (or over the cap)."""
    name = area["name_en"] if lang == "en" and area.get("name_en") else area["name"]
    tag = f" · {t(lang, 'sample')}" if area.get("sample") else ""
    count = area["stations"]
    pages = pt(lang, "over_cap" if count > max_pages else "pages", n=count)
    selected = " selected" if area["code"] == chosen else ""
    return (f'<option value="{escape(area["code"])}"{selected}>{escape(name)} '
            f'({escape(area["code"])}){tag} · {pages}</option>')


def _common(lang: str, prefix: str, size: str, test_print: bool | None) -> str:
    """The paper size and (without a public address) the test print box of one form."""
    sizes = "".join(f'<option value="{s.value}"{" selected" if s.value == size else ""}>'
                    f"{s.value}</option>" for s in PageSize)
    out = (f'<label for="{prefix}_size">{pt(lang, "size")}</label>'
           f'<select id="{prefix}_size" name="size">{sizes}</select>')
    if test_print is not None:
        out += (f'<label class="check" for="{prefix}_test"><input id="{prefix}_test" '
                f'name="test_print" type="checkbox" value="1"{" checked" if test_print else ""}>'
                f' {pt(lang, "test_print")}</label>')
    return out


def posters_page(lang: str, csrf: str, *, who: str, admin: bool, areas: list[dict[str, Any]],
                 public: bool, max_pages: int, chosen: dict[str, str] | None = None,
                 error: str | None = None) -> str:
    """The page: an intro, the public-address note when there is none, the two forms.

    ``areas``: the person's area and those below it, each with ``stations`` (how many
    posters it prints). ``public``: whether the QR codes can carry a public address
    (else only a test print, offered as a box to tick: asked for, as the API's
    ``allow_local`` is). ``chosen``: the fields of a refused form, shown again.
    """
    chosen = chosen or {}
    size = chosen.get("size", PageSize.A4.value)
    test = None if public else chosen.get("test_print") == "1"
    action = href("/console/posters", lang)
    options = "".join(_area_option(lang, a, chosen.get("area"), max_pages) for a in areas)
    area_form = (f'<form class="card" method="post" action="{action}">'
                 f'<h2>{pt(lang, "by_area")}</h2>' + csrf_field(csrf)
                 + '<input type="hidden" name="what" value="area">'
                 f'<label for="area_code">{pt(lang, "area_pick")}</label>'
                 f'<select id="area_code" name="area" required>{options}</select>'
                 + _common(lang, "area", size, test)
                 + f'<p>{pt(lang, "cap", n=max_pages)}</p>'
                 f'<button type="submit">{pt(lang, "download")}</button></form>')
    station_form = (f'<form class="card" method="post" action="{action}">'
                    f'<h2>{pt(lang, "by_station")}</h2>' + csrf_field(csrf)
                    + '<input type="hidden" name="what" value="station">'
                    f'<label for="station_code">{pt(lang, "station_code")}</label>'
                    f'<input id="station_code" name="station" required maxlength="64" '
                    f'pattern="{escape(CODE_PATTERN.strip("^$"))}" autocomplete="off" '
                    f'value="{escape(chosen.get("station", ""))}">'
                    + _common(lang, "station", size, test)
                    + f'<button type="submit">{pt(lang, "download")}</button></form>')
    sample = any(a.get("sample") for a in areas)
    body = (notes(None, error)
            + f'<section class="card"><p>{pt(lang, "intro")}</p>'
            + ("" if public else f'<p class="err">{pt(lang, "no_public")}</p>')
            + (f'<p>{pt(lang, "sample_areas")}</p>' if sample else "") + "</section>"
            + area_form + station_form)
    return page(lang, t(lang, "posters"), body, path="/console/posters", who=who, csrf=csrf,
                admin=admin)
