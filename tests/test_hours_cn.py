"""Chinese opening-hours forms → OSM (geo_service.hours.chinese): what converts, what is refused.

Every converted value must also be accepted by the OSM parser the station write uses
(``validate_hours``), so a conversion can never produce a value the import then refuses.
"""

from __future__ import annotations

import pytest

from geo_service.hours.chinese import EXAMPLES, HINT, ChineseHoursError, to_osm
from geo_service.hours.compiler import validate_hours

CONVERTED = [
    # the forms named in the brief
    ("周一至周五 9:00-17:00", "Mo-Fr 09:00-17:00"),
    ("全天24小时", "24/7"),
    ("24小时", "24/7"),
    ("全天", "24/7"),
    ("每天8:00-20:00", "Mo-Su 08:00-20:00"),
    ("周一到周六 8:30—18:00", "Mo-Sa 08:30-18:00"),
    ("工作日 9:00-17:00", "Mo-Fr 09:00-17:00"),
    ("周末 10:00-16:00", "Sa,Su 10:00-16:00"),
    ("双休日 10:00-16:00", "Sa,Su 10:00-16:00"),
    ("法定节假日休息", "PH off"),
    # dashes, colons and range words
    ("周一至周五 9：00－17：00", "Mo-Fr 09:00-17:00"),
    ("周一至周五 9:00–17:00", "Mo-Fr 09:00-17:00"),
    ("周一至周五 9:00~17:00", "Mo-Fr 09:00-17:00"),
    ("周一至周五 9:00～17:00", "Mo-Fr 09:00-17:00"),
    ("周一至周五 9:00至17:00", "Mo-Fr 09:00-17:00"),
    ("周一至周五 9:00到17:00", "Mo-Fr 09:00-17:00"),
    ("周一～周五 ９:００-１７:００", "Mo-Fr 09:00-17:00"),
    ("周一-周五 9:00-17:00", "Mo-Fr 09:00-17:00"),
    ("周一至五 9:00-17:00", "Mo-Fr 09:00-17:00"),
    ("周1-5 9:00-17:00", "Mo-Fr 09:00-17:00"),
    # 星期 / 礼拜 forms, Sunday as 日 or 天
    ("星期一至星期五 8:00-18:00", "Mo-Fr 08:00-18:00"),
    ("礼拜一到礼拜六 8:00-18:00", "Mo-Sa 08:00-18:00"),
    ("星期天休息", "Su off"),
    ("礼拜天 9:00-12:00", "Su 09:00-12:00"),
    ("周日 9:00-12:00", "Su 09:00-12:00"),
    # lists of days
    ("周一、周三、周五 9:00-17:00", "Mo,We,Fr 09:00-17:00"),
    ("周六日 9:00-12:00", "Sa,Su 09:00-12:00"),
    ("周六及周日 9:00-12:00", "Sa,Su 09:00-12:00"),
    ("周五至周一 9:00-17:00", "Mo,Fr-Su 09:00-17:00"),
    # several segments
    ("周一至周五 9:00-17:00；周六 9:00-12:00", "Mo-Fr 09:00-17:00; Sa 09:00-12:00"),
    ("周一至周五 9:00-17:00，周末休息", "Mo-Fr 09:00-17:00; Sa,Su off"),
    ("周一至周五 9:00-17:00; 法定节假日休息", "Mo-Fr 09:00-17:00; PH off"),
    ("每天8:00-20:00，法定节假日休息", "Mo-Su 08:00-20:00; PH off"),
    ("周一至周五 8:00-12:00，14:00-18:00", "Mo-Fr 08:00-12:00,14:00-18:00"),
    ("周一到周五8:00-12:00 14:00-18:00 周六8:00-12:00",
     "Mo-Fr 08:00-12:00,14:00-18:00; Sa 08:00-12:00"),
    ("周六、周日及法定节假日休息", "Sa,Su,PH off"),
    # labels and filler words
    ("开放时间：周一至周五 9:00-17:00", "Mo-Fr 09:00-17:00"),
    ("24小时开放", "24/7"),
    ("全天24小时营业", "24/7"),
    ("每天全天开放", "24/7"),
    ("周一至周日 全天", "24/7"),
    ("周一至周五全天", "Mo-Fr 00:00-24:00"),
    ("全年无休 7:00-22:00", "Mo-Su 07:00-22:00"),
    # clock words
    ("每天9点-17点", "Mo-Su 09:00-17:00"),
    ("每天8点半-17点半", "Mo-Su 08:30-17:30"),
    ("每天8点30分-17点", "Mo-Su 08:30-17:00"),
    # days written after the hours
    ("9:00-17:00（周一至周五）", "Mo-Fr 09:00-17:00"),
    # bare times with a dash OSM does not read
    ("8:30—18:00", "Mo-Su 08:30-18:00"),
    # past midnight
    ("每天18:00-次日2:00", "Mo-Su 18:00-02:00"),
    ("每天22:00-6:00", "Mo-Su 22:00-06:00"),
    ("每天0:00-24:00", "24/7"),
]

REFUSED = [
    ("上午9:00-12:00", "上午"),
    ("周一至周五 下午2:00-5:00", "下午"),
    ("看情况", "看情况"),
    ("夏季 8:00-20:00", "夏季"),
    ("节假日休息", "法定节假日"),
    ("周一至周五", "without hours"),
    ("休息", "without the days"),
    ("8:00-5:00", "ends before it starts"),
    ("每天9:00-9:00", "same time"),
    ("每天25:00-26:00", "not a time of day"),
    ("每天8:00-20:00 预约", "预约"),
    ("周一至周五 9:00-17:00 休息", "contradicts"),
    ("   ", "no opening hours"),
    ("每天次日2:00-8:00", "次日"),
]


@pytest.mark.parametrize(("given", "osm"), CONVERTED, ids=[c[0] for c in CONVERTED])
def test_converts_unambiguous_forms(given: str, osm: str) -> None:
    assert to_osm(given) == osm
    validate_hours(osm)  # the OSM parser takes every value the converter makes


@pytest.mark.parametrize(("given", "named"), REFUSED, ids=[r[0] for r in REFUSED])
def test_refuses_the_rest_with_a_hint(given: str, named: str) -> None:
    with pytest.raises(ChineseHoursError) as exc:
        to_osm(given)
    assert named in str(exc.value)
    assert HINT in str(exc.value)


@pytest.mark.parametrize(("given", "osm"), EXAMPLES)
def test_documented_examples_hold(given: str, osm: str) -> None:
    for form in given.split(" / "):
        assert to_osm(form) == osm
