"""The staff console's foundation (issue 26): accounts, sessions, CSRF, lockout, the CLI;
the posters page.

Through the TestClient and the database; the one Chromium walk is in
tests/test_console_browser.py.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import psycopg
import pypdf
import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from geo_service.cli import main
from geo_service.domain import accounts
from geo_service.domain.auth import issue_key
from geo_service.domain.errors import Forbidden, InvalidInput
from geo_service.infra.settings import Settings
from geo_service.posters.printing import DrawSlots
from geo_service.web.app import create_app
from geo_service.web.security_headers import STRICT_CSP
from tests.conftest import station_body

PASSWORD = "correct horse battery"
TIANYA = "460204"


def make(conn: psycopg.Connection[Any], name: str, role: str, area: str | None = TIANYA,
         password: str = PASSWORD) -> int:
    return int(accounts.create_user(conn, name=name, role=role, password=password,
                                    area_code=area)["id"])


def sign_in(c: TestClient, name: str, password: str = PASSWORD) -> httpx.Response:
    """The sign-in form as a browser sends it, with the form's own CSRF token."""
    form = c.get("/console/")
    return c.post("/console/sign-in", follow_redirects=False, data={
        "name": name, "password": password, "csrf_token": csrf_of(form.text)})


def csrf_of(page: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert m, "no CSRF field on the page"
    return m.group(1)


def home(c: TestClient) -> httpx.Response:
    return c.get("/console/")


@pytest.fixture
def people(areas: psycopg.Connection[Any]) -> dict[str, int]:
    """An admin of the sample district Tianya, an editor and an inspector there."""
    return {"boss": make(areas, "boss", "admin"), "ed": make(areas, "ed", "editor"),
            "insp": make(areas, "insp", "inspector")}


def test_passwords_are_argon2id_with_a_minimum_and_rehashed_when_parameters_change(
        areas: psycopg.Connection[Any], client: TestClient) -> None:
    uid = make(areas, "boss", "admin")
    stored = areas.execute("SELECT password_hash FROM staff_user").fetchone()
    assert stored is not None and stored[0].startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert PASSWORD not in stored[0]
    with pytest.raises(InvalidInput, match="12 to 256"):
        make(areas, "short", "editor", password="x" * 11)
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    areas.execute("UPDATE staff_user SET password_hash = %s WHERE id = %s", (weak, uid))
    assert sign_in(client, "boss").status_code == 303
    again = areas.execute("SELECT password_hash FROM staff_user WHERE id = %s", (uid,)).fetchone()
    assert again is not None and again[0].startswith("$argon2id$v=19$m=65536,t=3,p=4$")


def test_sign_in_makes_a_new_http_only_lax_cookie_and_never_promotes_a_planted_one(
        areas: psycopg.Connection[Any], client: TestClient, people: dict[str, int]) -> None:
    client.cookies.set("geo_console", "planted-by-someone-else", path="/console")
    assert "csrf_token" in home(client).text  # the sign-in form: the planted cookie is nobody
    answer = sign_in(client, "ed")
    assert answer.status_code == 303 and answer.headers["location"] == "/console/"
    cookie = next(v for v in answer.headers.get_list("set-cookie")
                  if v.startswith("geo_console="))
    token = cookie.split(";")[0].split("=", 1)[1]
    assert token != "planted-by-someone-else" and len(token) >= 43
    flags = [f.strip().lower() for f in cookie.split(";")[1:]]
    assert {"httponly", "samesite=lax", "path=/console"} <= set(flags)
    assert "secure" not in flags  # plain HTTP from a client that is not behind a proxy
    stored = areas.execute("SELECT token_hash FROM staff_session").fetchall()
    assert len(stored) == 1 and token.encode() not in bytes(stored[0][0])
    page = home(client)
    assert page.status_code == 200 and "ed" in page.text and "退出登录" in page.text
    for path in ("/console/", "/console/password"):
        assert client.get(path).headers["content-security-policy"] == STRICT_CSP
    client.cookies.clear()
    client.cookies.set("geo_console", "planted-by-someone-else", path="/console")
    assert "您好" not in home(client).text


def test_cookie_is_secure_over_https_and_behind_a_trusted_proxy_only(
        settings: Settings, client: TestClient, people: dict[str, int]) -> None:
    forwarded = {"X-Forwarded-Proto": "https"}

    def flags(c: TestClient, **headers: str) -> list[str]:
        form = c.get("/console/", headers=headers)
        # A Secure cookie is not sent back over the test's plain HTTP: hand it on as the
        # browser, which saw HTTPS at the proxy, would.
        pre = csrf_of(form.text)
        answer = c.post("/console/sign-in", follow_redirects=False,
                        headers={**headers, "Cookie": f"geo_console_pre={pre}"}, data={
            "name": "ed", "password": PASSWORD, "csrf_token": csrf_of(form.text)})
        assert answer.status_code == 303, answer.text
        cookie = next(v for v in answer.headers.get_list("set-cookie")
                      if v.startswith("geo_console="))
        return [f.strip().lower() for f in cookie.split(";")]

    assert "secure" not in flags(client, **forwarded)  # the peer is no trusted proxy
    app = create_app(settings)
    with TestClient(app, base_url="https://testserver", client=("127.0.0.1", 5)) as https:
        assert "secure" in flags(https)
    proxied = settings.model_copy(update={"trusted_proxies": "127.0.0.1"})
    with TestClient(create_app(proxied), client=("127.0.0.1", 5)) as behind:
        assert "secure" in flags(behind, **forwarded)
        assert "secure" not in flags(behind)


def test_csrf_token_missing_wrong_or_foreign_origin_is_refused_before_any_write(
        areas: psycopg.Connection[Any], client: TestClient, people: dict[str, int]) -> None:
    form = {"name": "newbie", "role": "editor", "area_code": TIANYA, "password": PASSWORD}
    assert client.post("/console/sign-in", data={"name": "boss", "password": PASSWORD}
                       ).status_code == 403  # the sign-in form too
    assert sign_in(client, "boss").status_code == 303
    token = csrf_of(client.get("/console/accounts").text)
    missing = client.post("/console/accounts", data=form)
    assert missing.status_code == 403 and "csrf_token is missing" in missing.text
    wrong = client.post("/console/accounts", data={**form, "csrf_token": token[:-2] + "xx"})
    assert wrong.status_code == 403 and "csrf_token is wrong" in wrong.text
    foreign = client.post("/console/accounts", data={**form, "csrf_token": token},
                          headers={"Origin": "https://evil.example"})
    assert foreign.status_code == 403 and "Origin" in foreign.text
    assert missing.headers["content-security-policy"] == STRICT_CSP
    for path in ("/console/sign-out", "/console/sign-out-everywhere", "/console/password",
                 f"/console/accounts/{people['ed']}/disable",
                 f"/console/accounts/{people['ed']}/reset-password"):
        assert client.post(path, data={"csrf_token": "nope"}).status_code == 403, path
    assert areas.execute("SELECT count(*) FROM staff_user WHERE name = 'newbie'"
                         ).fetchone() == (0,)
    assert areas.execute("SELECT count(*) FROM staff_session").fetchone() == (1,)
    made = client.post("/console/accounts", data={**form, "csrf_token": token},
                       headers={"Origin": "http://testserver"})
    assert made.status_code == 201 and "newbie" in made.text


def test_five_failures_lock_an_account_and_every_refusal_reads_the_same(
        areas: psycopg.Connection[Any], client: TestClient, people: dict[str, int]) -> None:
    unknown = sign_in(client, "nobody-at-all")
    assert unknown.status_code == 401
    refusal = re.search(r'<p class="err" role="alert">([^<]+)</p>', unknown.text)
    assert refusal is not None
    for _ in range(5):
        wrong = sign_in(client, "ed", "wrong password!!")
        assert wrong.status_code == 401 and refusal.group(0) in wrong.text
    locked = sign_in(client, "ed")  # the right password, but locked
    assert locked.status_code == 401 and refusal.group(0) in locked.text
    assert areas.execute("SELECT locked_until > now() + interval '14 minutes' FROM staff_user "
                         "WHERE name = 'ed'").fetchone() == (True,)
    areas.execute("UPDATE staff_user SET locked_until = now() - interval '1 second'")
    assert sign_in(client, "ed").status_code == 303


def test_one_client_is_throttled_whatever_names_it_tries(
        areas: psycopg.Connection[Any], people: dict[str, int]) -> None:
    policy = accounts.Policy(client_failures=3)
    for name in ("ed", "insp", "ghost"):
        with pytest.raises(accounts.SignInRefused):
            accounts.sign_in(areas, name=name, password="wrong password!!",
                             client="203.0.113.7", policy=policy)
    with pytest.raises(accounts.RateLimited):
        accounts.sign_in(areas, name="boss", password=PASSWORD, client="203.0.113.7",
                         policy=policy)
    assert accounts.sign_in(areas, name="boss", password=PASSWORD, client="203.0.113.8",
                            policy=policy)


def test_disabled_account_and_ended_sessions_stop_at_the_next_request(
        areas: psycopg.Connection[Any], client: TestClient, people: dict[str, int]) -> None:
    token = accounts.sign_in(areas, name="ed", password=PASSWORD, client="x",
                             policy=accounts.Policy())
    client.cookies.set("geo_console", token, path="/console")
    assert "您好" in home(client).text
    accounts.disable_user(areas, people["ed"], None)
    assert "您好" not in home(client).text
    assert client.get("/console/password", follow_redirects=False).status_code == 303
    token = accounts.sign_in(areas, name="insp", password=PASSWORD, client="x",
                             policy=accounts.Policy())
    areas.execute("UPDATE staff_session SET last_seen_at = now() - interval '31 minutes'")
    client.cookies.set("geo_console", token, path="/console")
    assert "您好" not in home(client).text  # idle past GEO_CONSOLE_IDLE_MINUTES (30)


def test_inspectors_and_editors_cannot_manage_accounts(
        areas: psycopg.Connection[Any], client: TestClient, people: dict[str, int]) -> None:
    for name in ("insp", "ed"):
        client.cookies.clear()
        assert sign_in(client, name).status_code == 303
        token = csrf_of(home(client).text)
        assert "/console/accounts" not in home(client).text
        assert client.get("/console/accounts").status_code == 403
        refused = client.post("/console/accounts", data={
            "name": "x" + name, "role": "admin", "password": PASSWORD, "csrf_token": token})
        assert refused.status_code == 403 and "needs role admin" in refused.text
        assert client.post(f"/console/accounts/{people['boss']}/disable",
                           data={"csrf_token": token}).status_code == 403
    assert areas.execute("SELECT count(*) FROM staff_user WHERE disabled_at IS NOT NULL OR "
                         "name LIKE 'x%'").fetchone() == (0,)


def test_district_admin_manages_its_own_area_only_and_is_audited_by_name(
        areas: psycopg.Connection[Any], client: TestClient, people: dict[str, int]) -> None:
    other = make(areas, "jiyang", "editor", area="460203")
    assert sign_in(client, "boss").status_code == 303
    page = client.get("/console/accounts")
    assert page.status_code == 200 and "jiyang" not in page.text and "insp" in page.text
    token = csrf_of(page.text)
    for area in ("460200", "460203", ""):  # the city above, a sibling, the whole country
        wider = client.post("/console/accounts", data={
            "name": "w" + area, "role": "editor", "area_code": area, "password": PASSWORD,
            "csrf_token": token})
        assert wider.status_code == 403 and "limited to area 460204" in wider.text, area
    assert client.post(f"/console/accounts/{other}/disable",
                       data={"csrf_token": token}).status_code == 404
    made = client.post("/console/accounts", data={
        "name": "newed", "display_name": "新编辑", "role": "editor", "area_code": TIANYA,
        "password": PASSWORD, "csrf_token": token})
    assert made.status_code == 201 and "新编辑" in made.text
    reset = client.post(f"/console/accounts/{people['ed']}/reset-password",
                        data={"csrf_token": token})
    one_time = re.search(r'<code class="secret">([^<]+)</code>', reset.text)
    assert reset.status_code == 200 and one_time is not None
    assert sign_in(TestClient(client.app), "ed", one_time.group(1)).status_code == 303
    entries = areas.execute(
        "SELECT action, actor, user_id, key_id, changes FROM audit_log "
        "WHERE action LIKE 'staff_user.%%' AND actor = 'boss' ORDER BY id").fetchall()
    assert [(a, u, k) for a, _, u, k, _ in entries] == [
        ("staff_user.insert", people["boss"], None), ("staff_user.update", people["boss"], None)]
    assert entries[0][4]["name"] == [None, "newed"]
    assert all("password_hash" not in e[4] for e in entries)
    assert "password_changed_at" in entries[1][4]


def test_a_session_is_the_same_principal_as_a_key_in_existing_services(
        areas: psycopg.Connection[Any], people: dict[str, int]) -> None:
    """The keys service takes a person's principal as it takes a key's: the same area rule
    (one definition), and the audit entry names the account."""
    token = accounts.sign_in(areas, name="boss", password=PASSWORD, client="x",
                             policy=accounts.Policy())
    session = accounts.session_for(areas, token, accounts.Policy())
    assert session is not None and session.principal.user_id == people["boss"]
    with pytest.raises(Forbidden, match="account is limited to area 460204"):
        issue_key(areas, name="wide", role="editor", area_code="460200",
                  principal=session.principal)
    issue_key(areas, name="tianya-bot", role="editor", area_code=TIANYA,
              principal=session.principal)
    assert areas.execute("SELECT actor, user_id, key_id FROM audit_log WHERE action = "
                         "'api_key.insert'").fetchall() == [("boss", people["boss"], None)]
    assert accounts.sign_in(areas, name="boss", password=PASSWORD, client="x",
                            policy=accounts.Policy()) != token  # a new token every time


def test_password_change_needs_the_current_one_and_ends_the_other_sessions(
        areas: psycopg.Connection[Any], client: TestClient, people: dict[str, int]) -> None:
    elsewhere = accounts.sign_in(areas, name="ed", password=PASSWORD, client="x",
                                 policy=accounts.Policy())
    assert sign_in(client, "ed").status_code == 303
    token = csrf_of(client.get("/console/password").text)
    wrong = client.post("/console/password", data={
        "current_password": "not it at all", "new_password": "a new long password",
        "csrf_token": token})
    assert wrong.status_code == 403 and "current_password" in wrong.text
    short = client.post("/console/password", data={
        "current_password": PASSWORD, "new_password": "short", "csrf_token": token})
    assert short.status_code == 422 and "new_password" in short.text
    done = client.post("/console/password", data={
        "current_password": PASSWORD, "new_password": "a new long password",
        "csrf_token": token})
    assert done.status_code == 200 and "密码已修改" in done.text
    assert "您好" in home(client).text
    assert accounts.session_for(areas, elsewhere, accounts.Policy()) is None
    out = client.post("/console/sign-out-everywhere", data={"csrf_token": token},
                      follow_redirects=False)
    assert out.status_code == 303
    assert areas.execute("SELECT count(*) FROM staff_session").fetchone() == (0,)


@pytest.fixture
def stdin(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    feed = io.StringIO()
    monkeypatch.setattr("sys.stdin", feed)
    yield feed


def test_users_command_creates_lists_resets_and_disables(
        areas: psycopg.Connection[Any], db_url: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], stdin: io.StringIO) -> None:
    monkeypatch.setenv("GEO_DATABASE_URL", db_url)
    stdin.write(PASSWORD + "\n")
    stdin.seek(0)
    assert main(["users", "create", "ops", "--role", "admin", "--area", TIANYA,
                 "--password-stdin"]) == 0
    assert PASSWORD not in capsys.readouterr().out
    assert main(["users", "create", "far", "--role", "editor", "--area", "999"]) == 2
    assert main(["users", "reset-password", "ops"]) == 0
    made = capsys.readouterr().out.strip()
    assert len(made) >= 12
    assert accounts.sign_in(areas, name="ops", password=made, client="x",
                            policy=accounts.Policy())
    assert main(["users", "list"]) == 0
    listed = capsys.readouterr().out
    assert "ops" in listed and "admin" in listed and "active" in listed
    assert main(["users", "disable", "OPS"]) == 0
    assert areas.execute("SELECT count(*) FROM staff_session").fetchone() == (0,)
    assert main(["users", "list", "--json"]) == 0
    assert '"state": "disabled"' in capsys.readouterr().out
    assert main(["users", "disable", "ghost"]) == 2
    entry = areas.execute("SELECT actor FROM audit_log WHERE action = 'staff_user.insert'"
                          ).fetchone()
    assert entry == ("command line",)


def test_keys_page_issues_once_revokes_and_rotates_within_the_admins_area(
        areas: psycopg.Connection[Any], client: TestClient, people: dict[str, int]) -> None:
    issue_key(areas, name="jiyang-bot", role="editor", area_code="460203")
    assert sign_in(client, "boss").status_code == 303
    page = client.get("/console/keys")
    assert page.status_code == 200 and "jiyang-bot" not in page.text
    assert page.headers["content-security-policy"] == STRICT_CSP
    token = csrf_of(page.text)
    wide = client.post("/console/keys", data={"name": "wide", "role": "editor",
                                              "area_code": "", "csrf_token": token})
    assert wide.status_code == 403 and "limited to area 460204" in wide.text
    made = client.post("/console/keys", data={"name": "tianya-bot", "role": "editor",
                                              "area_code": TIANYA, "expires_in": "30d",
                                              "csrf_token": token})
    shown = re.search(r'<code class="secret">(gs_[^<]+)</code>', made.text)
    assert made.status_code == 201 and shown is not None
    listed = client.get("/console/keys").text
    assert listed.count(shown.group(1)) == 0  # shown once
    expires = areas.execute("SELECT expires_at FROM api_key WHERE name = 'tianya-bot'"
                            ).fetchone()
    assert expires is not None  # times on the clerk's clock, as the other pages show them
    assert f"{expires[0].astimezone(ZoneInfo('Asia/Shanghai')):%Y-%m-%d %H:%M}" in listed
    key_id = areas.execute("SELECT id FROM api_key WHERE name = 'tianya-bot'").fetchone()
    assert key_id is not None
    rotated = client.post(f"/console/keys/{key_id[0]}/rotate",
                          data={"grace": "1h", "csrf_token": token})
    fresh = re.search(r'<code class="secret">(gs_[^<]+)</code>', rotated.text)
    assert rotated.status_code == 200 and fresh and fresh.group(1) != shown.group(1)
    new_id = areas.execute("SELECT id FROM api_key WHERE replaces_id = %s",
                           (key_id[0],)).fetchone()
    assert new_id is not None
    assert client.post(f"/console/keys/{new_id[0]}/revoke",
                       data={"csrf_token": token}).status_code == 200
    other = areas.execute("SELECT id FROM api_key WHERE name = 'jiyang-bot'").fetchone()
    assert other is not None
    assert client.post(f"/console/keys/{other[0]}/revoke",
                       data={"csrf_token": token}).status_code == 404
    assert client.post(f"/console/keys/{new_id[0]}/revoke", data={}).status_code == 403
    actors = areas.execute("SELECT DISTINCT actor, user_id FROM audit_log WHERE action LIKE "
                           "'api_key.%%' AND key_id IS NULL AND actor <> 'command line'"
                           ).fetchall()
    assert actors == [("boss", people["boss"])]
    client.cookies.clear()
    assert sign_in(client, "ed").status_code == 303
    assert client.get("/console/keys").status_code == 403


def test_posters_page_prints_within_the_area_and_says_what_stands_in_the_way(
        client: TestClient, settings: Settings, keys: dict[str, str],
        people: dict[str, int]) -> None:
    for code, lon, lat in (("CP-1", 109.49, 18.26), ("CP-2", 109.50, 18.25),
                           ("CJ-1", 109.55, 18.27)):  # two in Tianya, one in Jiyang
        assert client.post("/v1/stations", headers={"Authorization": keys["admin"]},
                           json=station_body(code, lon, lat)).status_code == 201
    assert sign_in(client, "insp").status_code == 303  # any role prints, within its area
    form = client.get("/console/posters")
    assert form.status_code == 200 and form.headers["content-security-policy"] == STRICT_CSP
    assert re.findall(r'<option value="(\d+)">([^<]*)', form.text) == [
        (TIANYA, "天涯区 (460204) · 2 张")]  # its own district only, and how many pages
    assert "GEO_POSTER_MAX_PAGES" in form.text and 'name="test_print"' in form.text
    assert 'href="/console/posters"' in home(client).text  # linked from home and nav
    token = csrf_of(form.text)
    area = {"what": "area", "area": TIANYA, "size": "A5", "csrf_token": token}

    def post(**over: str) -> httpx.Response:
        return client.post("/console/posters", data={**area, **over})

    # No public address: the message and the test print the API has.
    no_address = post()
    assert no_address.status_code == 409 and "测试打印" in no_address.text
    printed = post(test_print="1")
    assert printed.status_code == 200 and printed.headers["content-type"] == "application/pdf"
    assert printed.headers["content-disposition"] == \
        'attachment; filename="posters-area-460204-A5.pdf"'
    text = [p.extract_text() for p in pypdf.PdfReader(io.BytesIO(printed.content)).pages]
    assert len(text) == 2 and "http://testserver/v1/checkin/CP-1" in text[0]

    settings.public_base_url = "https://stations.example.org"
    assert 'name="test_print"' not in client.get("/console/posters").text
    one = post(what="station", station="CP-2", size="A4")
    assert one.status_code == 200
    assert "https://stations.example.org/v1/checkin/CP-2" in pypdf.PdfReader(
        io.BytesIO(one.content)).pages[0].extract_text()

    outside = post(area="460203")
    assert outside.status_code == 403
    assert "您只能打印本人管辖区域（天涯区 (460204)）" in outside.text
    assert post(what="station", station="CJ-1").status_code == 403
    assert post(what="station", station="NOPE-9").status_code == 404
    assert post(size="A3").status_code == 422
    settings.poster_max_pages = 1
    assert "2 张，超过上限" in client.get("/console/posters").text
    capped = post()
    assert capped.status_code == 413 and "超过 1 座" in capped.text \
        and "GEO_POSTER_MAX_PAGES" in capped.text
    settings.poster_max_pages = 500
    app: Any = client.app
    app.state.poster_slots = DrawSlots(0)
    busy = post(what="station", station="CP-1")
    assert busy.status_code == 429 and "请 5 秒后再试" in busy.text
    assert busy.headers["retry-after"] == "5"
    app.state.poster_slots = DrawSlots(1)
    assert post(csrf_token="nope").status_code == 403
    en = client.post("/console/posters?lang=en", data={**area, "area": "460203"})
    assert "within your own area" in en.text
