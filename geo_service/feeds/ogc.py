"""Placeholder: filled in by the feeds work (issue 5)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
