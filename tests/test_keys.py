"""Key lifecycle: expiry, last use, revoke and rotate, from the API and the command line."""

from __future__ import annotations

import datetime as dt
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from geo_service.cli import main
from geo_service.domain.auth import issue_key
from tests.conftest import station_body

TIANYA = (109.500, 18.250)


def can_write(client: TestClient, token: str, code: str) -> int:
    """Status of a station create with ``token`` (201 when the key works)."""
    auth = token if token.startswith("Bearer ") else f"Bearer {token}"
    r = client.post("/v1/stations", headers={"Authorization": auth},
                    json=station_body(code, *TIANYA))
    return r.status_code


def keys_api(client: TestClient, key: str, method: str, path: str = "",
             **kw: Any) -> Any:
    return client.request(method, f"/v1/keys{path}", headers={"Authorization": key}, **kw)


def test_revoke_expire_and_rotate_over_the_api(
        client: TestClient, keys: dict[str, str], db: psycopg.Connection[Any]) -> None:
    r = keys_api(client, keys["admin"], "POST",
                 json={"name": "外包编辑", "role": "editor", "expires_in_days": 90})
    assert r.status_code == 201, r.text
    token, key = r.json()["token"], r.json()["key"]
    assert key["state"] == "active" and key["last_used_at"] is None
    expires = dt.datetime.fromisoformat(key["expires_at"])
    assert dt.timedelta(days=89) < expires - dt.datetime.now(dt.UTC) <= dt.timedelta(days=90)
    assert can_write(client, token, "K-1") == 201
    listed = {k["id"]: k for k in keys_api(client, keys["admin"], "GET").json()["keys"]}
    assert listed[key["id"]]["last_used_at"] is not None
    assert "secret_hash" not in listed[key["id"]]

    # Rotation: a new token with the same name and role; the old one stops at once.
    r = keys_api(client, keys["admin"], "POST", f"/{key['id']}/rotate")
    assert r.status_code == 201, r.text
    new_token, new = r.json()["token"], r.json()["key"]
    assert (new["name"], new["role"], new["replaces_id"]) == ("外包编辑", "editor", key["id"])
    assert new["expires_at"] is not None  # keeps the remaining lifetime
    assert can_write(client, token, "K-2") == 401
    assert can_write(client, new_token, "K-3") == 201

    # With a grace period both work until it ends.
    r = keys_api(client, keys["admin"], "POST", f"/{new['id']}/rotate",
                 json={"grace_minutes": 60})
    third = r.json()["token"]
    assert can_write(client, new_token, "K-4") == 201
    assert can_write(client, third, "K-5") == 201

    # Revoke: the next request is a 401 that says why.
    r = keys_api(client, keys["admin"], "DELETE", f"/{r.json()['key']['id']}")
    assert r.status_code == 200 and r.json()["state"] == "revoked"
    r = client.post("/v1/stations", headers={"Authorization": f"Bearer {third}"},
                    json=station_body("K-6", *TIANYA))
    assert r.status_code == 401
    assert r.json()["error"]["fields"] == [{"field": "Authorization",
                                            "problem": "revoked key"}]

    # Expiry passes (moved into the past here): 401 on the next request.
    db.execute("UPDATE api_key SET expires_at = now() - interval '1 second' WHERE id = %s",
               (new["id"],))
    r = client.post("/v1/stations", headers={"Authorization": f"Bearer {new_token}"},
                    json=station_body("K-7", *TIANYA))
    assert r.status_code == 401 and "expired" in r.json()["error"]["message"]

    # Every key change is in the audit trail, never with its secret hash.
    rows = db.execute("SELECT action, changes FROM audit_log WHERE action LIKE 'api_key.%%' "
                      "AND record_id = %s ORDER BY id", (str(key["id"]),)).fetchall()
    assert [a for a, _ in rows] == ["api_key.insert", "api_key.update"]
    assert all("secret_hash" not in c for _, c in rows)
    assert "revoked_at" in rows[1][1]


def test_only_admins_manage_keys_and_scoped_admins_only_their_areas(
        client: TestClient, keys: dict[str, str], areas: psycopg.Connection[Any]) -> None:
    assert keys_api(client, keys["editor"], "GET").status_code == 403
    assert client.get("/v1/keys").status_code == 401
    _, jiyang = issue_key(areas, name="吉阳编辑", role="editor", area_code="460203")
    scoped = keys["tianya_admin"]
    listed = keys_api(client, scoped, "GET").json()["keys"]
    assert {k["area_code"] for k in listed} == {"460204"}
    # Another area's key answers like an unknown one: ids cannot be probed.
    for method, path in (("DELETE", f"/{jiyang['id']}"), ("POST", f"/{jiyang['id']}/rotate"),
                         ("DELETE", "/999999")):
        r = keys_api(client, scoped, method, path)
        assert r.status_code == 404, r.text
    for body in ({"name": "全市", "role": "editor"},
                 {"name": "吉阳", "role": "editor", "area_code": "460203"}):
        r = keys_api(client, scoped, "POST", json=body)
        assert r.status_code == 403
        assert r.json()["error"]["fields"][0]["field"] == "area_code"
    r = keys_api(client, scoped, "POST", json={"name": "天涯巡查", "role": "inspector",
                                               "area_code": "460204"})
    assert r.status_code == 201
    r = keys_api(client, keys["admin"], "POST", json={"name": "x", "role": "root"})
    assert r.status_code == 422


def test_keys_from_the_command_line(db: psycopg.Connection[Any], db_url: str,
                                    client: TestClient, areas: psycopg.Connection[Any],
                                    monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("GEO_DATABASE_URL", db_url)
    assert main(["keys", "create", "--name", "ops", "--role", "editor",
                 "--expires-in", "30d"]) == 0
    token = capsys.readouterr().out.strip()
    assert can_write(client, token, "L-1") == 201
    assert main(["keys", "list", "--json"]) == 0
    import json

    listed = json.loads(capsys.readouterr().out)
    key = next(k for k in listed if k["name"] == "ops")
    assert key["last_used_at"] is not None and key["expires_at"] is not None
    assert main(["keys", "rotate", str(key["id"]), "--grace", "1h"]) == 0
    rotated = capsys.readouterr().out.strip()
    assert can_write(client, token, "L-2") == 201  # still inside the grace hour
    assert main(["keys", "revoke", str(key["id"])]) == 0
    assert "  revoked  " in capsys.readouterr().out
    assert can_write(client, token, "L-3") == 401
    assert can_write(client, rotated, "L-4") == 201
    assert main(["keys", "list"]) == 0
    table = capsys.readouterr().out
    assert "  ops  " in table and "  revoked  " not in table  # only active keys by default
    assert main(["keys", "list", "--all"]) == 0
    assert "  revoked  " in capsys.readouterr().out
    assert main(["keys", "create", "--name", "x", "--role", "editor",
                 "--expires-in", "forever"]) == 2
    assert "--expires-in" in capsys.readouterr().err
    assert main(["keys", "revoke", "999999"]) == 2


def test_rotating_a_key_in_its_grace_period_retires_it_and_its_earlier_replacement(
        client: TestClient, keys: dict[str, str]) -> None:
    """Issue 24, item 7: a second rotation with ``grace_minutes: 0`` left the old key
    working for the first rotation's 30 days, and each rotation during the grace minted
    one more live replacement."""
    r = keys_api(client, keys["admin"], "POST", json={"name": "驿站App", "role": "editor"})
    first, key = r.json()["token"], r.json()["key"]
    r = keys_api(client, keys["admin"], "POST", f"/{key['id']}/rotate",
                 json={"grace_minutes": 43_200})
    assert r.status_code == 201, r.text
    second = r.json()["token"]
    assert can_write(client, first, "G-1") == 201  # in its grace period
    r = keys_api(client, keys["admin"], "POST", f"/{key['id']}/rotate",
                 json={"grace_minutes": 0})
    assert r.status_code == 201, r.text
    third = r.json()["token"]
    assert can_write(client, first, "G-2") == 401
    assert can_write(client, second, "G-3") == 401  # the earlier replacement goes with it
    assert can_write(client, third, "G-4") == 201
    line = [k for k in keys_api(client, keys["admin"], "GET").json()["keys"]
            if k["name"] == "驿站App"]
    assert [k["state"] for k in line] == ["revoked", "revoked", "active"]
    assert line[2]["replaces_id"] == key["id"]


def test_a_second_rotation_never_lengthens_the_grace(client: TestClient,
                                                     keys: dict[str, str]) -> None:
    r = keys_api(client, keys["admin"], "POST", json={"name": "外包", "role": "editor"})
    first, key = r.json()["token"], r.json()["key"]
    keys_api(client, keys["admin"], "POST", f"/{key['id']}/rotate", json={"grace_minutes": 60})
    r = keys_api(client, keys["admin"], "POST", f"/{key['id']}/rotate",
                 json={"grace_minutes": 43_200})
    assert r.status_code == 201, r.text
    line = {k["id"]: k for k in keys_api(client, keys["admin"], "GET").json()["keys"]
            if k["name"] == "外包"}
    old, earlier, latest = (line[i] for i in sorted(line))
    ends = dt.datetime.fromisoformat(old["revoked_at"]) - dt.datetime.now(dt.UTC)
    assert dt.timedelta(minutes=58) < ends <= dt.timedelta(minutes=60)
    assert earlier["revoked_at"] == old["revoked_at"]  # one live replacement after the hour
    assert latest["revoked_at"] is None
    assert can_write(client, first, "G-5") == 201  # still inside the first grace hour
    # Rotating any key of the line leaves one live key in it: the new one.
    r = keys_api(client, keys["admin"], "POST", f"/{earlier['id']}/rotate",
                 json={"grace_minutes": 0})
    assert r.status_code == 201, r.text
    states = {k["id"]: k["state"] for k in keys_api(client, keys["admin"], "GET").json()["keys"]
              if k["name"] == "外包"}
    assert states == {old["id"]: "revoked", earlier["id"]: "revoked",
                      latest["id"]: "revoked", r.json()["key"]["id"]: "active"}
    assert can_write(client, first, "G-6") == 401


def _expires_at(key: dict[str, Any]) -> dt.datetime | None:
    return dt.datetime.fromisoformat(key["expires_at"]) if key["expires_at"] else None


def test_a_key_expires_no_later_than_the_key_that_made_it(
        client: TestClient, areas: psycopg.Connection[Any]) -> None:
    """Issue 24, item 8: an admin key that expires tomorrow made keys that never expire,
    and rotation carried a nearly expired key forward. What a key issues is clamped to
    its own end (expiry, or the end of its grace period)."""
    token, admin = issue_key(areas, name="临时管理员", role="admin",
                             expires_in=dt.timedelta(days=1))
    bearer = f"Bearer {token}"
    ends: dt.datetime = admin["expires_at"]  # issue_key answers datetimes, the API text
    for body in ({"name": "永久", "role": "editor"},
                 {"name": "一年", "role": "editor", "expires_in_days": 365}):
        r = keys_api(client, bearer, "POST", json=body)
        assert r.status_code == 201, r.text
        assert _expires_at(r.json()["key"]) == ends
    r = keys_api(client, bearer, "POST", json={"name": "短", "role": "editor",
                                                "expires_in_days": 1})
    assert (_expires_at(r.json()["key"]) or ends) <= ends
    # Rotation by that admin: the replacement of a key without expiry ends with the admin.
    _, forever = issue_key(areas, name="老钥匙", role="editor")
    r = keys_api(client, bearer, "POST", f"/{forever['id']}/rotate")
    assert r.status_code == 201, r.text
    assert _expires_at(r.json()["key"]) == ends
    # A nearly expired key is not carried forward: its replacement ends when it would have.
    _, brief = issue_key(areas, name="快过期", role="editor", expires_in=dt.timedelta(minutes=1))
    areas.execute("UPDATE api_key SET expires_at = now() + interval '5 seconds' WHERE id = %s",
                  (brief["id"],))
    was = areas.execute("SELECT expires_at FROM api_key WHERE id = %s",
                        (brief["id"],)).fetchone()
    assert was is not None
    r = keys_api(client, bearer, "POST", f"/{brief['id']}/rotate")
    assert r.status_code == 201, r.text
    assert _expires_at(r.json()["key"]) == was[0]
    # A key in its grace period ends when the grace does: so does what it issues.
    r = keys_api(client, bearer, "POST", f"/{admin['id']}/rotate", json={"grace_minutes": 30})
    assert r.status_code == 201, r.text
    r = keys_api(client, bearer, "POST", json={"name": "宽限期内", "role": "editor"})
    assert r.status_code == 201, r.text
    made = _expires_at(r.json()["key"])
    assert made is not None and made - dt.datetime.now(dt.UTC) <= dt.timedelta(minutes=30)
