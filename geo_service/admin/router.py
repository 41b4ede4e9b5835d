"""HTTP for administration: API keys (list, issue, revoke, rotate) and a station's history.

Key management is rare and short, so it runs in the thread pool on the sync
pool's connection, like the coverage room. A scoped admin manages only the keys of
its area and the areas below it; anyone else's key answers 404, like an
unknown id. The history (who changed what, old → new) is for editors and
admins, and is the only place inspectors' names are shown.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from geo_service.domain import auth
from geo_service.domain.audit import station_history
from geo_service.domain.errors import ERROR_RESPONSES, WRITE_RESPONSES
from geo_service.domain.schemas import AreaCode, JsonInt
from geo_service.operations.common import station_ref
from geo_service.stations.service import require_scope
from geo_service.web.deps import CodePath, ConnDep, Editor, SyncAdmin, SyncConnDep
from geo_service.web.responses import JSONResponse

router = APIRouter(prefix="/v1", tags=["administration"])
KeyId = Annotated[int, Path(ge=1, le=2**31 - 1)]
_KEY_RESPONSES = {**WRITE_RESPONSES, 404: {**WRITE_RESPONSES[404], "description": "No such key"}}


class KeyPublic(BaseModel):
    id: int
    prefix: str = Field(description="the token's public part, gs_<prefix>_…")
    name: str
    role: str
    area_code: str | None
    created_at: dt.datetime
    expires_at: dt.datetime | None
    last_used_at: dt.datetime | None = Field(description="refreshed at most once a minute")
    revoked_at: dt.datetime | None
    replaces_id: int | None = Field(description="the key this one rotated")
    state: Literal["active", "revoked", "expired"]


class KeyList(BaseModel):
    keys: list[KeyPublic]


class KeyIssued(BaseModel):
    token: str = Field(description="the bearer token: shown once, only its hash is kept")
    key: KeyPublic


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f]+$")
    role: Literal["admin", "editor", "inspector"]
    area_code: AreaCode = None
    expires_in_days: JsonInt | None = Field(default=None, ge=1, le=3650)


class KeyRotate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grace_minutes: JsonInt = Field(default=0, ge=0, le=43_200,
                               description="how long the old key keeps working")


class HistoryChange(BaseModel):
    old: Any
    new: Any


class HistoryEntry(BaseModel):
    id: int
    at: dt.datetime
    key_id: int | None
    user_id: int | None = Field(description="the staff account that wrote in the console")
    actor: str = Field(description="the key's name, the staff account's sign-in name, or "
                                   "who wrote without either")
    action: str = Field(description="table.operation, e.g. station.update, station_stop.insert")
    import_id: str | None
    record_id: str | None
    reason: str | None = Field(default=None, description=(
        "why, in the person's words: the reason given in the console to close, reopen or "
        "delete the station"))
    changes: dict[str, HistoryChange]


class StationHistory(BaseModel):
    code: str
    entries: list[HistoryEntry]
    next_after: int | None = Field(description="pass as `after` for the next page")


@router.get("/keys", response_model=KeyList, responses=_KEY_RESPONSES,
            summary="The API keys this admin manages (never their secrets)")
def list_keys(conn: SyncConnDep, principal: SyncAdmin) -> Response:
    return JSONResponse({"keys": auth.list_keys(conn, principal)})


@router.post("/keys", response_model=KeyIssued, status_code=201, responses=_KEY_RESPONSES,
             summary="Issue a key (admin); the token is in this answer only")
def create_key(conn: SyncConnDep, body: KeyCreate, principal: SyncAdmin) -> Response:
    token, key = auth.issue_key(
        conn, name=body.name, role=body.role, area_code=body.area_code,
        expires_in=dt.timedelta(days=body.expires_in_days) if body.expires_in_days else None,
        principal=principal)
    return JSONResponse({"token": token, "key": key}, status_code=201)


@router.delete("/keys/{key_id}", response_model=KeyPublic, responses=_KEY_RESPONSES,
               summary="Revoke a key: its next request gets a 401")
def revoke_key(conn: SyncConnDep, key_id: KeyId, principal: SyncAdmin) -> Response:
    return JSONResponse(auth.revoke_key(conn, key_id, principal))


@router.post("/keys/{key_id}/rotate", response_model=KeyIssued, status_code=201,
             responses=_KEY_RESPONSES,
             summary="Issue a replacement key; the old one stops after the grace period")
def rotate_key(conn: SyncConnDep, key_id: KeyId, principal: SyncAdmin,
               body: KeyRotate | None = None) -> Response:
    grace = dt.timedelta(minutes=body.grace_minutes if body else 0)
    token, key = auth.rotate_key(conn, key_id, principal, grace)
    return JSONResponse({"token": token, "key": key}, status_code=201)


@router.get("/stations/{code}/history", response_model=StationHistory,
            responses={**ERROR_RESPONSES, **{s: WRITE_RESPONSES[s] for s in (401, 403, 404)}},
            summary="Who changed this station, when and what (editor or admin)")
async def history(conn: ConnDep, code: CodePath, principal: Editor,
                  after: Annotated[int, Query(ge=0, le=2**62)] = 0,
                  limit: Annotated[int, Query(ge=1, le=500)] = 100) -> Response:
    if principal.area_code is not None:
        await require_scope(conn, principal, await station_ref(conn, code), "station")
    return JSONResponse(await station_history(conn, code, after=after, limit=limit))
