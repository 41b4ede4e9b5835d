"""The fixed vocabularies: amenities (the "ten ones" and extras), host types, statuses.

These are plain data so analysis, maps and feeds can use them without a
database. The first migration wrote a frozen copy of :data:`AMENITIES` into the
amenity table in PostGIS (a test keeps the two equal: a new amenity needs a new
revision); each amenity owns a stable bit, so a station's amenities are
one integer mask that the nearest query can test inside its KNN walk
(``amenity_mask & :want = :want``) at the cost of one AND per row.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


@dataclass(frozen=True)
class Amenity:
    """One amenity with its stable code, bit and labels."""

    code: str
    bit: int
    label_zh: str
    label_en: str
    ten_ones: bool


#: The "ten ones" (十个一) standard first, in the order the Sanya article lists
#: them, then the extras seen in the source articles. Bits never change once
#: published: add new amenities with new bits, never renumber.
AMENITIES: tuple[Amenity, ...] = (
    Amenity("indoor_rest", 0, "室内休息场所", "Indoor rest space", True),
    Amenity("seating", 1, "座椅", "Seats", True),
    Amenity("microwave", 2, "微波炉", "Microwave", True),
    Amenity("water_dispenser", 3, "饮水机", "Water dispenser", True),
    Amenity("restroom", 4, "卫生间", "Restroom", True),
    Amenity("first_aid_kit", 5, "应急医药箱", "First-aid kit", True),
    Amenity("book_rack", 6, "书报架", "Book and newspaper rack", True),
    Amenity("phone_charging", 7, "手机充电站", "Phone charging", True),
    Amenity("refrigerator", 8, "电冰箱", "Refrigerator", True),
    Amenity("umbrella_stand", 9, "雨伞架", "Umbrella stand", True),
    Amenity("ebike_charging", 16, "电动车充电", "E-bike charging", False),
    Amenity("air_conditioning", 17, "空调", "Air conditioning", False),
    Amenity("heating", 18, "取暖", "Heating", False),
    Amenity("insect_repellent", 19, "驱蚊及消炎药品", "Insect repellent and medicines", False),
    Amenity("mothers_room", 20, "妈咪小屋", "Mothers' room", False),
    Amenity("childcare", 21, "爱心托管", "Childcare", False),
    Amenity("canteen", 22, "爱心食堂", "Canteen with subsidised meals", False),
    Amenity("legal_aid", 23, "法律援助", "Legal aid desk", False),
)

#: Everyday names of the amenities besides their catalogue names (label_zh), as ledgers
#: and the couriers' app word them ("手机充电" as well as "手机充电站"): read as a sheet's
#: column header (the ten ones) and in its 其他设施 cell. None of them names another
#: column (座位 is the seats column, so it is no alias of 座椅).
AMENITY_WORDS: dict[str, tuple[str, ...]] = {
    "indoor_rest": ("室内休息场所", "休息室", "休息场所", "室内休息区", "休息区"),
    "seating": ("座椅", "桌椅", "椅子", "休息座椅"),
    "microwave": ("微波炉", "加热设备"),
    "water_dispenser": ("饮水机", "饮水", "热水", "饮用水", "直饮水"),
    "restroom": ("卫生间", "厕所", "洗手间", "公厕"),
    "first_aid_kit": ("应急医药箱", "医药箱", "药箱", "急救箱", "应急药箱"),
    "book_rack": ("书报架", "书架", "报刊架", "图书角", "书报刊"),
    "phone_charging": ("手机充电站", "手机充电", "充电宝", "手机充电设施"),
    "refrigerator": ("电冰箱", "冰箱", "冰柜"),
    "umbrella_stand": ("雨伞架", "雨伞", "爱心雨伞", "伞架"),
    "ebike_charging": ("电动车充电", "电动车充电桩", "电瓶车充电"),
    "air_conditioning": ("空调",),
}

#: Each of the ten ones as a short badge for the courier app's cards (text, not emoji:
#: it reads the same on every phone font), Chinese and English: one character, two
#: letters. Served with the names by ``GET /v1/app/vocabulary`` so the app copies neither.
BADGES: dict[str, tuple[str, str]] = {
    "indoor_rest": ("室", "Rm"),
    "seating": ("座", "St"),
    "microwave": ("微", "Mw"),
    "water_dispenser": ("水", "Wa"),
    "restroom": ("厕", "WC"),
    "first_aid_kit": ("药", "FA"),
    "book_rack": ("书", "Bk"),
    "phone_charging": ("充", "Ch"),
    "refrigerator": ("冰", "Fr"),
    "umbrella_stand": ("伞", "Um"),
}

AMENITY_BY_CODE: dict[str, Amenity] = {a.code: a for a in AMENITIES}
TEN_ONES: tuple[Amenity, ...] = tuple(a for a in AMENITIES if a.ten_ones)
TEN_ONES_MASK: int = sum(1 << a.bit for a in TEN_ONES)


class HostType(StrEnum):
    """Who hosts the station; planners weigh these differently."""

    UNION_BUILT = "union_built"
    PARTY_SERVICE_CENTRE = "party_service_centre"
    SANITATION_DEPOT = "sanitation_depot"
    ENTERPRISE = "enterprise"
    BANK_BRANCH = "bank_branch"
    VOLUNTEER = "volunteer"
    MOBILE = "mobile"


class Status(StrEnum):
    """Lifecycle of a station record."""

    PLANNED = "planned"
    OPEN = "open"
    TEMPORARILY_CLOSED = "temporarily_closed"
    CLOSED = "closed"
    DUPLICATE = "duplicate"


#: The host types in Chinese, as union ledgers, maps and the import template name them.
HOST_TYPE_ZH: dict[HostType, str] = {
    HostType.UNION_BUILT: "工会自建",
    HostType.PARTY_SERVICE_CENTRE: "党群服务中心",
    HostType.SANITATION_DEPOT: "环卫作息点",
    HostType.ENTERPRISE: "企业",
    HostType.BANK_BRANCH: "银行网点",
    HostType.VOLUNTEER: "志愿服务点",
    HostType.MOBILE: "流动驿站",
}
#: The statuses in Chinese (the import template's 状态 column and the maps).
STATUS_ZH: dict[Status, str] = {
    Status.PLANNED: "筹建中",
    Status.OPEN: "开放",
    Status.TEMPORARILY_CLOSED: "暂停开放",
    Status.CLOSED: "已关闭",
    Status.DUPLICATE: "重复",
}

#: Statuses a courier may be shown by default: the station exists and serves
#: (a temporarily closed one is shown, marked closed, so nobody walks there).
OPERATIONAL: tuple[Status, ...] = (Status.OPEN, Status.TEMPORARILY_CLOSED)


class UnknownAmenityError(ValueError):
    """An amenity code that is not in the catalogue."""

    def __init__(self, code: str) -> None:
        super().__init__(f"unknown amenity code {code!r}")
        self.code = code


def amenity_mask(codes: Iterable[str]) -> int:
    """Fold amenity codes into the stored bit mask.

    >>> amenity_mask(["microwave", "restroom"])
    20
    """
    mask = 0
    for code in codes:
        amenity = AMENITY_BY_CODE.get(code)
        if amenity is None:
            raise UnknownAmenityError(code)
        mask |= 1 << amenity.bit
    return mask


def amenity_codes(mask: int) -> list[str]:
    """Unfold a bit mask into amenity codes, in catalogue order."""
    return [a.code for a in AMENITIES if mask >> a.bit & 1]


def ten_ones_missing(mask: int) -> list[str]:
    """Codes of the ten-ones items a station lacks."""
    return [a.code for a in TEN_ONES if not mask >> a.bit & 1]


def ten_ones_count(mask: int) -> int:
    """How many of the ten ones a station has."""
    return (mask & TEN_ONES_MASK).bit_count()
