"""The console's pages as HTML strings: Chinese first, English by ``?lang=en``.

Plain server-rendered forms and no script at all, so the service's strict policy
(``STRICT_CSP``: no script, forms only to this origin) fits every page. Every value
from the database or the client goes through :func:`html.escape`; every form that
changes something carries the session's CSRF token in a hidden field.
"""

from __future__ import annotations

import datetime as dt
from html import escape
from typing import Any

from geo_service.domain.accounts import MIN_PASSWORD
from geo_service.domain.auth import ROLES

LANGS = ("zh", "en")

_T: dict[str, tuple[str, str]] = {
    "console": ("工会驿站管理台", "Union station console"),
    "sign_in": ("登录", "Sign in"),
    "name": ("账号", "Account name"),
    "password": ("密码", "Password"),
    "home": ("首页", "Home"),
    "you": ("您好，{who}", "Signed in as {who}"),
    "role": ("角色", "Role"),
    "area": ("区域", "Area"),
    "everywhere": ("全国（所有区域）", "Everywhere (all areas)"),
    "admin": ("管理员", "admin"),
    "editor": ("编辑", "editor"),
    "inspector": ("巡查员", "inspector"),
    "session_ends": ("本次登录最晚于 {at} 失效（闲置会更早失效）",
                     "This session ends by {at} (sooner when idle)"),
    "import": ("批量导入", "Import"),
    "stations": ("驿站", "Stations"),
    "new_station": ("新建驿站", "New station"),
    "reports": ("工人报告", "Worker reports"),
    "posters": ("海报", "Posters"),
    "photos": ("照片", "Photos"),
    "planning": ("覆盖规划", "Coverage planning"),
    "demand": ("需求数据", "Demand data"),
    "bulletin": ("每月通报", "Monthly bulletin"),
    "accounts": ("账号管理", "Accounts"),
    "change_password": ("修改密码", "Change password"),
    "current_password": ("当前密码", "Current password"),
    "new_password": ("新密码（至少 {n} 个字符）", "New password (at least {n} characters)"),
    "sign_out": ("退出登录", "Sign out"),
    "sign_out_all": ("在所有设备上退出", "Sign out everywhere"),
    "signed_out": ("您已退出登录。", "You are signed out."),
    "password_changed": ("密码已修改，其他设备上的登录已失效。",
                         "Password changed; your other sessions have ended."),
    "display_name": ("显示名称", "Display name"),
    "first_password": ("初始密码（至少 {n} 个字符）", "First password (at least {n} characters)"),
    "create": ("创建账号", "Create account"),
    "created": ("已创建账号 {name}。", "Account {name} created."),
    "disable": ("停用", "Disable"),
    "disabled": ("已停用", "disabled"),
    "active": ("正常", "active"),
    "locked": ("暂时锁定", "locked for now"),
    "state": ("状态", "State"),
    "actions": ("操作", "Actions"),
    "reset": ("重置密码", "Reset password"),
    "one_time": ("账号 {name} 的新密码（只显示这一次，请当面或通过安全渠道交给本人）：",
                 "New password for {name} (shown this once: hand it over in person or "
                 "over a safe channel):"),
    "done_disable": ("已停用账号 {name}，其登录已全部失效。",
                     "Account {name} disabled; its sessions have ended."),
    "own_area": ("只能为您的区域及其下级区域创建账号。",
                 "You can create accounts for your area and the areas within it only."),
    "no_accounts": ("还没有账号。", "No accounts yet."),
    "error": ("出错了", "Something went wrong"),
    "keys": ("API 密钥", "API keys"),
    "keys_note": ("API 密钥供程序使用（导入脚本、其他系统）；人员请使用账号登录。",
                  "API keys are for machines (import scripts, other systems); people sign "
                  "in with an account."),
    "issue_key": ("签发密钥", "Issue key"),
    "key_name": ("密钥名称", "Key name"),
    "expires_in": ("有效期", "Expires in"),
    "never": ("不过期", "never"),
    "days": ("{n} 天", "{n} days"),
    "expires_at": ("到期时间", "Expires"),
    "last_used": ("最近使用", "Last used"),
    "revoke": ("吊销", "Revoke"),
    "rotate": ("轮换", "Rotate"),
    "grace": ("旧密钥保留", "Old key keeps working"),
    "grace_0": ("立即失效", "stops now"),
    "grace_1h": ("1 小时", "1 hour"),
    "grace_1d": ("1 天", "1 day"),
    "revoked": ("已吊销", "revoked"),
    "expired": ("已过期", "expired"),
    "key_once": ("新密钥 {name}（只显示这一次，请立即保存；系统只保存其哈希）：",
                 "New key {name} (shown this once: store it now, only a hash is kept):"),
    "done_revoke": ("已吊销密钥 {name}。", "Key {name} revoked."),
    "no_keys": ("还没有密钥。", "No keys yet."),
    "lang_other": ("English", "中文"),
    "skip": ("跳到正文", "Skip to content"),
    "main_nav": ("主导航", "Main"),
    "sample_note": ("区域名称旁标“示例”的为示例数据。", "Areas marked “sample” are sample data."),
    "sample": ("示例", "sample"),
}


def t(lang: str, key: str, **values: Any) -> str:
    """The text ``key`` in ``lang`` (escaped values filled in)."""
    text = _T[key][LANGS.index(lang)]
    return text.format(**{k: escape(str(v)) for k, v in values.items()})


def href(path: str, lang: str) -> str:
    return path + ("?lang=en" if lang == "en" else "")


_STYLE = """
:root{color-scheme:light;font-family:system-ui,"Noto Sans CJK SC","PingFang SC",sans-serif}
body{margin:0;background:#f6f7f9;color:#1b1f24;line-height:1.5}
header{background:#8b1a1a;color:#fff;padding:.6rem 1rem;display:flex;flex-wrap:wrap;
 gap:.5rem 1.2rem;align-items:center}
header a{color:#fff}nav a{margin-right:.8rem}header .brand{font-weight:700;margin-right:auto}
main{max-width:60rem;margin:1rem auto;padding:0 1rem}
form.card,section.card{background:#fff;border:1px solid #cfd4da;border-radius:6px;padding:1rem;
 margin:0 0 1rem}
label{display:block;margin:.5rem 0 .2rem;font-weight:600}
input,select{font:inherit;padding:.45rem;border:1px solid #6b7480;border-radius:4px;
 width:100%;max-width:22rem;box-sizing:border-box}
button{font:inherit;padding:.45rem 1rem;margin-top:.7rem;border-radius:4px;border:1px solid
 #7a1616;background:#8b1a1a;color:#fff;cursor:pointer}
button.plain{background:#fff;color:#7a1616}
form.card button{display:block}.inline{display:inline}.inline select{width:auto}
th{white-space:nowrap}.inline button{margin:0 .3rem 0 0}
.scroll{overflow-x:auto}table{border-collapse:collapse;width:100%;background:#fff}
th,td{border:1px solid #cfd4da;padding:.4rem;text-align:left;vertical-align:top}
.msg{padding:.6rem 1rem;border-radius:4px;background:#e7f3e9;border:1px solid #2e7d32}
.err{padding:.6rem 1rem;border-radius:4px;background:#fdecea;border:1px solid #b3261e}
.tag{font-size:.85em;border:1px solid #6b4b00;color:#6b4b00;border-radius:3px;padding:0 .3em}
code.secret{font-size:1.2em;background:#fff;border:1px dashed #333;padding:.2rem .5rem}
label.check{font-weight:400}label.check input{width:auto}
.sr-only{position:absolute;left:-9999px}.sr-only:focus{left:1rem;top:.5rem;background:#fff;
 color:#000;padding:.3rem}
textarea{font:inherit;padding:.45rem;border:1px solid #6b7480;border-radius:4px;width:100%;
 min-width:8rem;box-sizing:border-box}
form.filters{display:flex;flex-wrap:wrap;gap:0 1rem;align-items:end}
form.filters label{margin-top:0}form.filters select{width:auto}
form.decide label{margin-top:0;font-weight:400}td.when{white-space:nowrap}
ul.notes{margin:0;padding-left:1.1rem}
table.queue th{white-space:normal}
form.filters>div{margin:0 0 .5rem}a.button{display:inline-block;padding:.45rem 1rem;
 border-radius:4px;background:#8b1a1a;color:#fff}nav.pager{margin:.6rem 0}
nav.pager>*{margin-right:1rem}p.small{font-size:.9em;color:#3d4550}
table.stations td:nth-child(2){min-width:7rem}ul.ten{list-style:none;padding-left:0}
ul.ten li.yes span{color:#1b5e20}ul.ten li.no span{color:#b3261e}
table.bulletin th{white-space:normal}
p.latest{margin:0 0 .4rem}form.decide .buttons button{margin:.3rem .3rem 0 0}
"""


def page(lang: str, title: str, body: str, *, path: str, who: str | None = None,
         csrf: str | None = None, admin: bool = False, editor: bool = False) -> str:
    """A whole page: the header (the console's name, links when signed in, the language
    switch), the body, no script. ``editor``: the person may work the reports queue
    (admins may too)."""
    other = "zh" if lang == "en" else "en"
    nav = ""
    if who is not None and csrf is not None:
        links = [(t(lang, "home"), "/console/"), (t(lang, "stations"), "/console/stations"),
                 *([(t(lang, "reports"), "/console/reports"),
                    (t(lang, "import"), "/console/import")] if admin or editor else []),
                 *([(t(lang, "demand"), "/console/demand")] if admin or editor else []),
                 *([(t(lang, "bulletin"), "/console/bulletin")] if admin or editor else []),
                 *([(t(lang, "accounts"), "/console/accounts"), (t(lang, "keys"), "/console/keys")]
                   if admin else []),
                 (t(lang, "posters"), "/console/posters"),
                 (t(lang, "photos"), "/console/photos"),
                 (t(lang, "planning"), "/console/planning"),
                 (t(lang, "change_password"), "/console/password")]
        nav = (f'<nav aria-label="{t(lang, "main_nav")}">'
               + " ".join(f'<a href="{href(h, lang)}">{escape(n)}</a>' for n, h in links)
               + "</nav>"
               + post_form(lang, "/console/sign-out", csrf, t(lang, "sign_out"), "plain"))
    # ``path`` may carry a page's own query (its filters), kept across the switch.
    switch = path + ("" if other == "zh" else ("&" if "?" in path else "?") + "lang=en")
    return (f'<!doctype html><html lang="{"zh-CN" if lang == "zh" else "en"}"><head>'
            '<meta charset="utf-8"><meta name="viewport" content="width=device-width,'
            f'initial-scale=1"><title>{escape(title)} · {t(lang, "console")}</title>'
            f"<style>{_STYLE}</style></head><body>"
            f'<a class="sr-only" href="#main">{t(lang, "skip")}</a>'
            f'<header><span class="brand">{t(lang, "console")}</span>{nav}'
            f'<a href="{escape(switch)}" lang="{"en" if other == "en" else "zh-CN"}" '
            f'hreflang="{"en" if other == "en" else "zh-CN"}">{t(lang, "lang_other")}</a>'
            f'</header><main id="main"><h1>{escape(title)}</h1>{body}</main></body></html>')


def csrf_field(csrf: str) -> str:
    return f'<input type="hidden" name="csrf_token" value="{escape(csrf)}">'


def post_form(lang: str, action: str, csrf: str, label: str, cls: str = "") -> str:
    return (f'<form class="inline" method="post" action="{href(action, lang)}">'
            f'{csrf_field(csrf)}<button type="submit"'
            f'{f" class={chr(34)}{cls}{chr(34)}" if cls else ""}>{escape(label)}</button></form>')


def notes(message: str | None, error: str | None) -> str:
    out = ""
    if message:
        out += f'<p class="msg" role="status">{message}</p>'
    if error:
        out += f'<p class="err" role="alert">{escape(error)}</p>'
    return out


def sign_in_page(lang: str, csrf: str, *, name: str = "", message: str | None = None,
                 error: str | None = None) -> str:
    body = (notes(message, error)
            + f'<form class="card" method="post" action="{href("/console/sign-in", lang)}">'
            + csrf_field(csrf)
            + f'<label for="name">{t(lang, "name")}</label>'
            + f'<input id="name" name="name" autocomplete="username" required maxlength="64" '
            f'value="{escape(name)}">'
            + f'<label for="password">{t(lang, "password")}</label>'
            + '<input id="password" name="password" type="password" required '
            'autocomplete="current-password">'
            + f'<button type="submit">{t(lang, "sign_in")}</button></form>')
    return page(lang, t(lang, "sign_in"), body, path="/console/")


def area_label(lang: str, area: dict[str, Any] | None, code: str | None) -> str:
    """An area as people read it (name, code; "sample" when it is sample data)."""
    if code is None:
        return t(lang, "everywhere")
    if area is None:
        return escape(code)
    name = area["name_en"] if lang == "en" and area.get("name_en") else area["name"]
    tag = f' <span class="tag">{t(lang, "sample")}</span>' if area.get("sample") else ""
    return f"{escape(name)} ({escape(code)}){tag}"


def home_page(lang: str, csrf: str, *, who: str, role: str, area: str,
              ends: dt.datetime, admin: bool) -> str:
    links = [f'<li><a href="{href(p, lang)}">{t(lang, k)}</a></li>'
             for k, p in (("posters", "/console/posters"), ("photos", "/console/photos"),
                          ("planning", "/console/planning"),
                          ("change_password", "/console/password"))]
    if admin:
        links[:0] = [f'<li><a href="{href(p, lang)}">{t(lang, k)}</a></li>'
                     for k, p in (("accounts", "/console/accounts"), ("keys", "/console/keys"))]
    editor = role == "editor"
    if admin or editor:
        links[:0] = [f'<li><a href="{href(p, lang)}">{t(lang, k)}</a></li>'
                     for k, p in (("new_station", "/console/stations/new"),
                                  ("reports", "/console/reports"), ("import", "/console/import"),
                                  ("demand", "/console/demand"), ("bulletin", "/console/bulletin"))]
    links[:0] = [f'<li><a href="{href("/console/stations", lang)}">{t(lang, "stations")}'
                 "</a></li>"]
    body = (f'<section class="card"><p>{t(lang, "you", who=who)}</p>'
            f'<p>{t(lang, "role")}: {t(lang, role)} · {t(lang, "area")}: {area}</p>'
            f'<p>{t(lang, "session_ends", at=f"{ends:%Y-%m-%d %H:%M} ({ends.tzinfo})")}</p>'
            "</section>"
            f'<section class="card"><ul>{"".join(links)}</ul>'
            + post_form(lang, "/console/sign-out-everywhere", csrf, t(lang, "sign_out_all"),
                         "plain")
            + "</section>")
    return page(lang, t(lang, "home"), body, path="/console/", who=who, csrf=csrf, admin=admin,
                editor=editor)


def password_page(lang: str, csrf: str, *, who: str, admin: bool, editor: bool = False,
                  message: str | None = None, error: str | None = None) -> str:
    body = (notes(message, error)
            + f'<form class="card" method="post" action="{href("/console/password", lang)}">'
            + csrf_field(csrf)
            + f'<label for="current_password">{t(lang, "current_password")}</label>'
            + '<input id="current_password" name="current_password" type="password" required '
            'autocomplete="current-password">'
            + f'<label for="new_password">{t(lang, "new_password", n=MIN_PASSWORD)}</label>'
            + f'<input id="new_password" name="new_password" type="password" required '
            f'minlength="{MIN_PASSWORD}" autocomplete="new-password">'
            + f'<button type="submit">{t(lang, "change_password")}</button></form>')
    return page(lang, t(lang, "change_password"), body, path="/console/password", who=who,
                csrf=csrf, admin=admin, editor=editor)


def accounts_page(lang: str, csrf: str, *, who: str, users: list[dict[str, Any]],
                  areas: list[dict[str, Any]], own_id: int | None, own_area: str | None,
                  message: str | None = None, error: str | None = None) -> str:
    by_code = {a["code"]: a for a in areas}
    now = dt.datetime.now(dt.UTC)
    rows = []
    for u in users:
        state = ("disabled" if u["disabled_at"] else
                 "locked" if u["locked_until"] and u["locked_until"] > now else "active")
        actions = ""
        if u["id"] != own_id and not u["disabled_at"]:
            base = f"/console/accounts/{u['id']}"
            actions = (post_form(lang, base + "/reset-password", csrf, t(lang, "reset"), "plain")
                       + post_form(lang, base + "/disable", csrf, t(lang, "disable"), "plain"))
        rows.append(f"<tr><td>{escape(u['name'])}</td><td>{escape(u['display_name'])}</td>"
                    f"<td>{t(lang, u['role'])}</td>"
                    f"<td>{area_label(lang, by_code.get(u['area_code']), u['area_code'])}</td>"
                    f"<td>{t(lang, state)}</td><td>{actions}</td></tr>")
    heads = "".join(f'<th scope="col">{t(lang, k)}</th>' for k in
                    ("name", "display_name", "role", "area", "state", "actions"))
    table = (f'<div class="scroll" role="region" aria-label="{t(lang, "accounts")}" '
             f'tabindex="0"><table><thead><tr>{heads}</tr></thead><tbody>{"".join(rows)}'
             "</tbody></table></div>"
             if rows else f"<p>{t(lang, 'no_accounts')}</p>")
    # Least power first, so the form's default is an inspector.
    role_opts = "".join(f'<option value="{r}">{t(lang, r)}</option>' for r in reversed(ROLES))
    area_opts = (f'<option value="">{t(lang, "everywhere")}</option>'
                 if own_area is None else "") + "".join(f'<option value="{escape(a["code"])}">'
                        f'{area_label(lang, a, a["code"])}</option>' for a in areas)
    sample = any(a.get("sample") for a in areas)
    form = (f'<form class="card" method="post" action="{href("/console/accounts", lang)}">'
            f'<h2>{t(lang, "create")}</h2><p>{t(lang, "own_area")}</p>' + csrf_field(csrf)
            + f'<label for="new_name">{t(lang, "name")}</label>'
            '<input id="new_name" name="name" required maxlength="64" autocomplete="off">'
            f'<label for="new_display">{t(lang, "display_name")}</label>'
            '<input id="new_display" name="display_name" maxlength="100" autocomplete="off">'
            f'<label for="new_role">{t(lang, "role")}</label>'
            f'<select id="new_role" name="role">{role_opts}</select>'
            f'<label for="new_area">{t(lang, "area")}</label>'
            f'<select id="new_area" name="area_code">{area_opts}</select>'
            f'<label for="new_password">{t(lang, "first_password", n=MIN_PASSWORD)}</label>'
            f'<input id="new_password" name="password" type="password" required '
            f'minlength="{MIN_PASSWORD}" autocomplete="new-password">'
            f'<button type="submit">{t(lang, "create")}</button></form>')
    body = (notes(message, error) + f'<section class="card">{table}'
            + (f'<p>{t(lang, "sample_note")}</p>' if sample else "") + "</section>" + form)
    return page(lang, t(lang, "accounts"), body, path="/console/accounts", who=who, csrf=csrf,
                admin=True)


def error_page(lang: str, message: str) -> str:
    return page(lang, t(lang, "error"), f'<p class="err" role="alert">{escape(message)}</p>'
                f'<p><a href="{href("/console/", lang)}">{t(lang, "home")}</a></p>',
                path="/console/")
