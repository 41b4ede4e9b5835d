"""MkDocs hook: the manual's reference tables, written from the code at build time.

A page holds a marker such as ``<!-- generated:sheet-columns -->`` and the build
replaces it with a table made from the module that defines those things, so the
manual cannot drift from the code: the union sheet's columns (``sheet.py``), the
station fields (``schemas.py``), the demand file (``coverage/demand.py``), the
vocabularies (``catalogue.py``), the Chinese hours forms (``hours_cn.py``), the
command line (``cli.py``) and every HTTP operation of the OpenAPI document
(``create_app(...).openapi()``: the app is built, its lifespan never runs, so no
database is needed). An unknown marker fails the build.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError


def _bind_checkout() -> None:
    """Import ``geo_service`` from the checkout this manual belongs to.

    The tables must describe this checkout's code even where another copy of the
    package is installed (an editable install of a second worktree). MkDocs puts
    ``sys.path`` back as it was once this file is loaded, so the package is imported
    now; its modules are then found beside it, whatever the path says later.
    """
    root = str(Path(__file__).resolve().parents[1])
    sys.path.insert(0, root)
    importlib.import_module("geo_service")


_bind_checkout()

MARKER = re.compile(r"<!-- generated:([a-z0-9-]+) -->")
#: The schemas' "no control characters" pattern, said in words instead.
PLAIN_TEXT_PATTERN = r"^[^\x00-\x1f\x7f]*$"
METHODS = ("get", "put", "post", "patch", "delete", "head", "options")


def cell(value: object) -> str:
    """Text safe inside a Markdown table cell (one line, pipes escaped)."""
    text = " ".join(str(value).split())
    return text.replace("|", "\\|")


def code(value: object) -> str:
    """Inline code that survives pipes and backticks inside a table."""
    text = cell(value)
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def table(headers: Iterable[str], rows: Iterable[Iterable[object]]) -> str:
    heads = list(headers)
    lines = ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def schema_type(prop: Mapping[str, Any], defs: Mapping[str, Any] | None = None) -> str:
    """A JSON Schema property in a few words: type, enum, limits, format."""
    if "$ref" in prop:
        name = prop["$ref"].rsplit("/", 1)[-1]
        target = (defs or {}).get(name)
        return schema_type(target, defs) if target else name
    if "anyOf" in prop:
        parts = [schema_type(p, defs) for p in prop["anyOf"] if p.get("type") != "null"]
        nullable = any(p.get("type") == "null" for p in prop["anyOf"])
        return " or ".join(parts) + (" or null" if nullable else "")
    if "enum" in prop:
        return "one of " + ", ".join(f"`{v}`" for v in prop["enum"])
    kind = prop.get("type", "any")
    if kind == "array":
        kind = f"list of {schema_type(prop.get('items', {}), defs)}"
    words = [str(kind)]
    if "format" in prop:
        words.append(f"({prop['format']})")
    limits = []
    for key, sign in (("minimum", "≥"), ("exclusiveMinimum", ">"), ("maximum", "≤"),
                      ("exclusiveMaximum", "<")):
        if key in prop:
            limits.append(f"{sign} {prop[key]}")
    if "minLength" in prop and prop["minLength"] > 0:
        limits.append(f"at least {prop['minLength']} characters")
    if "maxLength" in prop:
        limits.append(f"at most {prop['maxLength']} characters")
    if "maxItems" in prop:
        limits.append(f"at most {prop['maxItems']} items")
    if prop.get("pattern") and prop["pattern"] != PLAIN_TEXT_PATTERN:
        limits.append(f"matching {code(prop['pattern'])}")
    return " ".join(words) + (f" ({', '.join(limits)})" if limits else "")


def fields_table(schema: Mapping[str, Any], extra_first: Iterable[tuple[str, ...]] = ()
                 ) -> str:
    """A model's fields: name, required, type and limits, default, description."""
    defs = schema.get("$defs", {})
    required = set(schema.get("required", ()))
    rows: list[tuple[str, ...]] = list(extra_first)
    for name, prop in schema["properties"].items():
        default = prop.get("default")
        rows.append((f"`{name}`", "yes 必填" if name in required else "",
                     schema_type(prop, defs),
                     "" if default is None else code(default),
                     prop.get("description", "")))
    return table(("column 列", "required 必填", "type 类型", "default 默认", "meaning 含义"),
                 rows)


# --- the generators, one per marker ------------------------------------------------


def sheet_columns() -> str:
    from geo_service.domain.catalogue import AMENITY_BY_CODE
    from geo_service.domain.sheet import SHEET_COLUMNS, is_required

    rows = []
    for col in SHEET_COLUMNS:
        if col.key.startswith("yes:"):
            field = f"`amenities` ∋ `{AMENITY_BY_CODE[col.key[4:]].code}`"
        elif col.key in ("extras", "crs", "district_ref"):
            field = {"extras": "`amenities` (other)", "crs": "(row's coordinate system)",
                     "district_ref": "`district`, `district_code`"}[col.key]
        else:
            field = f"`{col.key}`"
        rows.append((f"**{col.header}**", "是 *" if is_required(col) else "",
                     "、".join(col.aliases), field, col.note, col.values))
    return table(("表头 Header", "必填 Required", "别名 Aliases", "字段 Field", "说明 What",
                  "可填值 Accepted"), rows)


def other_headers() -> str:
    from geo_service.domain.sheet import OTHER_HEADERS

    return table(("字段 Field", "中文表头 Chinese headers"),
                 ((f"`{k}`", "、".join(v)) for k, v in OTHER_HEADERS.items()))


def station_fields() -> str:
    from geo_service.domain.schemas import StationCreate

    return fields_table(StationCreate.model_json_schema(),
                        [("`code`", "yes 必填", "string (letters, digits, `-_.`)", "",
                          "the station's stable public id; a known code updates that station")])


def demand_columns() -> str:
    """The demand sheet as a clerk fills it: Chinese header, aliases, the field it fills
    (the English header that also works), what it means and the words it takes."""
    from geo_service.coverage.demand_sheet import DEMAND_COLUMNS, REQUIRED

    return table(("表头 Header", "必填 Required", "别名 Aliases", "字段 Field", "说明 What",
                  "可填值 Accepted"),
                 ((f"**{c.header}**", "是 *" if c.key in REQUIRED else "",
                   "、".join(c.aliases), f"`{c.key}`", c.note, c.values)
                  for c in DEMAND_COLUMNS))


def worker_types() -> str:
    """Every word the 工种 column takes, by the worker type it means."""
    from geo_service.coverage.demand_sheet import WORKER_TYPE_LABELS, WORKER_TYPE_WORDS

    return table(("工种 Worker type", "代码 Code", "也可写作 Also accepted"),
                 ((f"{zh} {en}", f"`{code}`",
                   "、".join(w for w, c in WORKER_TYPE_WORDS.items() if c == code and w != code))
                  for code, (zh, en) in WORKER_TYPE_LABELS.items()))


def amenities() -> str:
    from geo_service.domain.catalogue import AMENITIES

    return table(("code 代码", "中文", "English", "十个一 ten ones"),
                 ((f"`{a.code}`", a.label_zh, a.label_en, "是" if a.ten_ones else "")
                  for a in AMENITIES))


def _vocabulary(names: Mapping[Any, str], words: Mapping[str, Any]) -> str:
    rows = []
    for value, zh in names.items():
        others = [w for w, v in words.items() if v == value and w not in (zh, value.value)]
        rows.append((f"`{value.value}`", zh, "、".join(others)))
    return table(("code 代码", "中文", "also read 也接受"), rows)


def host_types() -> str:
    from geo_service.domain.catalogue import HOST_TYPE_ZH
    from geo_service.domain.sheet import HOST_TYPE_WORDS

    return _vocabulary(HOST_TYPE_ZH, HOST_TYPE_WORDS)


def statuses() -> str:
    from geo_service.domain.catalogue import STATUS_ZH
    from geo_service.domain.sheet import STATUS_WORDS

    return _vocabulary(STATUS_ZH, STATUS_WORDS)


def coordinate_words() -> str:
    from geo_service.domain.sheet import CRS_CHOICES, CRS_WORDS

    return table(("坐标系 CRS", "written as 可写作"),
                 ((CRS_CHOICES[crs], "、".join(w for w, c in CRS_WORDS.items() if c is crs))
                  for crs in CRS_CHOICES))


def yes_no_words() -> str:
    from geo_service.domain.sheet import NO_WORDS, YES_WORDS

    return table(("是 yes", "否 no"), [("、".join(sorted(YES_WORDS)),
                                        "、".join(sorted(NO_WORDS)))])


def hours_cn() -> str:
    from geo_service.hours.chinese import EXAMPLES

    return table(("写法 Written", "存为 Stored (OSM)"),
                 ((code(zh), code(osm)) for zh, osm in EXAMPLES))


def cli() -> str:
    """Every ``geo-service`` command with its usage line and help, from the parser."""
    from geo_service.cli import build_parser

    out: list[str] = []

    def walk(parser: argparse.ArgumentParser, path: list[str], help_text: str) -> None:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            usage = " ".join(parser.format_usage().split())
            out.append(f"### `{' '.join(path)}`\n\n{help_text}\n\n```text\n"
                       f"{usage.removeprefix('usage: ')}\n```\n")
            return
        helps = {a.dest: a.help or "" for a in subs[0]._choices_actions}
        for name, child in subs[0].choices.items():
            walk(child, [*path, name], helps.get(name, ""))

    walk(build_parser(), ["geo-service"], "")
    return "\n".join(out)


def _openapi() -> dict[str, Any]:
    from geo_service.infra.settings import Settings
    from geo_service.web.app import create_app

    # Built, never started: no pool opens, no key file is written.
    settings = Settings(database_url="postgresql://docs@localhost/docs",
                        feedback_hash_key="manual-build-key-never-used-for-any-hash")
    return create_app(settings).openapi()


def _resolve(spec: Mapping[str, Any], obj: Mapping[str, Any]) -> Mapping[str, Any]:
    while "$ref" in obj:
        node: Any = spec
        for part in obj["$ref"].lstrip("#/").split("/"):
            node = node[part]
        obj = node
    return obj


def _body(spec: Mapping[str, Any], content: Mapping[str, Any]) -> str:
    parts = []
    for media, item in content.items():
        schema = item.get("schema", {})
        name = schema["$ref"].rsplit("/", 1)[-1] if "$ref" in schema else schema_type(schema)
        parts.append(f"`{media}` {name}")
    return "; ".join(parts)


def api_operations() -> str:
    """Every operation of the OpenAPI document, grouped by tag."""
    spec = _openapi()
    by_tag: dict[str, list[str]] = {}
    for path, item in spec["paths"].items():
        for method in METHODS:
            op = item.get(method)
            if op is None:
                continue
            text = [f"### {method.upper()} `{path}`\n", f"**{op.get('summary', '')}**\n"]
            if op.get("description"):
                text.append(op["description"].strip() + "\n")
            params = [_resolve(spec, p) for p in (*item.get("parameters", ()),
                                                   *op.get("parameters", ()))]
            if params:
                text.append(table(("parameter 参数", "in", "required", "type", "meaning"), (
                    (f"`{p['name']}`", p["in"], "yes" if p.get("required") else "",
                     schema_type(p.get("schema", {}), spec.get("components", {})
                                 .get("schemas")),
                     p.get("description", "")) for p in params)))
            if "requestBody" in op:
                body = _resolve(spec, op["requestBody"])
                text.append(f"Request body: {_body(spec, body.get('content', {}))}"
                            f"{' (required)' if body.get('required') else ''}\n")
            text.append(table(("status", "meaning", "body"), (
                (f"`{status}`", _resolve(spec, r).get("description", ""),
                 _body(spec, _resolve(spec, r).get("content", {})))
                for status, r in op.get("responses", {}).items())))
            tag = (op.get("tags") or ["other"])[0]
            by_tag.setdefault(tag, []).append("\n".join(text))
    out = [f"OpenAPI {spec['openapi']} · {spec['info']['title']} {spec['info']['version']}"
           f" · {sum(len(v) for v in by_tag.values())} operations.\n"]
    for tag in sorted(by_tag):
        out.append(f"## {tag}\n")
        out.extend(by_tag[tag])
    return "\n".join(out)


GENERATORS: dict[str, Callable[[], str]] = {
    "sheet-columns": sheet_columns,
    "other-headers": other_headers,
    "station-fields": station_fields,
    "demand-columns": demand_columns,
    "worker-types": worker_types,
    "amenities": amenities,
    "host-types": host_types,
    "statuses": statuses,
    "coordinate-words": coordinate_words,
    "yes-no-words": yes_no_words,
    "hours-cn": hours_cn,
    "cli": cli,
    "api-operations": api_operations,
}


#: A line break between two Chinese characters (or full-width punctuation) in the source,
#: with the next line's indentation. Chinese puts no space between words, so such a soft
#: break must vanish instead of showing as a space in the middle of a sentence.
CJK = "\u3000-\u303f\u3400-\u9fff\uff00-\uffef"
CJK_BREAK = re.compile(f"(?<=[{CJK}])\n[ \t]*(?=[{CJK}])")


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Replace each ``<!-- generated:NAME -->`` with its table (unknown names fail), and
    join Chinese lines broken in the source."""
    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in GENERATORS:
            raise PluginError(f"{page.file.src_path}: no generator for marker {name!r}")
        return GENERATORS[name]()

    return CJK_BREAK.sub("", MARKER.sub(replace, markdown))
