"""The rules every import follows, whatever it imports, and the upload that feeds it.

All-or-nothing by default: one bad row and nothing is written, and the report
names every bad row, field and reason; ``skip_bad_rows`` writes the good rows.
A room supplies the validator (rows → records and problems) and the writer
(records → the database, filling the report's counts); :func:`run_import`
supplies the transaction, the dry run and the bounded report.

:func:`import_upload` is the HTTP side of it without the framework: any object
with an async ``read`` (FastAPI's ``UploadFile``) will do, so the station and
demand routes share the size cap and the refusal with the report, and no
router imports another.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import Any, Protocol

from psycopg import AsyncConnection

from geo_service.domain.errors import InvalidInput, PayloadTooLarge
from geo_service.imports.limits import DEFAULT_LIMITS, FileError, Limits, summarise
from geo_service.imports.readers import Format, guess_format
from geo_service.infra.settings import Settings


class Mode(StrEnum):
    ALL_OR_NOTHING = "all_or_nothing"
    SKIP_BAD_ROWS = "skip_bad_rows"


class _Rollback(Exception):
    """Raised inside the transaction to undo it (dry run or refused import)."""


Validator = Callable[[list[dict[str, Any]]], tuple[list[Any], list[dict[str, Any]]]]
Writer = Callable[[AsyncConnection[Any], list[Any], dict[str, Any]], Awaitable[None]]


async def run_import(
    conn: AsyncConnection[Any], raw_rows: list[dict[str, Any]], fmt: Format, *,
    mode: Mode, dry_run: bool, validate: Validator, write: Writer, limits: Limits = DEFAULT_LIMITS,
    check_all: bool = False,
) -> dict[str, Any]:
    """Validate, then write all (or the good rows) in one transaction; the report.

    Validation runs off the event loop (it is CPU-bound). The whole file is
    refused on any problem unless skipping bad rows; the transaction is rolled
    back for a dry run or when the writer found problems of its own (codes
    that contradict a polygon, rows outside the key's area) in all-or-nothing
    mode. ``write`` fills the report's counts.

    ``check_all``: rows that failed validation do not stop the writer's own checks (the
    database's: time zones, polygons, area) of the rows that passed, so one pass names
    every problem; the writer then checks and writes nothing (the report holds errors).
    """
    if not raw_rows:
        raise FileError("the file has no data rows", [("file", "no data rows")])
    records, problems = await asyncio.to_thread(validate, raw_rows)
    report: dict[str, Any] = {
        "format": fmt.value, "mode": mode.value, "dry_run": dry_run, "rows": len(raw_rows),
        "valid_rows": len(records), "created": 0, "updated": 0, "unchanged": 0,
        "written": False, "errors": problems, "likely_duplicates": [],
    }
    if problems and mode is Mode.ALL_OR_NOTHING and not check_all:
        return summarise(report, limits.errors_reported)
    try:
        async with conn.transaction():
            await conn.execute("SELECT set_config('statement_timeout', %s, true)",
                               [str(limits.statement_timeout_ms)])
            await write(conn, records, report)
            if dry_run or (report["errors"] and mode is Mode.ALL_OR_NOTHING):
                raise _Rollback
            report["written"] = True
    except _Rollback:
        pass
    return summarise(report, limits.errors_reported)


def count_upserts(report: dict[str, Any], inserted_flags: list[bool]) -> None:
    """Created / updated / unchanged from an upsert's ``RETURNING (xmax = 0)`` rows."""
    report["created"] = sum(inserted_flags)
    report["updated"] = len(inserted_flags) - report["created"]
    report["unchanged"] = report["valid_rows"] - len(inserted_flags)


def limits_of(settings: Settings) -> Limits:
    """The import limits the settings configure (``max_import_*``)."""
    return Limits(unpacked_bytes=settings.max_import_unpacked_bytes,
                  cell_chars=settings.max_import_cell_chars,
                  errors_reported=settings.max_import_errors_reported,
                  statement_timeout_ms=settings.import_statement_timeout_ms)


class Upload(Protocol):
    """An uploaded file as the web framework hands it over (``UploadFile``)."""

    filename: str | None

    async def read(self, size: int = -1) -> bytes: ...


#: Runs one import of the file's bytes in a format within limits; returns the report.
Importer = Callable[[bytes, Format, Limits], Awaitable[dict[str, Any]]]


async def import_upload(file: Upload, fmt: Format | None, settings: Settings, *,
                        dry_run: bool, run: Importer) -> dict[str, Any]:
    """An uploaded file through ``run``: refused past ``max_import_bytes`` (413 naming
    ``file``, read no further), its format guessed from its name when not given,
    and a refused import a 422 carrying the whole report.

    A dry run always answers 200 with its report: finding the problems is its job.
    """
    data = await file.read(settings.max_import_bytes + 1)
    if len(data) > settings.max_import_bytes:
        raise PayloadTooLarge(f"file larger than {settings.max_import_bytes} bytes",
                              [("file", "too large")])
    report = await run(data, fmt or guess_format(file.filename or "", data), limits_of(settings))
    if not report["written"] and not dry_run:
        raise InvalidInput(
            f"import refused: {report['error_count']} problem(s); nothing was written",
            [(f"row {p['row']}: {p['field']}", p["problem"]) for p in report["errors"]],
            report=report,
        )
    return report
