"""Placeholder: filled in by the maps work (issue 4)."""

from __future__ import annotations

from typing import Any


def add_commands(sub: Any) -> None:
    """Add the ``maps`` command group to the ``geo-service`` parser."""
