"""The console's API keys page: the keys an admin manages, issue, revoke, rotate.

Keys stay for machines; the page is the same service as ``/v1/keys`` and
``geo-service keys`` (:mod:`geo_service.domain.auth`), with the person's principal,
so an admin reaches the keys of its own area and below, and the audit trail names the
person. A new token is shown once, in the answer to the form that made it.
"""

from __future__ import annotations

import datetime as dt
from html import escape
from typing import Any
from zoneinfo import ZoneInfo

from geo_service.console.pages import (
    area_label,
    csrf_field,
    href,
    notes,
    page,
    post_form,
    t,
)
from geo_service.domain.auth import ROLES

#: The lifetimes the form offers (``auth.parse_duration`` values; "" never expires).
LIFETIMES = ("", "30d", "90d", "365d")
#: How long a rotated key keeps working, as the form offers it.
GRACES = (("0m", "grace_0"), ("1h", "grace_1h"), ("1d", "grace_1d"))


def _when(value: dt.datetime | None, tz: ZoneInfo) -> str:
    """On the clerk's clock (the service's zone), as the other console pages show times:
    the database hands them over in its own zone, UTC on most servers."""
    return "-" if value is None else f"{value.astimezone(tz):%Y-%m-%d %H:%M}"


def _row(lang: str, csrf: str, key: dict[str, Any], areas: dict[str, Any],
         tz: ZoneInfo) -> str:
    actions = ""
    if key["state"] == "active":
        base = f"/console/keys/{key['id']}"
        graces = "".join(f'<option value="{v}">{t(lang, k)}</option>' for v, k in GRACES)
        label = f'{t(lang, "grace")} ({escape(key["name"])})'
        actions = (post_form(lang, base + "/revoke", csrf, t(lang, "revoke"), "plain")
                   + f'<form class="inline" method="post" action="{href(base + "/rotate", lang)}">'
                   + csrf_field(csrf)
                   + f'<select name="grace" aria-label="{label}">{graces}</select> '
                   f'<button type="submit" class="plain">{t(lang, "rotate")}</button></form>')
    return (f"<tr><td>{key['id']}</td><td>{escape(key['name'])}</td>"
            f"<td>{t(lang, key['role'])}</td>"
            f"<td>{area_label(lang, areas.get(key['area_code']), key['area_code'])}</td>"
            f"<td>{t(lang, key['state'])}</td><td>{_when(key['expires_at'], tz)}</td>"
            f"<td>{_when(key['last_used_at'], tz)}</td><td>{actions}</td></tr>")


def keys_page(lang: str, csrf: str, *, who: str, keys: list[dict[str, Any]],
              areas: list[dict[str, Any]], own_area: str | None, tz: ZoneInfo,
              message: str | None = None, error: str | None = None) -> str:
    by_code = {a["code"]: a for a in areas}
    heads = '<th scope="col">ID</th>' + "".join(f'<th scope="col">{t(lang, k)}</th>' for k in (
        "key_name", "role", "area", "state", "expires_at", "last_used", "actions"))
    rows = "".join(_row(lang, csrf, k, by_code, tz) for k in keys)
    table = (f'<div class="scroll" role="region" aria-label="{t(lang, "keys")}" tabindex="0">'
             f"<table><thead><tr>{heads}</tr></thead><tbody>{rows}</tbody></table></div>"
             if keys else f"<p>{t(lang, 'no_keys')}</p>")
    role_opts = "".join(f'<option value="{r}">{t(lang, r)}</option>' for r in reversed(ROLES))
    area_opts = (f'<option value="">{t(lang, "everywhere")}</option>'
                 if own_area is None else "") + "".join(
        f'<option value="{escape(a["code"])}">{area_label(lang, a, a["code"])}</option>'
        for a in areas)
    life_opts = "".join(
        f'<option value="{v}">{t(lang, "days", n=v[:-1]) if v else t(lang, "never")}</option>'
        for v in LIFETIMES)
    form = (f'<form class="card" method="post" action="{href("/console/keys", lang)}">'
            f'<h2>{t(lang, "issue_key")}</h2>' + csrf_field(csrf)
            + f'<label for="key_name">{t(lang, "key_name")}</label>'
            '<input id="key_name" name="name" required maxlength="100" autocomplete="off">'
            f'<label for="key_role">{t(lang, "role")}</label>'
            f'<select id="key_role" name="role">{role_opts}</select>'
            f'<label for="key_area">{t(lang, "area")}</label>'
            f'<select id="key_area" name="area_code">{area_opts}</select>'
            f'<label for="key_expires">{t(lang, "expires_in")}</label>'
            f'<select id="key_expires" name="expires_in">{life_opts}</select>'
            f'<button type="submit">{t(lang, "issue_key")}</button></form>')
    body = (notes(message, error) + f'<section class="card"><p>{t(lang, "keys_note")}</p>'
            + table + "</section>" + form)
    return page(lang, t(lang, "keys"), body, path="/console/keys", who=who, csrf=csrf,
                admin=True)
