"""A station's fields as people read them on the console: names, values, audit changes.

The station page lists every field with these names, and the history says what an
edit changed in the same words (``amenity_mask`` as the amenities added and removed,
statuses and host types in Chinese), so a clerk reads one vocabulary on both.
Everything returned here is HTML-escaped.
"""

from __future__ import annotations

import datetime as dt
from html import escape
from typing import Any

from geo_service.domain.catalogue import AMENITIES, HOST_TYPE_ZH, STATUS_ZH, HostType, Status

#: The fields the page lists, in order (``lon``/``lat`` are shown as two coordinate rows).
FIELDS = ("code", "name", "name_en", "status", "host_type", "address", "district",
          "street", "lon", "lat", "province", "province_code", "city", "city_code",
          "district_code", "street_code", "phone", "opening_hours", "timezone",
          "official_workdays", "floor_area_m2", "seats", "opened_on", "last_verified_on",
          "last_confirmed_at", "reported_closed_at", "awards", "sample", "version",
          "created_at", "updated_at", "deleted_at")

_LABELS: dict[str, tuple[str, str]] = {
    "code": ("编号", "Code"), "name": ("名称", "Name"), "name_en": ("英文名称", "English name"),
    "status": ("状态", "Status"), "host_type": ("承办类型", "Host type"),
    "address": ("地址", "Address"), "district": ("所属区县", "District"),
    "street": ("所属街道（乡镇）", "Street or town"),
    "lon": ("经度（WGS-84）", "Longitude (WGS-84)"), "lat": ("纬度（WGS-84）", "Latitude (WGS-84)"),
    "wgs84": ("坐标 WGS-84（GPS）", "Point, WGS-84 (GPS)"),
    "gcj02": ("坐标 GCJ-02（高德、腾讯）", "Point, GCJ-02 (Amap, Tencent)"),
    "province": ("省", "Province"), "province_code": ("省代码", "Province code"),
    "city": ("市", "City"), "city_code": ("市代码", "City code"),
    "district_code": ("区县代码", "District code"), "street_code": ("街道代码", "Street code"),
    "phone": ("电话", "Phone"), "opening_hours": ("开放时间", "Opening hours"),
    "timezone": ("时区", "Time zone"),
    "official_workdays": ("按国家法定工作日安排", "Follows official working days"),
    "floor_area_m2": ("面积（平方米）", "Floor area (m²)"), "seats": ("座位数", "Seats"),
    "opened_on": ("启用日期", "Opened on"),
    "last_verified_on": ("最近核实日期", "Last verified on"),
    "last_confirmed_at": ("最近有人确认开放", "Last confirmed open"),
    "reported_closed_at": ("有人报告关闭", "Reported closed"),
    "awards": ("荣誉", "Awards"), "sample": ("示例数据", "Sample data"),
    "version": ("版本", "Version"), "created_at": ("创建时间", "Created"),
    "updated_at": ("更新时间", "Updated"), "deleted_at": ("删除时间", "Deleted"),
    "amenity_mask": ("服务设施", "Amenities"), "deleted": ("已删除", "Deleted"),
}
_STATUS_EN = {"planned": "planned", "open": "open", "temporarily_closed": "temporarily closed",
              "closed": "closed", "duplicate": "duplicate"}
_ACTIONS: dict[str, tuple[str, str]] = {
    "station.create": ("新建驿站", "Station created"),
    "station.update": ("修改", "Changed"),
    "station.delete": ("删除驿站", "Station deleted"),
    "inspection.insert": ("记录巡查", "Inspection recorded"),
    "station_award.insert": ("添加荣誉", "Award added"),
    "station_award.delete": ("删除荣誉", "Award removed"),
    "report_resolution.insert": ("处理工人报告", "Worker report decided"),
}
#: Longest value the history shows of one field (hours can be long).
_SHOWN = 120


def label(lang: str, key: str) -> str:
    """A field's name in ``lang`` (the key itself for a column the page does not name)."""
    found = _LABELS.get(key)
    return escape(key if found is None else found[0 if lang == "zh" else 1])


def _date(value: Any, tz: dt.tzinfo) -> str:
    """A moment on the clerk's clock (``tz``); the audit trail's JSON holds it as text."""
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            return str(value)
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return f"{value.astimezone(tz):%Y-%m-%d %H:%M}"
    return str(value)


def value_label(lang: str, key: str, value: Any, tz: dt.tzinfo = dt.UTC) -> str:
    """A field's value as a person reads it (escaped), moments in ``tz``; "—" for none."""
    if value is None or value == "" or value == []:
        return "—"
    if key == "status" and value in _STATUS_EN:
        return escape(STATUS_ZH[Status(value)] if lang == "zh" else _STATUS_EN[value])
    if key == "host_type" and value in {h.value for h in HostType}:
        return escape(HOST_TYPE_ZH[HostType(value)] if lang == "zh" else value)
    if isinstance(value, bool):
        return ("是" if value else "否") if lang == "zh" else ("yes" if value else "no")
    if key == "awards":
        return "；".join(escape(f'{a["year"]} {a["title"]}（{a["level"]}）') for a in value)
    if key in ("created_at", "updated_at", "deleted_at", "last_confirmed_at",
               "reported_closed_at"):
        return escape(_date(value, tz))
    text = str(value)
    return escape(text if len(text) <= _SHOWN else text[:_SHOWN] + "…")


def _amenities(lang: str, old: Any, new: Any) -> str:
    """An amenity-mask change as the amenities added (+) and removed (−)."""
    before, after = int(old or 0), int(new or 0)
    names = {a.bit: a.label_zh if lang == "zh" else a.label_en for a in AMENITIES}
    added = [n for bit, n in names.items() if after >> bit & 1 and not before >> bit & 1]
    gone = [n for bit, n in names.items() if before >> bit & 1 and not after >> bit & 1]
    return escape(" ".join([*("+" + n for n in added), *("−" + n for n in gone)]) or "—")


def describe(lang: str, action: str, changes: dict[str, Any], tz: dt.tzinfo) -> str:
    """What one audit entry did: its action, and for an edit each field old → new."""
    head = _ACTIONS.get(action)
    text = escape(action if head is None else head[0 if lang == "zh" else 1])
    if action not in ("station.update", "station.delete"):
        return text
    items = []
    for key in sorted(changes, key=lambda k: (k not in FIELDS, FIELDS.index(k)
                                              if k in FIELDS else 0, k)):
        if key in ("version", "updated_at", "change_seq"):
            continue  # bookkeeping: every edit moves them
        old, new = changes[key]
        if key == "amenity_mask":
            shown = _amenities(lang, old, new)
        else:
            shown = f"{value_label(lang, key, old, tz)} → {value_label(lang, key, new, tz)}"
        items.append(f"<li>{label(lang, key)}{'：' if lang == 'zh' else ': '}{shown}</li>")
    return text + (f'<ul class="notes">{"".join(items)}</ul>' if items else "")
