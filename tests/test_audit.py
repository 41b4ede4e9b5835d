"""The audit trail: every write leaves who, when and what (old → new), in the same transaction."""

from __future__ import annotations

import datetime as dt
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from geo_service.cli import main
from geo_service.domain.auth import create_key
from geo_service.domain.catalogue import TEN_ONES
from tests.conftest import station_body

TIANYA = (109.500, 18.250)
JIYANG = (109.55, 18.27)


def history(client: TestClient, key: str, code: str, **params: Any) -> list[dict[str, Any]]:
    r = client.get(f"/v1/stations/{code}/history", headers={"Authorization": key}, params=params)
    assert r.status_code == 200, r.text
    return list(r.json()["entries"])


def test_station_edits_are_recorded_with_who_and_what(
        client: TestClient, keys: dict[str, str], db: psycopg.Connection[Any]) -> None:
    ed = {"Authorization": keys["tianya_editor"]}
    assert client.post("/v1/stations", headers=ed,
                       json=station_body("A-1", *TIANYA)).status_code == 201
    r = client.patch("/v1/stations/A-1", headers={**ed, "If-Match": '"1"'},
                     json={"name": "新名字", "phone": "0898-1234567"})
    assert r.status_code == 200, r.text
    # A refused edit (stale version) leaves no entry.
    r = client.patch("/v1/stations/A-1", headers={**ed, "If-Match": '"1"'}, json={"name": "x"})
    assert r.status_code == 412
    r = client.delete("/v1/stations/A-1", headers=ed, params={"version": 2})
    assert r.status_code == 200, r.text
    entries = history(client, keys["admin"], "A-1")
    assert [e["action"] for e in entries] == ["station.create", "station.update",
                                              "station.delete"]
    key_id = db.execute("SELECT id FROM api_key WHERE name = 'tianya'").fetchone()
    assert {(e["actor"], e["key_id"]) for e in entries} == {("tianya", key_id[0])}
    created, edited, deleted = (e["changes"] for e in entries)
    assert created["name"] == {"old": None, "new": "测试驿站 A-1"}
    assert created["lon"]["new"] == pytest.approx(TIANYA[0])
    assert edited == {"name": {"old": "测试驿站 A-1", "new": "新名字"},
                      "phone": {"old": None, "new": "0898-1234567"},
                      "version": {"old": 1, "new": 2}}
    assert deleted["status"] == {"old": "open", "new": "closed"}
    assert deleted["deleted_at"]["old"] is None and deleted["deleted_at"]["new"]
    # Compiled and bookkeeping columns never show.
    assert not {"open_minutes", "change_seq", "updated_at", "geog"} & set(created)
    # Paging.
    first = client.get("/v1/stations/A-1/history", params={"limit": 2},
                       headers={"Authorization": keys["admin"]}).json()
    assert len(first["entries"]) == 2 and first["next_after"] == first["entries"][1]["id"]
    rest = history(client, keys["admin"], "A-1", after=first["next_after"])
    assert [e["action"] for e in rest] == ["station.delete"]


def test_the_trail_is_append_only(client: TestClient, keys: dict[str, str],
                                  db: psycopg.Connection[Any]) -> None:
    client.post("/v1/stations", headers={"Authorization": keys["editor"]},
                json=station_body("A-2", *TIANYA))
    for sql in ("UPDATE audit_log SET actor = 'someone else'", "DELETE FROM audit_log"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            db.execute(sql)
    assert db.execute("SELECT count(*) FROM audit_log WHERE station_code = 'A-2'"
                      ).fetchone() == (1,)


def _import(client: TestClient, key: str, rows: list[str], **params: Any) -> Any:
    header = "code,name,lon,lat,host_type,opening_hours"
    return client.post("/v1/stations:import", headers={"Authorization": key}, params=params,
                       files={"file": ("s.csv", "\n".join([header, *rows]).encode())})


def test_each_row_an_import_changes_carries_the_import_id(
        client: TestClient, keys: dict[str, str], db: psycopg.Connection[Any]) -> None:
    rows = [f"I-{i},站{i},{TIANYA[0] + i / 1000},{TIANYA[1]},union_built,24/7" for i in range(3)]
    assert _import(client, keys["admin"], rows, dry_run=True).status_code == 200
    assert db.execute("SELECT count(*) FROM audit_log WHERE station_code IS NOT NULL"
                      ).fetchone() == (0,)  # a dry run leaves none
    first = _import(client, keys["admin"], rows).json()
    rows[1] = rows[1].replace("站1", "改名站1")
    second = _import(client, keys["admin"], rows).json()
    assert (second["created"], second["updated"], second["unchanged"]) == (0, 1, 2)
    by_import = db.execute("SELECT import_id::text, action, station_code FROM audit_log "
                           "WHERE station_code IS NOT NULL ORDER BY id").fetchall()
    assert by_import == [(first["import_id"], "station.create", f"I-{i}") for i in range(3)] + [
        (second["import_id"], "station.update", "I-1")]
    entry = history(client, keys["admin"], "I-1")[-1]
    assert entry["changes"]["name"] == {"old": "站1", "new": "改名站1"}
    assert entry["actor"] == "admin" and entry["import_id"] == second["import_id"]


def test_operations_writes_are_recorded(client: TestClient, keys: dict[str, str],
                                        areas: psycopg.Connection[Any]) -> None:
    ed = {"Authorization": keys["editor"]}
    client.post("/v1/stations", headers=ed, json=station_body("BUS", *TIANYA,
                                                              host_type="mobile"))
    stop = {"name": "站点一", "lon": 109.49, "lat": 18.26, "opening_hours": "Mo-Su 10:00-16:00"}
    r = client.put("/v1/stations/BUS/stops", headers=ed, json={"stops": [stop], "version": 1})
    assert r.status_code == 200, r.text
    inspector = f"Bearer {create_key(areas, name='巡查员小王', role='inspector')}"
    body = {"inspected_on": dt.date.today().isoformat(),
            "items": {a.code: "present" for a in TEN_ONES}, "score": 95}
    r = client.post("/v1/stations/BUS/inspections", json=body,
                    headers={"Authorization": inspector})
    assert r.status_code == 201, r.text
    r = client.post("/v1/stations/BUS/awards", headers=ed,
                    json={"title": "最美驿站", "level": "city", "year": 2026})
    assert r.status_code == 201, r.text
    assert client.delete(f"/v1/stations/BUS/awards/{r.json()['id']}",
                         headers=ed).status_code == 204
    for _ in range(3):
        client.post("/v1/stations/BUS/reports", json={"kind": "closed"},
                    headers={"X-Device-Id": f"dev-{_}"})
    report = client.get("/v1/reports", params={"station": "BUS"}, headers=ed).json()
    rid = report["items"][0]["id"]
    r = client.post(f"/v1/reports/{rid}/resolution", headers=ed,
                    json={"action": "rejected", "note": "开着", "version": 1})
    assert r.status_code == 200, r.text
    entries = history(client, keys["admin"], "BUS")
    actions = [(e["action"], e["actor"]) for e in entries]
    assert actions[:2] == [("station.create", "editor"), ("station_stop.insert", "editor")]
    assert ("inspection.insert", "巡查员小王") in actions
    # The inspection set the station's verified amenities: that edit is the inspector's too.
    assert any(a == "station.update" and who == "巡查员小王" for a, who in actions)
    assert ("station_award.insert", "editor") in actions
    assert ("station_award.delete", "editor") in actions
    assert ("report_resolution.insert", "editor") in actions
    stop_entry = next(e for e in entries if e["action"] == "station_stop.insert")
    assert stop_entry["changes"]["name"]["new"] == "站点一"
    # The history is for editors and admins; the public inspection list never names inspectors.
    assert client.get("/v1/stations/BUS/history").status_code == 401
    assert client.get("/v1/stations/BUS/history",
                      headers={"Authorization": inspector}).status_code == 403
    assert client.get("/v1/stations/NOPE/history", headers=ed).status_code == 404


def test_scoped_keys_read_only_their_areas_history(client: TestClient,
                                                   keys: dict[str, str]) -> None:
    client.post("/v1/stations", headers={"Authorization": keys["editor"]},
                json=station_body("J-1", *JIYANG))
    r = client.get("/v1/stations/J-1/history", headers={"Authorization": keys["tianya_editor"]})
    assert r.status_code == 403
    assert history(client, keys["editor"], "J-1")[0]["action"] == "station.create"


def test_cli_history(client: TestClient, keys: dict[str, str], db_url: str,
                     monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("GEO_DATABASE_URL", db_url)
    ed = {"Authorization": keys["editor"]}
    client.post("/v1/stations", headers=ed, json=station_body("C-1", *TIANYA))
    client.patch("/v1/stations/C-1", headers={**ed, "If-Match": '"1"'}, json={"seats": 6})
    assert main(["history", "C-1"]) == 0
    out = capsys.readouterr().out
    assert "station.create  by editor" in out and "seats: null → 6" in out
    assert main(["history", "NOPE"]) == 2
