"""What may go into an HTML page we serve: JSON inside ``<script>``, and the page's CSP.

Station names, addresses and hours are typed by district editors and imported
in bulk, and the maps and the check-in page carry them inside ``<script>``
blocks. Escaping ``</`` is not enough there: ``<!--<script>`` in a string puts
the HTML parser into its "script data double escaped" state, where the block's
own ``</script>`` no longer ends it and the rest of the page is swallowed. So
every JSON value embedded in a page goes through :func:`json_for_html`, which
writes ``<``, ``>`` and ``&`` as ``\\u003c``, ``\\u003e`` and ``\\u0026`` (the
parser then never sees markup) and U+2028/U+2029 as escapes (line terminators
in older JavaScript). The result is still exactly the same JSON value.

Pages then say which of their inline scripts may run: :func:`script_hashes`
lists a CSP ``'sha256-…'`` source per inline script, so an injected script,
even one that got past the escaping, is refused by the browser.

Example
-------
>>> json_for_html({"name": "</script><!--"})
'{"name":"\\\\u003c/script\\\\u003e\\\\u003c!--"}'
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterable
from typing import Any

__all__ = ["json_for_html", "page_csp", "script_hashes"]

_UNSAFE = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026",
                         "\u2028": "\\u2028", "\u2029": "\\u2029"})
# Inline scripts that run: no src attribute, and not a data block (a JSON type never runs).
_INLINE_SCRIPT = re.compile(r"<script(?P<attrs>[^>]*)>(?P<body>.*?)</script\s*>",
                            re.DOTALL | re.IGNORECASE)
_DATA_TYPE = re.compile(r"""\btype\s*=\s*["']?application/json""", re.IGNORECASE)


def json_for_html(value: Any) -> str:
    """``value`` as JSON that can sit in a ``<script>`` block (or any HTML) unchanged.

    Non-JSON values (dates) are written with ``str``, as the maps expect.
    """
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    return text.translate(_UNSAFE)


def script_hashes(page: str) -> list[str]:
    """CSP sources (``'sha256-…'``) of every inline script of ``page`` that would run.

    Scripts with ``src`` are allowed by origin instead, and JSON data blocks
    never run; both are skipped. The regex reads pages we wrote ourselves,
    where no script body contains ``</script`` (:func:`json_for_html`, and
    inlined assets escape it).
    """
    out: list[str] = []
    for m in _INLINE_SCRIPT.finditer(page):
        attrs = m["attrs"]
        if re.search(r"\bsrc\s*=", attrs, re.IGNORECASE) or _DATA_TYPE.search(attrs):
            continue
        digest = hashlib.sha256(m["body"].encode()).digest()
        source = f"'sha256-{base64.b64encode(digest).decode()}'"
        if source not in out:
            out.append(source)
    return out


def page_csp(page: str, *, scripts: Iterable[str] = (), styles: Iterable[str] = (),
             images: Iterable[str] = (), connect: Iterable[str] = (),
             meta: bool = False) -> str:
    """The Content-Security-Policy of a page we wrote.

    Scripts run only from the given sources and as the page's own inline
    scripts (by hash), never injected ones; inline styles are allowed (Leaflet
    and the maps' icons set ``style`` attributes); images from ``data:`` and the
    given sources; nothing else loads. ``meta=True`` leaves out
    ``frame-ancestors``, which a ``<meta>`` policy may not carry (the header
    sends it).
    """
    script_src = [*scripts, *script_hashes(page)] or ["'none'"]
    parts = [
        "default-src 'none'",
        "script-src " + " ".join(script_src),
        "style-src " + " ".join([*styles, "'unsafe-inline'"]),
        "img-src " + " ".join(["data:", *images]),
        "connect-src " + " ".join(list(connect) or ["'none'"]),
        "base-uri 'none'",
        "form-action 'self'",
        "object-src 'none'",
    ]
    if not meta:
        parts.append("frame-ancestors 'none'")
    return "; ".join(parts)
