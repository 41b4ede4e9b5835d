"""Placeholder: filled in by the operations work (issue 6)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
