"""The change feed: ordered, paged, with tombstones, never skipping a write under concurrency."""

from __future__ import annotations

import random
import threading
from typing import Any

import psycopg
from fastapi.testclient import TestClient

from tests.conftest import station_body
from tests.helpers import insert_stations, random_station_write

TIANYA = (109.50, 18.25)


def _published(conn: psycopg.Connection[Any]) -> dict[str, tuple[int, str]]:
    rows = conn.execute("SELECT code, version, name FROM station "
                        "WHERE status IN ('open', 'temporarily_closed')").fetchall()
    return {r[0]: (r[1], r[2]) for r in rows}


class Replica:
    """What a consumer keeps: it applies pages in order and remembers the cursor."""

    def __init__(self) -> None:
        self.rows: dict[str, tuple[int, str]] = {}
        self.cursor: str | None = None
        self.seqs: list[int] = []

    def pull(self, client: TestClient, limit: int = 500) -> int:
        """Pull until the feed says there is no more; returns the number of entries."""
        seen = 0
        while True:
            params: dict[str, Any] = {"limit": limit}
            if self.cursor:
                params["since"] = self.cursor
            r = client.get("/v1/feeds/changes", params=params)
            assert r.status_code == 200, r.text
            page = r.json()
            for entry in page["changes"]:
                self.seqs.append(entry["seq"])
                if entry["op"] == "upsert":
                    props = entry["feature"]["properties"]
                    self.rows[entry["code"]] = (props["version"], props["name"])
                else:
                    assert entry["feature"] is None
                    self.rows.pop(entry["code"], None)
            seen += page["count"]
            self.cursor = page["next_cursor"]
            if not page["has_more"]:
                return seen


def _bodies(n: int, prefix: str = "C") -> list[dict[str, Any]]:
    rnd = random.Random(n)
    return [station_body(f"{prefix}-{i:04d}", 109.4 + rnd.random() * 0.2,
                         18.2 + rnd.random() * 0.1) for i in range(n)]


def test_pull_from_scratch_then_changes_with_tombstones(
    client: TestClient, areas: psycopg.Connection[Any], keys: dict[str, str]
) -> None:
    insert_stations(areas, _bodies(30))
    replica = Replica()
    assert replica.pull(client, limit=7) == 30
    assert replica.rows == _published(areas)
    assert replica.seqs == sorted(replica.seqs)
    # Nothing new: an empty page that keeps the cursor.
    cursor = replica.cursor
    assert replica.pull(client) == 0 and replica.cursor == cursor

    admin = {"Authorization": keys["admin"]}
    assert client.patch("/v1/stations/C-0003", json={"version": 1, "name": "改名"},
                        headers=admin).status_code == 200
    assert client.delete("/v1/stations/C-0004", params={"version": 1},
                         headers=admin).status_code == 200
    assert client.patch("/v1/stations/C-0005", json={"version": 1, "status": "planned"},
                        headers=admin).status_code == 200
    r = client.get("/v1/feeds/changes", params={"since": cursor})
    entries = r.json()["changes"]
    assert [(e["code"], e["op"]) for e in entries] == [
        ("C-0003", "upsert"), ("C-0004", "delete"), ("C-0005", "delete")]
    tomb = entries[1]
    assert tomb["status"] == "closed" and tomb["deleted_at"] and tomb["version"] == 2
    replica.pull(client)
    assert replica.rows == _published(areas) and "C-0004" not in replica.rows
    assert replica.rows["C-0003"] == (2, "改名")


def test_bad_cursor_and_limits(client: TestClient, db: psycopg.Connection[Any]) -> None:
    for bad in ("nonsense!", "Y2hnOi0x", "aWQ6Mw"):  # garbage, "chg:-1", another feed's cursor
        r = client.get("/v1/feeds/changes", params={"since": bad})
        assert r.status_code == 422, bad
        assert r.json()["error"]["fields"][0]["field"] == "since"
    assert client.get("/v1/feeds/changes", params={"limit": 0}).status_code == 422
    assert client.get("/v1/feeds/changes", params={"limit": 5001}).status_code == 422


def test_change_numbers_follow_commit_order(areas: psycopg.Connection[Any], db_url: str) -> None:
    """A write that starts later waits for the lock, so it cannot commit 'before' an earlier one.

    Plain SQL writers, without the app's explicit lock: the trigger alone must do it.
    """
    insert_stations(areas, _bodies(2))
    first = psycopg.connect(db_url)
    first.execute("UPDATE station SET version = version + 1 WHERE code = 'C-0000'")
    finished = threading.Event()

    def second() -> None:
        with psycopg.connect(db_url) as conn:
            conn.execute("UPDATE station SET version = version + 1 WHERE code = 'C-0001'")
            conn.commit()
        finished.set()

    t = threading.Thread(target=second)
    t.start()
    assert not finished.wait(0.5)  # blocked behind the uncommitted first write
    first.commit()
    first.close()
    t.join(10)
    assert finished.is_set()
    order = [r[0] for r in areas.execute("SELECT code FROM station ORDER BY change_seq DESC "
                                         "LIMIT 2").fetchall()]
    assert order == ["C-0001", "C-0000"]


def test_replica_equals_published_set_while_writers_race(
    client: TestClient, areas: psycopg.Connection[Any], db_url: str
) -> None:
    """Writers commit in random interleavings while a consumer pulls small pages."""
    insert_stations(areas, _bodies(60))
    errors: list[BaseException] = []
    writes = [0]

    def writer(seed: int) -> None:
        rnd = random.Random(seed)
        try:
            with psycopg.connect(db_url) as conn:
                for i in range(120):
                    random_station_write(conn, rnd, f"w{seed}-{i}", 60,
                                         station_body(f"N-{seed}-{i}", *TIANYA))
                    writes[0] += 1
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(s,)) for s in range(3)]
    replica = Replica()
    for t in threads:
        t.start()
    pulls = 0
    while any(t.is_alive() for t in threads):
        replica.pull(client, limit=5)
        pulls += 1
    for t in threads:
        t.join()
    assert not errors, errors
    replica.pull(client, limit=5)
    assert writes[0] == 360 and pulls > 3
    assert replica.rows == _published(areas)
    # Each pull moved strictly forward: no entry seen twice within one page run.
    assert all(a < b for a, b in zip(replica.seqs, replica.seqs[1:], strict=False))
