"""What a station import's preview tells a clerk, in the clerk's words.

A clerk reads a problem as "第 7 行「开放时间」: …, 示例：…": the row as Excel shows it on
the left (title rows and the header counted), the column as the sheet names it, the
reason in Chinese beside the English one, and a hint of what to type. A preview lists
the rows to add, to update (each changed field old → new, how far a point moves),
unchanged, and the rows whose 所属区县 named a functional zone settled by the point. Its
fingerprint (the changes and the stored versions they were read from) binds a
confirmation to exactly what the clerk saw. Pure: rows in, dicts out, no database.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from geo_service.domain.catalogue import AMENITIES, HOST_TYPE_ZH, STATUS_ZH
from geo_service.domain.coords import Crs, gcj02_to_wgs84
from geo_service.domain.sheet import OTHER_HEADERS, SHEET_COLUMNS
from geo_service.hours.chinese import EXAMPLES

#: Functional zones (功能区) that people write where a district belongs: they are no
#: administrative district, so the district under the point is used (and named in the
#: preview). Matched on the whole cell: well-known names, and the suffixes such zones
#: carry (高新区, 经开区, 天府新区, 高新技术产业开发区, 中央商务区, 科技城 …).
FUNCTIONAL_ZONE = re.compile(
    r".*(高新区|高新技术产业开发区|高新技术开发区|经开区|经济技术开发区|经济开发区|开发区|新区"
    r"|科技城|科学城|生态区|商务区|自贸区|自由贸易试验区|保税区|综合保税区|产业园区?|工业园区?"
    r"|度假区|示范区|试验区|港区|空港|临空经济区)")

_TEN_HINT = "可填：是/否、有/无、√/×、1/0；留空为否"
_HOURS_HINT = "示例：" + "；".join(zh for zh, _ in EXAMPLES[:2]) if EXAMPLES else ""
#: Per column key: the reason in Chinese and a hint of what to type.
_EXPLAIN: dict[str, tuple[str, str]] = {
    "code": ("站点编码不符合要求（字母、数字和 - _ .，不能为空）", "示例：SY-0001"),
    "name": ("站点名称不符合要求", "示例：解放路环卫工人爱心驿站"),
    "district_ref": ("找不到这个区县，或与坐标所在区县不符",
                     "填区县名称（可省略“区/县”）或 6 位代码，例如 吉阳区；"
                     "高新区等功能区按坐标归入所在区县"),
    "lon": ("经度不是有效的小数度数，或不在中国境内", "示例：109.512（小数度，不要写度分秒）"),
    "lat": ("纬度不是有效的小数度数，或不在中国境内", "示例：18.252（小数度，不要写度分秒）"),
    "crs": ("无法识别的坐标系", "可填：WGS-84、GCJ-02（高德/腾讯）、BD-09（百度）"),
    "host_type": ("无法识别的建设类型", "可填：" + "、".join(HOST_TYPE_ZH.values())),
    "status": ("无法识别的状态", "可填：" + "、".join(STATUS_ZH.values())),
    "opening_hours": ("开放时间的写法无法识别", _HOURS_HINT or "示例：周一至周五 8:00-20:00"),
    "official_workdays": ("应填写“是”或“否”", "可填：是/否；留空按建设类型"),
    "sample": ("应填写“是”或“否”", _TEN_HINT),
    "phone": ("联系电话不符合要求", "示例：0898-12345678"),
    "extras": ("无法识别的设施名称",
               "可填：" + "、".join(a.label_zh for a in AMENITIES if not a.ten_ones)),
    "last_verified_on": ("日期无法识别", "示例：2024-05-01"),
    "opened_on": ("日期无法识别", "示例：2024-05-01"),
    "timezone": ("时区无法识别", "示例：Asia/Shanghai，或留空"),
    "street_code": ("街道代码不是该区县的街道", "填 9 位街道代码，或留空"),
    "district_code": ("区县代码与坐标所在位置不符", "检查经纬度与坐标系，或留空由坐标自动填写"),
    "city_code": ("城市代码与坐标所在位置不符", "检查经纬度与坐标系，或留空由坐标自动填写"),
    "province_code": ("省级代码与坐标所在位置不符", "检查经纬度与坐标系，或留空由坐标自动填写"),
    "address": ("详细地址不符合要求", "示例：三亚市吉阳区解放路1号"),
}
#: Problems whose reason does not depend on the column (checked first, by their English).
_BY_PROBLEM: tuple[tuple[re.Pattern[str], str, str], ...] = (
    (re.compile(r"outside the key's area"), "不在您的管理区域内",
     "只能导入您所辖区域及其下级区域内的站点"),
    (re.compile(r"(?i)field required"), "必填项为空", "新站点必须填写此列"),
    (re.compile(r"does not contain the point"), "与坐标所在的行政区不符",
     "检查经纬度与坐标系（高德坐标请选 GCJ-02），或改正区县"),
)
_SAME_CODE = re.compile(r"same code as row (\d+)")


def explain(key: str, problem: str, lines: Mapping[int, int | None]) -> tuple[str, str]:
    """A problem's reason in Chinese and a hint, by its column key (or its English)."""
    same = _SAME_CODE.search(problem)
    if same:
        first = lines.get(int(same.group(1))) or int(same.group(1))
        return f"与第 {first} 行的站点编码重复", "每个站点编码在表中只能出现一次"
    for pattern, reason, hint in _BY_PROBLEM:
        if pattern.search(problem):
            return reason, hint
    if key.startswith("yes:"):
        return "应填写“是”或“否”", _TEN_HINT
    return _EXPLAIN.get(key, ("此列的值不符合要求", "参照模板「说明」工作表填写"))


def annotate(report: dict[str, Any], rows: Sequence[Mapping[str, Any]],
             headers: Mapping[str, str]) -> None:
    """Give every problem its spreadsheet row (``sheet_row``, as Excel shows it), the
    column as the file names it (``column``: a derived field such as ``district_code``
    by the column it comes from), the reason in Chinese and a hint."""
    lines = {n: row.get("_line") for n, row in enumerate(rows, start=1)}
    keys = {header: key for key, header in headers.items()}
    for problem in report["errors"]:
        key = keys.get(problem["field"], problem["field"])
        problem["column"] = (problem["field"] if problem["field"] in keys
                             else column_label(key, headers))
        problem["sheet_row"] = lines.get(problem["row"])
        problem["reason_zh"], problem["hint"] = explain(key, problem["problem"], lines)


def column_label(key: str, headers: Mapping[str, str]) -> str:
    """A station column as the clerk's sheet (or the template) names it."""
    if key in headers:
        return headers[key]
    if key == "amenity_mask":
        return "设施"
    if key == "district":
        return headers.get("district_ref", "所属区县")
    if key in ("district", "district_code") and "district_ref" in headers:
        return headers["district_ref"] + ("" if key == "district" else "（代码）")
    for col in SHEET_COLUMNS:
        if col.key == key:
            return col.header
    names = OTHER_HEADERS.get(key)
    return names[0] if names else key


def _amenity_text(mask: Any) -> str:
    if not isinstance(mask, int):
        return "" if mask is None else str(mask)
    return "、".join(a.label_zh for a in AMENITIES if mask >> a.bit & 1) or "（无）"


def _value(key: str, value: Any) -> Any:
    if key == "amenity_mask":
        return _amenity_text(value)
    if key == "host_type":
        return HOST_TYPE_ZH.get(value, value)
    if key == "status":
        return STATUS_ZH.get(value, value)
    return value


def _metres(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Great-circle metres (a hint's threshold, not an answer's distance)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    h = (math.sin((p2 - p1) / 2) ** 2
         + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2)
    return 2 * 6_371_008.8 * math.asin(math.sqrt(h))


def crs_hint(moves: Sequence[tuple[float, float, float, float, Crs]]) -> dict[str, Any] | None:
    """"Did you mean GCJ-02?" for a file read as WGS-84 whose moved points (given lon/lat,
    stored lon/lat) would land on the stored ones had they been read as GCJ-02.

    GCJ-02 is WGS-84 shifted by ~300–700 m in one direction (in the east of China); a
    clerk who copied points from Amap and left 坐标系 at WGS-84 moves every station by
    that shift. At least two moved rows, and four in five of them, must fit.
    """
    read_as_wgs = [(lon, lat, slon, slat) for lon, lat, slon, slat, crs in moves
                   if crs is Crs.WGS84]
    if len(read_as_wgs) < 2:
        return None
    fits = 0
    for lon, lat, slon, slat in read_as_wgs:
        glon, glat = gcj02_to_wgs84(lon, lat)
        if _metres(glon, glat, slon, slat) < 30 < _metres(lon, lat, slon, slat):
            fits += 1
    if fits < 2 or fits * 5 < len(read_as_wgs) * 4:
        return None
    return {"suggest": "gcj02", "rows": fits, "moved_rows": len(read_as_wgs),
            "message_zh": f"{fits} 个站点的位置整体偏移约 300–700 米，方向一致：是否应选择 GCJ-02 "
                          "坐标系？（从高德、腾讯地图拾取的坐标是 GCJ-02）",
            "message": f"{fits} stations move by about 300-700 m in the same direction: "
                       "did you mean GCJ-02? (Amap and Tencent give GCJ-02 coordinates)"}


def build_preview(diff: Sequence[Mapping[str, Any]], refused: set[int],
                  lines: Mapping[int, int | None], headers: Mapping[str, str],
                  crs_of_row: Mapping[int, Crs], given: Mapping[int, tuple[float, float]],
                  ) -> dict[str, Any]:
    """The rows to add, update (field by field, old → new) and leave unchanged, the
    GCJ-02 hint, and the fingerprint a confirmation must match."""
    add: list[dict[str, Any]] = []
    update: list[dict[str, Any]] = []
    unchanged: list[dict[str, Any]] = []
    moves: list[tuple[float, float, float, float, Crs]] = []
    signed: list[Any] = []
    for d in diff:
        n = d["rownum"]
        moved = None if d["moved_m"] is None else round(float(d["moved_m"]), 1)
        if moved is not None and n in given:  # refused rows too: a shift may be why
            moves.append((*given[n], float(d["old_lon"]), float(d["old_lat"]),
                          crs_of_row.get(n, Crs.WGS84)))
        if n in refused:
            continue
        base = {"row": n, "sheet_row": lines.get(n), "code": d["code"], "name": d["name"]}
        if d["new"]:
            add.append({**base, "district": d["district"]})
            signed.append([d["code"], None])
            continue
        changes = [{"field": k, "column": column_label(k, headers),
                    "old": _value(k, v[0]), "new": _value(k, v[1])}
                   for k, v in sorted(d["changes"].items())]
        for c in changes:  # Chinese hours as the clerk typed them, with what they mean
            if c["field"] == "opening_hours" and d.get("hours_text"):
                c["new"] = f"{d['hours_text']}（{c['new']}）"
        signed.append([d["code"], d["version"], sorted(d["changes"].items()), moved])
        if not changes and moved is None:
            unchanged.append(base)
            continue
        update.append({**base, "version": d["version"], "changes": changes, "moved_m": moved})
    fingerprint = hashlib.sha256(json.dumps(signed, sort_keys=True, default=str,
                                            ensure_ascii=False).encode()).hexdigest()
    return {"add": add, "update": update, "unchanged": unchanged,
            "crs_hint": crs_hint(moves), "fingerprint": fingerprint}
