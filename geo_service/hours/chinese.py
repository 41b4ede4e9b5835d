"""Opening hours as union staff write them in a spreadsheet, turned into OSM syntax.

A union office's ledger says ``周一至周五 9:00-17:00`` or ``全天24小时``, not
``Mo-Fr 09:00-17:00``; asking every office to learn OSM syntax means they will
not import at all. So the unambiguous Chinese forms are converted here, and
everything else is refused with a hint rather than guessed: ``上午`` (is 8 am
the start?), seasons (``夏季``: which months?), ``看情况``. This is the reverse
of :mod:`geo_service.hours.text`, which renders OSM as Chinese for readers.

What is understood (after NFKC, so full-width ``：``, ``～`` and digits are plain):

- days: ``周一``/``星期一``/``礼拜一`` (``日``/``天`` = Sunday), ranges with
  ``至``/``到``/``-``/``~`` (``周一至五`` too), lists (``周一、周三``,
  ``周六日``), ``每天``/``每日``/``全年无休`` (Mo-Su), ``工作日`` (Mo-Fr),
  ``周末``/``双休日`` (Sa,Su), ``法定节假日`` (PH);
- times: ``9:00``, ``9点``, ``9点半``, ``8点30分``; spans joined by any dash,
  ``~``, ``至`` or ``到``; ``次日2:00`` for a span past midnight;
- ``24小时``/``全天``/``全天24小时``/``全天候`` (the whole day), and
  ``休息``/``闭馆``/``不开放`` (closed on those days);
- several rules separated by ``；``, ``，``, ``;``, ``,``, ``、`` or spaces;
  labels such as ``开放时间：`` and words such as ``开放``/``营业`` are ignored.

The output is always valid OSM (tests check it against the parser) and is
validated again, like any value, when the station is written.

Example
-------
>>> to_osm("周一至周五 9:00-17:00；法定节假日休息")
'Mo-Fr 09:00-17:00; PH off'
>>> to_osm("全天24小时")
'24/7'
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

__all__ = ["EXAMPLES", "HINT", "ChineseHoursError", "to_osm"]

#: Accepted forms and what they become; shown in the template's README sheet and the README.
EXAMPLES: tuple[tuple[str, str], ...] = (
    ("周一至周五 9:00-17:00", "Mo-Fr 09:00-17:00"),
    ("每天8:00-20:00", "Mo-Su 08:00-20:00"),
    ("全天24小时 / 24小时 / 全天", "24/7"),
    ("周一到周六 8:30—18:00", "Mo-Sa 08:30-18:00"),
    ("工作日 9:00-12:00，14:00-18:00", "Mo-Fr 09:00-12:00,14:00-18:00"),
    ("周一至周五 9:00-17:00；周末休息", "Mo-Fr 09:00-17:00; Sa,Su off"),
    ("星期六、星期日 9点-12点", "Sa,Su 09:00-12:00"),
    ("每天8:00-20:00，法定节假日休息", "Mo-Su 08:00-20:00; PH off"),
    ("每天18:00-次日2:00", "Mo-Su 18:00-02:00"),
)
#: What a refusal suggests instead.
HINT = ("write e.g. 周一至周五 9:00-17:00；周末休息, 每天8:00-20:00, 24小时, "
        "or OSM syntax such as Mo-Fr 09:00-17:00; PH off")

_WEEKDAYS = ("Mo", "Tu", "We", "Th", "Fr", "Sa", "Su")
_DAY_CHARS = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6,
              "1": 0, "2": 1, "3": 2, "4": 3, "5": 4, "6": 5, "7": 6}
#: Words that make a value ambiguous, with why (the refusal names them).
_AMBIGUOUS = {
    "上午": "上午/下午 leave the clock unclear; use 24-hour times (14:00)",
    "下午": "上午/下午 leave the clock unclear; use 24-hour times (14:00)",
    "中午": "中午 is not a time; use 24-hour times",
    "晚上": "晚上 is not a time; use 24-hour times",
    "夏季": "seasons need month ranges; write them in OSM syntax (May-Sep Mo-Su 08:00-20:00)",
    "冬季": "seasons need month ranges; write them in OSM syntax (Nov-Mar Mo-Su 09:00-17:00)",
    "节假日": "say 法定节假日 for public holidays (节假日 alone may include weekends)",
}

# Dashes people type between times: hyphen-minus after NFKC, en/em dash, horizontal
# bar, minus sign, box-drawing line, wave dashes.
_DASHES = str.maketrans({c: "-" for c in "‐‑‒–—―−─〜〰"})
_SEP = r"(?:-|~|至|到)"
_PREFIX = r"(?:周|星期|礼拜)"
# A digit is a weekday only when no time follows it (周1-5, but not 周五1:00).
_DAY = r"(?:[一二三四五六日天]|[1-7](?![\d:点时]))"
_TIME = r"(\d{1,2})(?::(\d{2})|点(?:(半)|(\d{1,2})分?)?|时(?:(\d{1,2})分)?)"

_TOKENS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (kind, re.compile(pattern)) for kind, pattern in (
        ("space", r"[\s,;、/|()\[\]【】「」及和与]+"),
        ("full", r"(?:全天)?(?:24小时|二十四小时|24h|24/7)(?:全天)?|全天候|全天"),
        ("span", rf"(次日)?{_TIME}\s*{_SEP}\s*(次日)?{_TIME}"),
        ("days", rf"{_PREFIX}{_DAY}(?:\s*{_SEP}\s*{_PREFIX}?{_DAY}|[一二三四五六日天])*"),
        ("everyday", r"每天|每日|天天|全周|全年无休|全年"),
        ("workday", r"工作日"),
        ("weekend", r"周末|双休日|双休"),
        ("ph", r"(?:国家)?法定(?:节假日|假日|节日)"),
        ("off", r"不开放|停止开放|暂停开放|休息|闭馆|闭站|关闭|休"),
        ("filler", r"开放时间|营业时间|服务时间|时间|对外开放|开放|营业|服务|:"),
    ))


class ChineseHoursError(ValueError):
    """A value that is neither OSM syntax nor an unambiguous Chinese form.

    The message quotes the part not understood and ends with :data:`HINT`.
    """


@dataclass
class _Rule:
    days: set[int] = field(default_factory=set)
    ph: bool = False
    spans: list[str] = field(default_factory=list)
    state: str | None = None  # "full" or "off"

    @property
    def has_days(self) -> bool:
        return bool(self.days) or self.ph

    @property
    def has_hours(self) -> bool:
        return bool(self.spans) or self.state is not None


def _state_text(rule: _Rule) -> str:
    return "休息" if rule.state == "off" else "24小时"


def _refuse(problem: str) -> ChineseHoursError:
    return ChineseHoursError(f"{problem}; {HINT}")


def _clock(hour: str, minute: str | None, half: str | None, minute2: str | None,
           minute3: str | None, text: str) -> int:
    h = int(hour)
    m = 30 if half else int(minute or minute2 or minute3 or 0)
    if h > 24 or m > 59 or (h == 24 and m):
        raise _refuse(f"{text!r} is not a time of day")
    return h * 60 + m


def _span(match: re.Match[str]) -> str:
    g = match.groups()
    start = _clock(g[1], g[2], g[3], g[4], g[5], match.group(0))
    end = _clock(g[7], g[8], g[9], g[10], g[11], match.group(0))
    if g[0]:
        raise _refuse(f"{match.group(0)!r}: 次日 belongs to the closing time")
    if end == start:
        raise _refuse(f"{match.group(0)!r} opens and closes at the same time")
    # A span past midnight is plain when marked 次日 or when it starts in the evening
    # (22:00-6:00); 8:00-5:00 more likely means 17:00, so it is refused.
    if end < start and not g[6] and start < 12 * 60:
        raise _refuse(f"{match.group(0)!r} ends before it starts (write 17:00, not 5:00, "
                      "or 次日5:00 for a span past midnight)")
    if g[6] and end >= start:
        raise _refuse(f"{match.group(0)!r}: 次日 but the span does not pass midnight")
    return f"{start // 60:02d}:{start % 60:02d}-{end // 60:02d}:{end % 60:02d}"


def _days(text: str) -> set[int]:
    """``周一至周五`` / ``周一至五`` / ``周六日`` / ``周五至周一`` → weekday indexes."""
    chars = re.sub(_PREFIX, "", text)
    out: set[int] = set()
    parts = re.split(rf"\s*{_SEP}\s*", chars)
    for i, part in enumerate(parts):
        if i and part:  # a range from the last day of the previous part
            first, last = _DAY_CHARS[parts[i - 1][-1]], _DAY_CHARS[part[0]]
            day = first
            while day != last:
                out.add(day)
                day = (day + 1) % 7
            out.add(last)
        out.update(_DAY_CHARS[c] for c in part)
    return out


def _day_text(rule: _Rule) -> str:
    """Weekday indexes as OSM: runs of three or more as ranges (``Mo-Fr``), else a list."""
    runs: list[list[int]] = []
    for d in sorted(rule.days):
        if runs and runs[-1][-1] == d - 1:
            runs[-1].append(d)
        else:
            runs.append([d])
    parts: list[str] = []
    for run in runs:
        if len(run) >= 3:
            parts.append(f"{_WEEKDAYS[run[0]]}-{_WEEKDAYS[run[-1]]}")
        else:
            parts.extend(_WEEKDAYS[d] for d in run)
    return ",".join([*parts, *(["PH"] if rule.ph else [])])


def _tokens(text: str) -> list[tuple[str, re.Match[str]]]:
    out = []
    pos = 0
    while pos < len(text):
        for kind, pattern in _TOKENS:
            match = pattern.match(text, pos)
            if match and match.end() > pos:
                out.append((kind, match))
                pos = match.end()
                break
        else:
            rest = text[pos:]
            for word, why in _AMBIGUOUS.items():
                if rest.startswith(word):
                    raise _refuse(f"cannot convert {word!r}: {why}")
            unknown = re.match(r"[^\s,;、]+", rest)
            raise _refuse(f"cannot convert {(unknown.group(0) if unknown else rest)[:20]!r}")
    return out


def _rules(text: str) -> list[_Rule]:
    rules: list[_Rule] = [_Rule()]
    for kind, match in _tokens(text):
        if kind in ("space", "filler"):
            continue
        rule = rules[-1]
        if kind in ("days", "everyday", "workday", "weekend", "ph"):
            if rule.has_hours:  # days after hours start the next rule
                rule = _Rule()
                rules.append(rule)
            if kind == "days":
                rule.days |= _days(match.group(0))
            elif kind == "ph":
                rule.ph = True
            else:
                rule.days |= {"everyday": set(range(7)), "workday": set(range(5)),
                              "weekend": {5, 6}}[kind]
        elif kind == "span":
            if rule.state is not None:
                raise _refuse(f"{match.group(0)!r} after {_state_text(rule)}")
            rule.spans.append(_span(match))
        else:  # "full" or "off"
            state = "full" if kind == "full" else "off"
            if rule.spans or (rule.state is not None and rule.state != state):
                raise _refuse(f"{match.group(0)!r} contradicts the hours before it")
            rule.state = state
    # "9:00-17:00（周一至周五）": days written after the hours they qualify.
    merged: list[_Rule] = []
    for rule in rules:
        if merged and not rule.has_hours and rule.has_days and merged[-1].has_hours \
                and not merged[-1].has_days:
            merged[-1].days, merged[-1].ph = rule.days, rule.ph
        else:
            merged.append(rule)
    return merged


def to_osm(text: str) -> str:
    """An unambiguous Chinese opening-hours text as an OSM ``opening_hours`` value.

    Raises :class:`ChineseHoursError` naming the part that is not understood
    (or is ambiguous) with a hint showing an accepted form.

    >>> to_osm("周一到周六 8:30—18:00")
    'Mo-Sa 08:30-18:00'
    >>> to_osm("工作日 9:00-17:00，周末休息")
    'Mo-Fr 09:00-17:00; Sa,Su off'
    """
    norm = unicodedata.normalize("NFKC", text).translate(_DASHES).strip()
    if not norm:
        raise _refuse("no opening hours given")
    rules = [r for r in _rules(norm) if r.has_days or r.has_hours]
    if not rules:
        raise _refuse(f"{text!r} holds no days or times")
    out: list[str] = []
    for rule in rules:
        if not rule.has_hours:
            raise _refuse(f"{_day_text(rule)} without hours (add 9:00-17:00, 24小时 or 休息)")
        if rule.state == "off" and not rule.has_days:
            raise _refuse("休息 without the days it applies to (e.g. 周日休息)")
        days = _day_text(rule) if rule.has_days else "Mo-Su"
        if rule.state == "full":
            times = "00:00-24:00"
        elif rule.state == "off":
            times = "off"
        else:
            times = ",".join(rule.spans)
        out.append(f"{days} {times}")
    if out == ["Mo-Su 00:00-24:00"]:
        return "24/7"
    return "; ".join(out)
