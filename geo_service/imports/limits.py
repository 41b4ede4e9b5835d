"""What one import may cost beyond its byte size, checked before and after parsing.

An XLSX is a zip: 100 KB can unpack to a 100 MiB cell, which openpyxl would hold
in memory (and a refused header once echoed back whole, a 200 MB answer). So the
archive is inspected before it is parsed, every cell is held to a length, and a
report lists the first problems with counts instead of every problem of a
200,000-row file.
"""

from __future__ import annotations

import io
import zipfile
from collections import Counter
from dataclasses import dataclass
from typing import Any

from geo_service.domain.errors import InvalidInput, clip


class FileError(InvalidInput):
    """The file as a whole cannot be read (encoding, structure, header)."""


@dataclass(frozen=True)
class Limits:
    """What one import may cost beyond its byte size (settings ``max_import_*``,
    ``import_statement_timeout_ms``).

    An XLSX is a zip: 100 KB can unpack to a 100 MiB cell, which openpyxl would
    hold in memory (and an error would once echo back whole), so the archive is
    inspected before it is parsed. Reports list the first ``errors_reported``
    problems with counts, not every problem of a 200,000-row file.
    """

    unpacked_bytes: int = 100_000_000
    cell_chars: int = 10_000
    errors_reported: int = 100
    #: The whole file is written in one transaction, in a few big statements: the
    #: request path's ``statement_timeout_ms`` (15 s) would cut a 50,000-row upsert
    #: short on a loaded machine, so an import's transaction gets its own cap.
    statement_timeout_ms: int = 600_000


DEFAULT_LIMITS = Limits()
#: Any member compressed better than this is a zip bomb, not a spreadsheet.
MAX_ZIP_RATIO = 1000
#: The pre-parse scan allows this many bytes per character of a cell (UTF-8 and
#: entities such as ``&amp;``); the exact character count is checked after parsing.
_BYTES_PER_CHAR = 8


def check_archive(data: bytes, limits: Limits) -> None:
    """Refuse an XLSX that unpacks too big, or holds a cell too long, before parsing it.

    Sizes come from the zip directory, which also bounds what ``zipfile`` (and so
    openpyxl) will inflate; XML members are then streamed in 1 MiB chunks, and a
    stretch without ``<`` longer than a cell may take (plus its tag) is refused.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = archive.infolist()
    except (zipfile.BadZipFile, ValueError, EOFError):
        raise FileError("not a readable XLSX file", [("file", "malformed XLSX")]) from None
    total = sum(m.file_size for m in members)
    if total > limits.unpacked_bytes:
        raise FileError(f"the workbook unpacks to {total:,} bytes",
                        [("file", f"unpacks to more than {limits.unpacked_bytes:,} bytes")])
    longest = limits.cell_chars * _BYTES_PER_CHAR + 200
    for member in members:
        if member.file_size > 1_000_000 and member.file_size > MAX_ZIP_RATIO * max(
                member.compress_size, 1):
            raise FileError(f"{clip(member.filename)} is compressed "
                            f"{member.file_size // max(member.compress_size, 1)}:1",
                            [("file", "compressed too well to be a spreadsheet (zip bomb)")])
        if not member.filename.endswith(".xml"):
            continue
        try:
            with archive.open(member) as stream:
                tail = b""
                while chunk := stream.read(1 << 20):
                    pieces = (tail + chunk).split(b"<")
                    if max(map(len, pieces)) > longest:
                        raise FileError(
                            f"{clip(member.filename)} holds a cell longer than "
                            f"{limits.cell_chars} characters",
                            [("file", f"a cell longer than {limits.cell_chars} characters")])
                    tail = pieces[-1]
        except (zipfile.BadZipFile, ValueError, EOFError, OSError, NotImplementedError):
            raise FileError("not a readable XLSX file", [("file", "malformed XLSX")]) from None


def check_cells(rows: list[dict[str, Any]], limit: int) -> None:
    for n, row in enumerate(rows, start=1):
        for col, value in row.items():
            if isinstance(value, str) and len(value) > limit:
                raise FileError(f"row {n}: {clip(col)}: longer than {limit} characters",
                                [(f"row {n}: {clip(col)}",
                                  f"longer than {limit} characters ({len(value)})")])


def summarise(report: dict[str, Any], limit: int) -> dict[str, Any]:
    """Bound the report: the first ``limit`` errors (by row), the ``limit`` most common
    (field, problem) pairs with counts, the total; likely duplicates likewise."""
    errors = sorted(report["errors"], key=lambda p: (p["row"], p["field"]))
    counts = Counter((p["field"], p["problem"]) for p in errors)
    report["error_count"] = len(errors)
    report["errors_truncated"] = len(errors) > limit
    report["errors"] = errors[:limit]
    report["error_counts"] = [{"field": f, "problem": p, "count": n}
                              for (f, p), n in counts.most_common(limit)]
    report["likely_duplicate_count"] = len(report["likely_duplicates"])
    report["likely_duplicates"] = report["likely_duplicates"][:limit]
    return report
