"""Where the project's own files are; imported by settings and the local cluster alike
(each needs the other's answer, so neither may import the other for it)."""

from __future__ import annotations

from pathlib import Path

#: The checkout (or the installed project folder): seed/, maps/, .pgdata/, .secrets/.
PROJECT_ROOT = Path(__file__).resolve().parents[2]

#: Files the service keeps beside the database (the photo store's default home).
DATA_DIR = PROJECT_ROOT / "data"
