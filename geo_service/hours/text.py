"""Opening hours as plain Chinese for people reading an export or a page.

Platform spreadsheets (Amap, Tencent, Baidu) show ``营业时间`` to couriers as
text, and ``Mo-Fr 08:00-18:00`` reads worse than ``周一至周五 08:00-18:00``.
Every value the API accepts must still come out as *something*: an imported
station with ``closed`` hours once made every export raise, for every user. So
the rule here is "translate what is plain, pass the rest through": each ``;``
rule is weekdays (and PH/SH), time spans (clock times, sunrise/sunset, an
open end ``10:00+``, ``24/7``), a state and a comment; an expression with
anything else (months, dates, weeks, years, ``||`` fallbacks, offsets such as
``(sunrise+01:00)``) is returned unchanged, since its OSM text says it best.
Nothing here raises for a string.

Example
-------
>>> hours_zh("Mo-Fr 08:00-18:00; Sa,Su 09:00-17:00")
'周一至周五 08:00-18:00；周六、周日 09:00-17:00'
>>> hours_zh("closed")
'不开放'
>>> hours_zh("Jan 1 closed; Mo-Fr 08:00-18:00")
'Jan 1 closed; Mo-Fr 08:00-18:00'
"""

from __future__ import annotations

import functools
import re

__all__ = ["HOURS_UNKNOWN_EN", "HOURS_UNKNOWN_ZH", "hours_label", "hours_zh"]

#: What a person reads where a station has no hours on record (``opening_hours`` null).
HOURS_UNKNOWN_ZH = "营业时间未知"
HOURS_UNKNOWN_EN = "hours unknown"

#: The OSM day names in Chinese, the word between the ends of a range (``Mo-Fr`` →
#: 周一至周五) and the word for "off"; the courier app gets them from
#: ``GET /v1/app/vocabulary`` for the hours it words on the phone.
DAYS_ZH = {"Mo": "周一", "Tu": "周二", "We": "周三", "Th": "周四", "Fr": "周五",
           "Sa": "周六", "Su": "周日", "PH": "法定节假日", "SH": "学校假期"}
TO_ZH = "至"
OFF_ZH = "休息"
_SUN_ZH = {"sunrise": "日出", "sunset": "日落", "dawn": "黎明", "dusk": "黄昏"}

_DAY = r"(?:Mo|Tu|We|Th|Fr|Sa|Su|PH|SH)"
_POINT = r"(?:\d\d:\d\d|sunrise|sunset|dawn|dusk)"
_SPAN = rf"{_POINT}(?:-{_POINT}|\+)"
_RULE = re.compile(
    rf"(?:(?P<days>{_DAY}(?:-{_DAY})?(?:,{_DAY}(?:-{_DAY})?)*)(?:\s+|$))?"
    rf"(?:(?P<spans>24/7|{_SPAN}(?:,{_SPAN})*)(?:\s+|$))?"
    rf"(?:(?P<state>open|closed|off|unknown)(?:\s+|$))?"
    r'(?:"(?P<comment>[^"]*)")?',
    re.ASCII,
)


def _days_zh(days: str | None) -> str | None:
    """``Mo-Fr,Su`` → ``周一至周五、周日``; None when a range is not a weekday range."""
    if days is None or days == "Mo-Su":
        return "每天"
    parts = []
    for piece in days.split(","):
        first, _, last = piece.partition("-")
        if last and (first not in DAYS_ZH or last not in DAYS_ZH or "H" in first + last):
            return None  # "PH-SH" and the like: not a range anyone writes
        parts.append(f"{DAYS_ZH[first]}{TO_ZH}{DAYS_ZH[last]}" if last else DAYS_ZH[first])
    return "、".join(parts)


def _point_zh(point: str) -> str:
    return _SUN_ZH.get(point, point)


def _span_zh(span: str) -> str:
    """``22:00-06:00`` → ``22:00-次日06:00``; ``10:00+`` → ``10:00起``; sun events named."""
    if span.endswith("+"):
        return f"{_point_zh(span[:-1])}起"
    start, _, end = span.partition("-")
    if (start, end) == ("00:00", "24:00"):
        return "24小时"
    if start in _SUN_ZH or end in _SUN_ZH:
        return f"{_point_zh(start)}-{_point_zh(end)}"
    hours, minutes = int(end[:2]), end[3:]
    if hours > 24 or (hours == 24 and minutes != "00"):
        return f"{start}-次日{hours - 24:02d}:{minutes}"
    return f"{start}-次日{end}" if end <= start else f"{start}-{end}"


def _rule_zh(rule: str) -> str | None:
    """One ``;`` rule in Chinese, or None when it holds more than weekdays and times."""
    m = _RULE.fullmatch(rule)
    if m is None or not rule:
        return None
    days = _days_zh(m["days"])
    if days is None:
        return None
    spans, state, comment = m["spans"], m["state"], m["comment"]
    times = None if spans in (None, "24/7") else "、".join(_span_zh(s) for s in spans.split(","))
    if state in ("closed", "off") and times:
        text = f"{days} {times}{OFF_ZH}"
    elif state in ("closed", "off"):
        text = "不开放" if m["days"] is None else f"{days}{OFF_ZH}"
    elif state == "unknown":
        head = [days, times] if times else [days] if m["days"] else []
        text = " ".join([*head, "营业时间不确定"])
    elif times is None:
        # "Mo-Fr" alone (or "24/7", or a comment alone) is open all day on those days.
        text = "24小时营业" if m["days"] is None else f"{days} 24小时"
    else:
        text = f"{days} {times}"
    if comment is not None:
        text += f"（{comment}）" if comment.strip() else ""
    return text


@functools.lru_cache(maxsize=2048)
def hours_zh(expr: str | None) -> str | None:
    """A readable Chinese form of plain weekday/time rules; any other rule is returned as is.

    >>> hours_zh("Mo-Su 18:00-02:00")
    '每天 18:00-次日02:00'
    >>> hours_zh("Mo-Sa 08:00-20:00; Su off")
    '周一至周六 08:00-20:00；周日休息'
    >>> hours_zh("Mo-Fr 08:00-18:00 || \\"预约\\"")
    'Mo-Fr 08:00-18:00 || "预约"'
    """
    if expr is None or not expr.strip():
        return None
    if "||" in expr:
        return expr  # a fallback rule reads only in its own syntax
    parts = []
    for rule in expr.split(";"):
        text = _rule_zh(rule.strip())
        if text is None:
            return expr  # months, dates, weeks, offsets ...: the OSM text says it best
        parts.append(text)
    return "；".join(parts)


def hours_label(expr: str | None, *, english: bool = False) -> str:
    """What a page or a spreadsheet shows for a station's hours: never empty.

    A station with no hours on record reads "营业时间未知" (or "hours unknown" where
    the output is English) rather than an empty cell a courier could take for "always
    open"; any rule reads as :func:`hours_zh` gives it.

    >>> hours_label(None), hours_label(None, english=True)
    ('营业时间未知', 'hours unknown')
    >>> hours_label("Mo-Fr 08:00-18:00")
    '周一至周五 08:00-18:00'
    """
    text = hours_zh(expr)
    if text is None:
        return HOURS_UNKNOWN_EN if english else HOURS_UNKNOWN_ZH
    return text
