"""The operations commands print what the API answers for the same query, and refuse alike.

Each ``--json`` output is compared with the API's body for the same parameters:
both come from one service function, so they must be equal, byte for byte in
meaning. Writes (``stops set``, ``inspections record``, ``reports resolve``)
act as the key-less admin ``cli``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from geo_service.domain.catalogue import TEN_ONES
from geo_service.infra.settings import Settings
from geo_service.operations.cli import add_commands
from geo_service.operations.inspections import china_today
from tests.conftest import station_body

TIANYA = {"district_code": "460204", "district": "天涯区", "city_code": "460200",
          "province_code": "460000"}
JIYANG = {"district_code": "460203", "district": "吉阳区", "city_code": "460200",
          "province_code": "460000"}
AT = "2026-12-02T11:00:00+08:00"


@pytest.fixture
def cli(settings: Settings, capsys: pytest.CaptureFixture[str]) -> Any:
    """``cli(*argv)`` → (exit code, stdout, stderr), through a parser holding only our commands."""
    parser = argparse.ArgumentParser(prog="geo-service")
    add_commands(parser.add_subparsers(dest="cmd", required=True))

    def run(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        args = parser.parse_args(argv)
        code = args.func(args, settings)
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


def api_json(client: TestClient, path: str, auth: str | None = None, **params: Any) -> Any:
    headers = {"Authorization": auth} if auth else None
    params = {k.rstrip("_"): v for k, v in params.items()}  # from_ → from
    r = client.get(path, params=params, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def cli_json(cli: Any, *argv: str) -> Any:
    code, out, err = cli(*argv, "--json")
    assert code == 0, err
    return json.loads(out)


def stops(*hours: str) -> dict[str, Any]:
    return {"stops": [{"name": f"停靠点{i}", "lon": 109.50 + i / 100, "lat": 18.26,
                       "opening_hours": h} for i, h in enumerate(hours)]}


def test_stops_show_and_set(cli: Any, client: TestClient, keys: dict[str, str],
                            db: psycopg.Connection[Any], tmp_path: Path) -> None:
    r = client.post("/v1/stations", headers={"Authorization": keys["editor"]},
                    json=station_body("BUS-1", 109.5, 18.25, host_type="mobile", **TIANYA))
    assert r.status_code == 201, r.text
    good = tmp_path / "good.json"
    good.write_text(json.dumps(stops("Mo-Su 10:00-16:00", "Mo-Fr 16:00-20:00")))
    code, out, err = cli("stops", "set", "BUS-1", str(good))  # version taken automatically
    assert code == 0, err
    assert "version 2" in out and "停靠点1" in out

    shown = cli_json(cli, "stops", "show", "BUS-1", "--at", AT)
    assert shown == api_json(client, "/v1/stations/BUS-1/stops", at=AT)
    assert shown["current_stop"]["seq"] == 1
    code, out, _ = cli("stops", "show", "BUS-1", "--at", "2026-12-02T17:00")  # local time
    assert code == 0 and "at stop 2 停靠点1" in out
    assert [ln.split()[1] for ln in out.splitlines() if ln.startswith("*")] == ["2"]

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(stops("Mo-Su 10:00-16:00", "Mo-Fr 15:00-20:00")))
    before = db.execute("SELECT seq, opening_hours FROM station_stop ORDER BY seq").fetchall()
    code, out, err = cli("stops", "set", "BUS-1", str(bad))
    assert code == 2 and out == ""
    assert err.startswith("error: stops[1].opening_hours: overlaps stop 0")
    assert db.execute("SELECT seq, opening_hours FROM station_stop ORDER BY seq").fetchall() \
        == before
    assert db.execute("SELECT version FROM station").fetchone() == (2,)

    code, _, err = cli("stops", "set", "BUS-1", str(good), "--version", "1")
    assert code == 2 and "version" in err
    code, _, err = cli("stops", "show", "NOPE")
    assert code == 2 and "code: unknown station code" in err
    code, _, err = cli("stops", "show", "a b")
    assert code == 2 and err.startswith("error: CODE: String should match pattern")
    bad.write_text('{"stops": [{"name": "x"}]}')
    code, _, err = cli("stops", "set", "BUS-1", str(bad))
    assert code == 2 and "error: stops.0.lon: Field required" in err


def items(**states: str) -> dict[str, str]:
    return {a.code: states.get(a.code, "present") for a in TEN_ONES}


def test_inspection_commands_match_the_api(cli: Any, client: TestClient, keys: dict[str, str],
                                           db: psycopg.Connection[Any],
                                           tmp_path: Path) -> None:
    admin = {"Authorization": keys["admin"]}
    for code, lon, area in (("T-1", 109.45, TIANYA), ("T-2", 109.46, TIANYA),
                            ("T-3", 109.47, TIANYA), ("J-1", 109.55, JIYANG)):
        r = client.post("/v1/stations", headers=admin, json=station_body(code, lon, 18.28,
                                                                          **area))
        assert r.status_code == 201, r.text
    today = china_today()
    for code, days, states in (("T-1", 400, items(microwave="missing")),
                               ("T-1", 200, items(restroom="broken")),
                               ("J-1", 10, items(microwave="missing", book_rack="missing"))):
        r = client.post(f"/v1/stations/{code}/inspections", headers=admin, json={
            "inspected_on": (today - dt.timedelta(days=days)).isoformat(), "items": states})
        assert r.status_code == 201, r.text
    # Recorded through the CLI: the admin "cli", no key.
    body = tmp_path / "inspection.json"
    body.write_text(json.dumps({"inspected_on": (today - dt.timedelta(days=3)).isoformat(),
                                "items": items(refrigerator="missing"), "score": 80}))
    code, out, err = cli("inspections", "record", "T-2", str(body))
    assert code == 0, err
    assert "9/10 present; applied, station version 2" in out
    assert db.execute("SELECT inspector, inspector_key_id FROM inspection "
                      "WHERE score = 80").fetchall() == [("cli", None)]

    overdue = cli_json(cli, "inspections", "overdue", "--area", "460204", "--days", "100",
                       "--limit", "1")
    assert overdue == api_json(client, "/v1/inspections/overdue", area="460204", days=100,
                               limit=1)
    assert (overdue["total"], overdue["stations"][0]["code"]) == (2, "T-3")  # never, then T-1
    code, out, _ = cli("inspections", "overdue", "--area", "460204", "--days", "100")
    assert code == 0 and "2 published stations" in out and "never" in out

    for period in ("month", "year"):
        assert cli_json(cli, "inspections", "trend", "--period", period) \
            == api_json(client, "/v1/inspections/trend", period=period)
    since = (today - dt.timedelta(days=300)).isoformat()
    trend = cli_json(cli, "inspections", "trend", "--area", "460204", "--from", since)
    assert trend == api_json(client, "/v1/inspections/trend", area="460204", from_=since)
    assert sum(r["inspections"] for r in trend["rows"]) == 2

    missing = cli_json(cli, "inspections", "missing-items", "--days", "30")
    assert missing == api_json(client, "/v1/inspections/missing-items", days=30)
    assert missing["stations"] == 2 and missing["items"][0] == {
        "code": "microwave", "label_zh": missing["items"][0]["label_zh"],
        "label_en": missing["items"][0]["label_en"], "missing": 1, "broken": 0, "total": 1}

    for argv, field in ((("overdue", "--days", "0"), "--days"),
                        (("trend", "--period", "week"), "--period"),
                        (("trend", "--from", "2025-02-30"), "--from"),
                        (("trend", "--from", "2025-06-01", "--to", "2025-01-01"), "to"),
                        (("missing-items", "--area", "999999"), "area")):
        code, out, err = cli("inspections", *argv)
        assert code == 2 and out == "" and f"{field}: " in err, (argv, err)


def test_visit_counts_match_the_api(cli: Any, client: TestClient, areas: psycopg.Connection[Any],
                                    tmp_path: Path) -> None:
    from tests.helpers import insert_stations

    insert_stations(areas, [station_body("A", 109.45, 18.28, name="天涯驿站", **TIANYA),
                            station_body("B", 109.55, 18.27, **JIYANG)])
    areas.execute("""
        INSERT INTO visit (station_id, worker_type, at)
        SELECT s.id, t, now() - make_interval(days => d)
        FROM station s, unnest(ARRAY['courier', 'sanitation', NULL]) t, generate_series(0, 9) d
        WHERE s.code = 'A' OR d < 3""")
    for group in ("station", "district", "worker_type", "day", "week", "month"):
        got = cli_json(cli, "visits", "counts", "--group", group)
        assert got == api_json(client, "/v1/visits/counts", group=group)
        assert got["total"] == 30 + 9
    since = (china_today() - dt.timedelta(days=1)).isoformat()
    got = cli_json(cli, "visits", "counts", "--area", "460204", "--from", since)
    assert got == api_json(client, "/v1/visits/counts", area="460204", from_=since)
    assert got["rows"] == [{"key": "A", "label": "天涯驿站", "count": 6}]

    out_csv = tmp_path / "counts.csv"
    code, out, _ = cli("visits", "counts", "--group", "worker_type", "--csv", str(out_csv))
    assert code == 0 and out.rstrip().endswith("total: 39")
    assert "快递员 / Courier" in out and "not given" in out
    lines = out_csv.read_bytes().decode("utf-8-sig").splitlines()
    assert lines[0] == "worker_type,label,count" and len(lines) == 4
    for argv, field in ((("--group", "year"), "--group"), (("--station", "NOPE"), "station"),
                        (("--from", "2020-01-01"), "to")):
        code, _, err = cli("visits", "counts", *argv)
        assert code == 2 and f"{field}: " in err, (argv, err)


def test_reports_list_and_resolve(cli: Any, client: TestClient, keys: dict[str, str],
                                  areas: psycopg.Connection[Any]) -> None:
    from tests.helpers import insert_stations

    insert_stations(areas, [station_body("T1", 109.45, 18.28, **TIANYA),
                            station_body("J1", 109.55, 18.27, **JIYANG)])
    ids = []
    for code, body in (("T1", {"kind": "closed"}), ("J1", {"kind": "moved", "comment": "=1+1"}),
                       ("T1", {"kind": "amenity_missing", "amenity": "microwave"})):
        r = client.post(f"/v1/stations/{code}/reports", json=body)
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    admin = keys["admin"]
    listed = cli_json(cli, "reports", "list")
    assert listed == api_json(client, "/v1/reports", admin)
    assert [r["id"] for r in listed["items"]] == ids
    assert cli_json(cli, "reports", "list", "--area", "460204", "--kind", "closed") \
        == api_json(client, "/v1/reports", admin, area="460204", kind="closed")

    code, out, err = cli("reports", "resolve", str(ids[0]), "--action", "rejected",
                         "--note", "站点正常开放")
    assert code == 0, err
    assert f"report {ids[0]} (closed at T1) is now rejected, version 2" in out
    detail = api_json(client, f"/v1/reports/{ids[0]}", admin)
    assert detail["status"] == "rejected"
    assert [(x["action"], x["editor"], x["note"]) for x in detail["resolutions"]] \
        == [("rejected", "cli", "站点正常开放")]
    assert areas.execute("SELECT editor_key_id FROM report_resolution").fetchall() == [(None,)]
    assert cli_json(cli, "reports", "list", "--status", "rejected")["count"] == 1

    for argv, field in (((str(ids[0]), "--action", "resolved"), "action"),  # rejected → reopen
                        (("999", "--action", "resolved"), "id"),
                        (("0", "--action", "resolved"), "ID"),
                        ((str(ids[1]), "--action", "done"), "action"),
                        ((str(ids[1]), "--action", "resolved", "--version", "5"), "version")):
        code, out, err = cli("reports", "resolve", *argv)
        assert code == 2 and out == "" and f"{field}: " in err, (argv, err)
    assert areas.execute("SELECT count(*) FROM report_resolution").fetchone() == (1,)
    code, _, err = cli("reports", "list", "--status", "closed")
    assert code == 2 and "--status: " in err


# --------------------------------------------------------------------------- one set of rules


def api_field(client: TestClient, path: str, auth: str | None = None,
              **params: Any) -> tuple[int, str]:
    """(status, first field named) of a refused API request."""
    headers = {"Authorization": auth} if auth else None
    r = client.get(path, params={k.rstrip("_"): v for k, v in params.items()}, headers=headers)
    assert r.status_code >= 400, r.text
    return r.status_code, r.json()["error"]["fields"][0]["field"]


@pytest.mark.parametrize(("path", "params", "argv", "field", "option"), [
    ("/v1/inspections/overdue", {"days": 0}, ("inspections", "overdue", "--days", "0"),
     "days", "--days"),
    ("/v1/inspections/overdue", {"limit": 1001},
     ("inspections", "overdue", "--limit", "1001"), "limit", "--limit"),
    ("/v1/inspections/trend", {"period": "week"}, ("inspections", "trend", "--period", "week"),
     "period", "--period"),
    ("/v1/inspections/trend", {"from_": "1999-12-31"},
     ("inspections", "trend", "--from", "1999-12-31"), "from", "--from"),
    ("/v1/inspections/trend", {"from_": "2025-06-01", "to": "2025-01-01"},
     ("inspections", "trend", "--from", "2025-06-01", "--to", "2025-01-01"), "to", "to"),
    ("/v1/inspections/missing-items", {"area": "999999"},
     ("inspections", "missing-items", "--area", "999999"), "area", "area"),
    ("/v1/visits/counts", {"group": "year"}, ("visits", "counts", "--group", "year"),
     "group", "--group"),
    ("/v1/visits/counts", {"from_": "2020-01-01"}, ("visits", "counts", "--from", "2020-01-01"),
     "to", "to"),
    ("/v1/visits/counts", {"station": "NOPE"}, ("visits", "counts", "--station", "NOPE"),
     "station", "station"),
    ("/v1/stations/BUS-9/stops", {"at": "0001-01-01T00:00:00"},
     ("stops", "show", "BUS-9", "--at", "0001-01-01T00:00:00"), "at", "at"),
    ("/v1/stations/BUS-9/stops", {"at": "tomorrow"},
     ("stops", "show", "BUS-9", "--at", "tomorrow"), "at", "--at"),
    # Checks that lived in the endpoint's body, which the CLI used to miss or repeat.
    ("/v1/reports", {"area": "999999"}, ("reports", "list", "--area", "999999"),
     "area", "area"),
    ("/v1/reports", {"status": "closed"}, ("reports", "list", "--status", "closed"),
     "status", "--status"),
    ("/v1/reports", {"kind": "gone"}, ("reports", "list", "--kind", "gone"), "kind", "--kind"),
])
def test_the_cli_refuses_what_the_api_refuses(
        cli: Any, client: TestClient, keys: dict[str, str], path: str, params: dict[str, Any],
        argv: tuple[str, ...], field: str, option: str) -> None:
    """Same value, same refusal, same field: the API's name, or the option the user typed."""
    status, named = api_field(client, path, keys["admin"], **params)
    assert named == field
    code, out, err = cli(*argv)
    assert code == 2 and out == "" and err.startswith("error: "), (argv, err)
    assert f"({option}: " in err or err.startswith(f"error: {option}: "), (argv, err)
    assert status in (404, 422)


def test_a_time_without_offset_is_china_time_in_the_api_and_the_cli(
        cli: Any, client: TestClient, keys: dict[str, str], tmp_path: Path) -> None:
    """One rule for instants (``params.instant``): the API refused a naive ``at`` while the
    CLI read it in the settings' zone; now both read it as China time."""
    r = client.post("/v1/stations", headers={"Authorization": keys["editor"]},
                    json=station_body("BUS-2", 109.5, 18.25, host_type="mobile", **TIANYA))
    assert r.status_code == 201, r.text
    good = tmp_path / "good.json"
    good.write_text(json.dumps(stops("Mo-Su 10:00-16:00", "Mo-Fr 16:00-20:00")))
    assert cli("stops", "set", "BUS-2", str(good))[0] == 0

    naive, aware = "2026-12-02T16:30", "2026-12-02T16:30:00+08:00"
    by_api = api_json(client, "/v1/stations/BUS-2/stops", at=naive)
    assert by_api == api_json(client, "/v1/stations/BUS-2/stops", at=aware)
    assert by_api == cli_json(cli, "stops", "show", "BUS-2", "--at", naive)
    assert by_api["at"] == aware and by_api["current_stop"]["seq"] == 2
    # Not UTC: 16:30 UTC is 00:30 the next morning in China, when the bus is at no stop.
    utc = api_json(client, "/v1/stations/BUS-2/stops", at="2026-12-02T16:30:00Z")
    assert utc["current_stop"] is None


def test_an_inspection_file_is_held_to_the_api_body_rules(
        cli: Any, client: TestClient, keys: dict[str, str], areas: psycopg.Connection[Any],
        tmp_path: Path) -> None:
    from tests.helpers import insert_stations

    insert_stations(areas, [station_body("T1", 109.45, 18.28, **TIANYA)])
    tomorrow = (china_today() + dt.timedelta(days=1)).isoformat()
    body = {"inspected_on": tomorrow, "items": items(), "photos": ["data:image/png;base64,AA"]}
    r = client.post("/v1/stations/T1/inspections", headers={"Authorization": keys["admin"]},
                    json=body)
    assert r.status_code == 422
    assert [f["field"] for f in r.json()["error"]["fields"]] == ["inspected_on", "photos.0"]
    path = tmp_path / "inspection.json"
    path.write_text(json.dumps(body))
    code, out, err = cli("inspections", "record", "T1", str(path))
    assert code == 2 and out == ""
    assert [ln.split(":")[1].strip() for ln in err.splitlines()] == ["inspected_on", "photos.0"]
    assert areas.execute("SELECT count(*) FROM inspection").fetchone() == (0,)


def test_the_operations_room_keeps_to_its_job() -> None:
    """Only ``queries.py`` speaks SQL and only the routers speak HTTP; the CLI calls the
    services and validates with the schemas, never through a router."""
    import ast
    import re

    import geo_service.operations as room

    folder = Path(room.__file__).parent
    sql = re.compile(r"\b(SELECT|INSERT INTO|UPDATE \w+ SET|DELETE FROM)\b")
    for path in sorted(folder.glob("*.py")):
        tree = ast.parse(path.read_text())
        imported = {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import)
                     for a in n.names}
        if not path.name.endswith("_router.py"):
            assert not {m for m in imported if m.split(".")[0] in ("fastapi", "starlette")}, \
                path.name
            assert not {m for m in imported if m.endswith("_router")}, path.name
        if path.name != "queries.py":
            texts = [n.value for n in ast.walk(tree)
                     if isinstance(n, ast.Constant) and isinstance(n.value, str)]
            assert not [t for t in texts if sql.search(t)], path.name


def test_visit_counts_for_a_whole_month(cli: Any, client: TestClient,
                                        areas: psycopg.Connection[Any]) -> None:
    """``--month 2026-11`` counts all of November, the same as the API for that range."""
    from tests.helpers import insert_stations

    insert_stations(areas, [station_body("A", 109.45, 18.28, **TIANYA)])
    areas.execute("""
        INSERT INTO visit (station_id, worker_type, at)
        SELECT s.id, 'courier', t FROM station s,
               unnest(ARRAY['2026-10-31 23:59+08', '2026-11-01 00:00+08', '2026-11-15 12:00+08',
                            '2026-11-30 23:59+08', '2026-12-01 00:00+08']::timestamptz[]) t""")
    got = cli_json(cli, "visits", "counts", "--group", "month", "--month", "2026-11")
    assert got == api_json(client, "/v1/visits/counts", group="month", from_="2026-11-01",
                           to="2026-11-30")
    assert got["rows"] == [{"key": "2026-11", "label": None, "count": 3, "partial": False}]
    for argv in (("--month", "2026-13"), ("--month", "2026-11", "--from", "2026-11-02")):
        code, _, err = cli("visits", "counts", *argv)
        assert code == 2 and "--month: " in err, (argv, err)


def test_overdue_is_one_rule_in_the_api_the_cli_and_the_compliance_map(
        cli: Any, client: TestClient, areas: psycopg.Connection[Any]) -> None:
    """Issue 27: a station with only an imported 最近核实日期 is overdue everywhere or
    nowhere; the later of that date and the last inspection decides."""
    from geo_service.domain.coords import Crs
    from geo_service.maps.data import load_stations
    from geo_service.maps.model import MapOptions
    from geo_service.maps.render import compliance_flags
    from tests.helpers import insert_stations

    today = china_today()
    ago = {n: (today - dt.timedelta(days=n)).isoformat() for n in (30, 400)}
    insert_stations(areas, [
        station_body("V-RECENT", 109.45, 18.28, last_verified_on=ago[30], **TIANYA),
        station_body("V-OLD", 109.46, 18.28, last_verified_on=ago[400], **TIANYA),
        station_body("V-NEVER", 109.47, 18.28, **TIANYA),
        station_body("V-INSPECTED", 109.48, 18.28, last_verified_on=ago[400], **TIANYA),
        station_body("V-PLANNED", 109.49, 18.28, status="planned", **TIANYA),
    ])
    # An inspection later than the imported date counts, as the imported date counts
    # when it is the later one (written straight in: the import did not set it).
    areas.execute("INSERT INTO inspection (station_id, inspected_on, inspector, items, "
                  "ten_ones_count, amenity_mask) SELECT id, %s, 'test', '{}'::jsonb, 0, 0 "
                  "FROM station WHERE code = 'V-INSPECTED'",
                  (ago[30],))
    api = api_json(client, "/v1/inspections/overdue", area="460204", days=365)
    assert cli_json(cli, "inspections", "overdue", "--area", "460204", "--days", "365") == api
    by_code = {s["code"]: s for s in api["stations"]}
    assert set(by_code) == {"V-NEVER", "V-OLD"}
    assert by_code["V-OLD"]["last_verified_on"] == ago[400]
    assert by_code["V-OLD"]["days_since"] == 400
    st = load_stations(areas, "460204", dt.datetime.now(dt.UTC), Crs.WGS84)
    overdue, _, _ = compliance_flags(st, MapOptions(at=dt.datetime.now(dt.UTC),
                                                    overdue_days=365))
    assert {c for c, o in zip(st.code, overdue.tolist(), strict=True) if o} == set(by_code)
