"""The console's photo pages: a station's photos, and worker-report photos to approve.

A station's page shows its photos as thumbnails, exterior first (the map platforms
publish the first exterior photo, 外观图片), with a form to add one: a file input that
accepts any image and, on a phone, offers the camera (``capture``). Editors and
admins also set a photo as the exterior one and remove photos; every form posts with
the session's CSRF token, and no script runs (the console's strict policy).

The pending page lists worker-report photos that wait for a clerk, each with approve
and reject; their thumbnails come from the console (``/console/photos/<sha>/thumb.jpg``),
since an unapproved photo is not public.
"""

from __future__ import annotations

import datetime as dt
from html import escape
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from geo_service.console.pages import csrf_field, href, notes, page
from geo_service.console.reports_pages import KIND_LABELS
from geo_service.domain.params import CODE_PATTERN

_T: dict[str, tuple[str, str]] = {
    "photos": ("驿站照片", "Station photos"),
    "pending": ("待审核照片", "Photos to approve"),
    "intro": ("地图平台要求上传驿站外观图片，排在第一位的外观照片会出现在导出文件中。"
              "照片上传后会去除拍摄位置（GPS）和设备信息，并自动转正方向。",
              "The map platforms ask for the station's exterior photo; the first exterior "
              "photo goes into the exports. Uploaded photos lose their GPS position and "
              "device data, and are turned upright."),
    "limits": ("支持 JPEG、PNG、HEIC（iPhone）格式，单张不超过 {mb} MB、{mp} 百万像素。",
               "JPEG, PNG or HEIC (iPhone), at most {mb} MB and {mp} megapixels each."),
    "add": ("添加照片", "Add a photo"),
    "file": ("照片文件（手机上可直接拍照）", "Photo file (a phone offers its camera)"),
    "kind": ("类别", "Kind"),
    "exterior": ("外观", "Exterior"),
    "interior": ("室内", "Interior"),
    "other": ("其他", "Other"),
    "upload": ("上传", "Upload"),
    "none": ("这座驿站还没有照片。", "This station has no photos yet."),
    "no_exterior": ("还没有外观照片：地图平台上架需要外观图片。",
                    "No exterior photo yet: the map platforms need one."),
    "set_exterior": ("设为外观首图", "Make it the exterior photo"),
    "delete": ("删除", "Remove"),
    "uploaded": ("照片已上传。", "Photo uploaded."),
    "already": ("这张照片已经在这座驿站的照片里了。", "This station already has this photo."),
    "exterior_set": ("已设为外观首图。", "It is now the exterior photo."),
    "deleted": ("照片已删除。", "Photo removed."),
    "by": ("上传：{who}，{at}", "By {who}, {at}"),
    "photo_alt": ("{name}的{kind}照片", "{kind} photo of {name}"),
    "editors_only": ("只有编辑和管理员可以添加或删除驿站照片。",
                     "Only editors and admins add or remove station photos."),
    "station": ("驿站", "Station"),
    "report": ("报告", "Report"),
    "comment": ("说明", "Comment"),
    "sent_at": ("提交时间", "Sent"),
    "approve": ("通过", "Approve"),
    "reject": ("驳回", "Reject"),
    "no_pending": ("没有待审核的照片。", "No photos waiting."),
    "pending_intro": ("工人随报告提交的照片在审核通过前不会公开。请确认照片不含人脸、车牌等"
                      "个人信息后再通过。",
                      "Photos workers send with reports stay private until approved. Approve "
                      "only photos that show no faces, number plates or other personal data."),
    "approved": ("已通过，照片现已公开。", "Approved: the photo is now public."),
    "rejected": ("已驳回，照片不会公开。", "Rejected: the photo stays private."),
    "sample": ("示例", "sample"),
    "find": ("查看驿站照片", "A station's photos"),
    "code": ("驿站编号", "Station code"),
    "open": ("打开", "Open"),
    "bad_code": ("请填写有效的驿站编号（字母、数字、-、_、.，至多 64 个字符）。",
                 "Give a valid station code (letters, digits, - _ ., at most 64 characters)."),
    "to_pending": ("工人报告照片待审核：{n} 张", "Worker-report photos to approve: {n}"),
}
_KINDS = ("exterior", "interior", "other")


def ft(lang: str, key: str, **values: Any) -> str:
    """The photo pages' text ``key`` in ``lang`` (values filled in as given)."""
    return _T[key][0 if lang == "zh" else 1].format(**values)


def station_photos_path(code: str) -> str:
    return f"/console/stations/{quote(code, safe='')}/photos"


def _when(at: dt.datetime, tz: ZoneInfo) -> str:
    """A moment on the clerk's clock (the service's zone), not the database's UTC."""
    return f"{at.astimezone(tz):%Y-%m-%d %H:%M}"


def _button(lang: str, csrf: str, action: str, label: str, plain: bool = True) -> str:
    """A one-button POST form carrying the CSRF token."""
    cls = ' class="plain"' if plain else ""
    return (f'<form class="inline" method="post" action="{escape(href(action, lang))}">'
            f'{csrf_field(csrf)}<button type="submit"{cls}>{label}</button></form>')


def _photo_card(lang: str, csrf: str, station: dict[str, Any], photo: dict[str, Any],
                editor: bool, tz: ZoneInfo) -> str:
    base = f'{station_photos_path(station["code"])}/{photo["id"]}'
    kind = ft(lang, photo["kind"])
    alt = ft(lang, "photo_alt", name=station["name"], kind=kind)
    actions = ""
    if editor:
        if not photo.get("first_exterior", False):
            actions += _button(lang, csrf, f"{base}/exterior", ft(lang, "set_exterior"))
        actions += _button(lang, csrf, f"{base}/delete", ft(lang, "delete"))
    by = ft(lang, "by", who=photo["uploaded_by"], at=_when(photo["created_at"], tz))
    return (f'<li class="card photo"><a href="{escape(photo["url"])}">'
            f'<img src="{escape(photo["thumb_url"])}" alt="{escape(alt)}" '
            f'width="160" loading="lazy"></a>'
            f"<p><strong>{escape(kind)}</strong> · {escape(by)}</p>{actions}</li>")


_GALLERY_STYLE = ("<style>ul.photos{list-style:none;padding:0;display:grid;gap:.8rem;"
                  "grid-template-columns:repeat(auto-fill,minmax(11rem,1fr))}"
                  "li.photo{background:#fff;border:1px solid #cfd4da;border-radius:6px;"
                  "padding:.5rem}li.photo img{max-width:100%;height:auto;display:block}"
                  "li.photo p{margin:.3rem 0;font-size:.9rem}"
                  "li.photo .inline button{margin:.2rem .3rem 0 0}</style>")


def station_photos_page(lang: str, csrf: str, *, who: str, admin: bool, editor: bool,
                        station: dict[str, Any], photos: list[dict[str, Any]],
                        max_mb: float, max_mp: float, tz: ZoneInfo,
                        message: str | None = None, error: str | None = None) -> str:
    """A station's photos, exterior first, and (for editors and admins) the upload form."""
    path = station_photos_path(station["code"])
    exteriors = [p for p in photos if p["kind"] == "exterior"]
    if exteriors:
        exteriors[0]["first_exterior"] = True
    kinds = "".join(f'<option value="{k}">{ft(lang, k)}</option>' for k in _KINDS)
    form = (f'<form class="card" method="post" enctype="multipart/form-data" '
            f'action="{escape(href(path, lang))}"><h2>{ft(lang, "add")}</h2>'
            + csrf_field(csrf)
            + f'<label for="photo_file">{ft(lang, "file")}</label>'
            '<input id="photo_file" name="file" type="file" accept="image/*" '
            'capture="environment" required>'
            f'<label for="photo_kind">{ft(lang, "kind")}</label>'
            f'<select id="photo_kind" name="kind">{kinds}</select>'
            f'<p>{ft(lang, "limits", mb=f"{max_mb:g}", mp=f"{max_mp:g}")}</p>'
            f'<button type="submit">{ft(lang, "upload")}</button></form>'
            if editor else f'<p>{ft(lang, "editors_only")}</p>')
    gallery = ('<ul class="photos">'
               + "".join(_photo_card(lang, csrf, station, p, editor, tz) for p in photos) + "</ul>"
               if photos else f'<p>{ft(lang, "none")}</p>')
    sample = f' · {ft(lang, "sample")}' if station.get("sample") else ""
    body = (_GALLERY_STYLE + notes(message, error)
            + f'<section class="card"><p><strong>{escape(station["name"])}</strong> '
            f'({escape(station["code"])}){sample}</p><p>{ft(lang, "intro")}</p>'
            + ("" if exteriors else f'<p class="err">{ft(lang, "no_exterior")}</p>')
            + "</section>" + form + f'<h2>{ft(lang, "photos")}</h2>' + gallery)
    return page(lang, f'{ft(lang, "photos")} · {station["name"]}', body, path=path, who=who,
                csrf=csrf, admin=admin, editor=editor)


def photos_home(lang: str, csrf: str, *, who: str, admin: bool, editor: bool,
                pending: int | None, code: str = "", error: str | None = None) -> str:
    """Where the photos start: a station's photos by its code, and the approval queue."""
    form = (f'<form class="card" method="get" action="/console/photos">'
            f'<h2>{ft(lang, "find")}</h2>'
            + ('<input type="hidden" name="lang" value="en">' if lang == "en" else "")
            + f'<label for="photo_station">{ft(lang, "code")}</label>'
            f'<input id="photo_station" name="code" required maxlength="64" '
            f'pattern="{escape(CODE_PATTERN.strip("^$"))}" autocomplete="off" '
            f'value="{escape(code)}"><button type="submit">{ft(lang, "open")}</button></form>')
    queue = (f'<section class="card"><p><a href="{href("/console/photos/pending", lang)}">'
             f'{ft(lang, "to_pending", n=pending)}</a></p></section>'
             if pending is not None else "")
    body = (notes(None, error) + f'<section class="card"><p>{ft(lang, "intro")}</p></section>'
            + form + queue)
    return page(lang, ft(lang, "photos"), body, path="/console/photos", who=who, csrf=csrf,
                admin=admin, editor=editor)


def pending_page(lang: str, csrf: str, *, who: str, admin: bool,
                 photos: list[dict[str, Any]], tz: ZoneInfo, message: str | None = None,
                 error: str | None = None) -> str:
    """Worker-report photos waiting for a clerk, oldest first, with approve and reject."""
    rows = []
    for p in photos:
        action = f'/console/photos/pending/{p["report_id"]}'
        thumb = f'/console/photos/{p["sha"]}/thumb.jpg'
        sample = f' · {ft(lang, "sample")}' if p.get("sample") else ""
        link = href(station_photos_path(p["station_code"]), lang)
        kind = KIND_LABELS.get(p["kind"], (p["kind"], p["kind"]))[0 if lang == "zh" else 1]
        comment = (f' · {ft(lang, "comment")}: {escape(p["comment"])}' if p.get("comment")
                   else "")
        rows.append(
            f'<li class="card photo"><img src="{escape(thumb)}" width="160" '
            f'alt="{escape(ft(lang, "report"))} {p["report_id"]}">'
            f'<p>{ft(lang, "station")}: <a href="{escape(link)}">'
            f'{escape(p["station_name"])} ({escape(p["station_code"])})</a>{sample}</p>'
            f'<p>{ft(lang, "report")} {p["report_id"]} · {escape(kind)}{comment}</p>'
            f'<p>{ft(lang, "sent_at")}: {_when(p["created_at"], tz)}</p>'
            + _button(lang, csrf, f"{action}/approve", ft(lang, "approve"), plain=False)
            + _button(lang, csrf, f"{action}/reject", ft(lang, "reject")) + "</li>")
    body = (_GALLERY_STYLE + notes(message, error)
            + f'<section class="card"><p>{ft(lang, "pending_intro")}</p></section>'
            + ('<ul class="photos">' + "".join(rows) + "</ul>" if rows
               else f'<p>{ft(lang, "no_pending")}</p>'))
    return page(lang, ft(lang, "pending"), body, path="/console/photos/pending", who=who,
                csrf=csrf, admin=admin, editor=True)

