"""Placeholder: filled in by the maps work (issue 4)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
