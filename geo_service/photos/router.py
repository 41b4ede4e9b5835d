"""HTTP for photos: upload to a station, list, re-kind, remove; serve the files.

Uploads are multipart (``file``, and ``kind`` for a station photo), read with a cap
(``GEO_PHOTO_MAX_BYTES``; the body limit lets a photo's size through on these paths
only). Station photos need an editor or admin key within its area; a photo for an
inspection (``POST /v1/photos``) an inspector's too. The files are served by hash
with a year's caching (a hash's bytes never change): ``immutable``, ``ETag`` the
hash. A worker-report photo not yet approved is not public: 404 without a key of the
station's area, and ``Cache-Control: private, no-store`` with one.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Path, Request, Response, UploadFile

from geo_service.domain.auth import ROLES, authenticate, require_role
from geo_service.domain.errors import (
    ERROR_RESPONSES,
    WRITE_RESPONSES,
    ErrorBody,
    GeoServiceError,
    NotFound,
)
from geo_service.infra.settings import Settings
from geo_service.photos import service as svc
from geo_service.photos.schemas import (
    DecisionIn,
    KindIn,
    PendingPhotos,
    PhotoOut,
    StationPhotoList,
    StationPhotoOut,
)
from geo_service.web.deps import AuthHeader, CodePath, ConnDep, Editor, Inspector, SettingsDep
from geo_service.web.responses import JSONResponse

router = APIRouter(prefix="/v1", tags=["photos"])

IMMUTABLE = "public, max-age=31536000, immutable"
PhotoFile = Annotated[UploadFile, File(description="the photo: JPEG, PNG or HEIC")]
PhotoIdPath = Annotated[int, Path(ge=1, le=2**62, description="the station photo's id")]
ShaPath = Annotated[str, Path(pattern=svc.SHA_PATTERN,
                              description="the photo's SHA-256 (64 lowercase hex digits)")]

UPLOAD_RESPONSES: dict[int | str, dict[str, Any]] = {
    **WRITE_RESPONSES,
    413: {"model": ErrorBody, "description": "图片太大 or 图片像素过多: more than "
                                             "GEO_PHOTO_MAX_BYTES bytes or GEO_PHOTO_MAX_PIXELS "
                                             "pixels (field file)"},
    415: {"model": ErrorBody, "description": "不是图片文件: not a JPEG, PNG or HEIC photo, or "
                                             "a damaged one (field file)"},
    429: {"model": ErrorBody,
          "description": "As many uploads as the process decodes at once "
                         "(GEO_PHOTO_CONCURRENCY) are being decoded; retry after Retry-After "
                         "seconds",
          "headers": {"Retry-After": {"description": "seconds to wait",
                                      "schema": {"type": "integer"}}}},
}
_JPEG: dict[int | str, dict[str, Any]] = {
    **ERROR_RESPONSES,
    200: {"description": "The JPEG", "content": {"image/jpeg": {
        "schema": {"type": "string", "format": "binary"}}}},
    304: {"description": "Not modified (If-None-Match)"},
    404: {"model": ErrorBody, "description": "No such photo, or one not public (field sha)"},
}


def _work(request: Request) -> svc.PhotoWork:
    work: svc.PhotoWork = request.app.state.photos
    return work


async def read_capped(file: UploadFile, settings: Settings, field: str = "file") -> bytes:
    """The upload's bytes, reading at most one byte past the limit."""
    data = await file.read(settings.photo_max_bytes + 1)
    if len(data) > settings.photo_max_bytes:
        raise svc.too_large(settings.photo_max_bytes, field)
    return data


@router.post("/stations/{code}/photos", response_model=StationPhotoOut, status_code=201,
             responses={**UPLOAD_RESPONSES, 200: {
                 "model": StationPhotoOut,
                 "description": "The station already has this photo: nothing added"}},
             summary="Add a photo to a station (editor or admin key, within its area)")
async def upload_station_photo(request: Request, conn: ConnDep, settings: SettingsDep,
                               code: CodePath, principal: Editor, file: PhotoFile,
                               kind: Annotated[str, Form(
                                   pattern="^(exterior|interior|other)$",
                                   description="exterior (外观, what the map platforms "
                                               "publish), interior (室内) or other")] = "other",
                               ) -> Response:
    """Stored as a clean JPEG (EXIF, GPS and device data dropped, turned upright) with a
    thumbnail; the same picture twice is stored once."""
    data = await read_capped(file, settings)
    photo, added = await svc.add_station_photo(conn, _work(request), principal, code, data,
                                               kind)
    return JSONResponse(photo, status_code=201 if added else 200)


@router.get("/stations/{code}/photos", response_model=StationPhotoList,
            responses={**ERROR_RESPONSES, 404: WRITE_RESPONSES[404]},
            summary="A station's photos: exterior first, then interior, then other")
async def list_station_photos(conn: ConnDep, code: CodePath) -> Response:
    return JSONResponse(await svc.list_station_photos(conn, code))


@router.patch("/stations/{code}/photos/{photo_id}", response_model=StationPhotoOut,
              responses=WRITE_RESPONSES,
              summary="Change a photo's kind; exterior makes it the one the exports publish "
                      "(editor or admin key, within its area)")
async def set_photo_kind(conn: ConnDep, code: CodePath, photo_id: PhotoIdPath, body: KindIn,
                         principal: Editor) -> Response:
    return JSONResponse(await svc.set_kind(conn, principal, code, photo_id, body.kind))


@router.delete("/stations/{code}/photos/{photo_id}", status_code=204, response_class=Response,
               responses={**WRITE_RESPONSES, 204: {"description": "Removed"}},
               summary="Remove a station's photo (soft: kept for the record; editor or admin "
                       "key, within its area)")
async def delete_station_photo(conn: ConnDep, code: CodePath, photo_id: PhotoIdPath,
                               principal: Editor) -> Response:
    await svc.delete_station_photo(conn, principal, code, photo_id)
    return Response(status_code=204)


@router.post("/photos", response_model=PhotoOut, status_code=201, responses=UPLOAD_RESPONSES,
             summary="Upload a photo to attach to an inspection by its sha (inspector, "
                     "editor or admin key)")
async def upload_photo(request: Request, conn: ConnDep, settings: SettingsDep,
                       principal: Inspector, file: PhotoFile) -> Response:
    del principal  # the key is the permission; the photo belongs to nobody until attached
    data = await read_capped(file, settings)
    photo = await svc.store_upload(conn, _work(request), data, public=True)
    return JSONResponse(photo, status_code=201)


@router.get("/report-photos/pending", response_model=PendingPhotos, responses=WRITE_RESPONSES,
            summary="Worker-report photos waiting for approval, oldest first (editor or "
                    "admin key; its area)")
async def pending_photos(conn: ConnDep, principal: Editor) -> Response:
    return JSONResponse(await svc.pending_report_photos(conn, principal))


@router.post("/reports/{report_id}/photo/decision", status_code=204, response_class=Response,
             responses={**WRITE_RESPONSES, 204: {"description": "Decided"}},
             summary="Approve (publish) or reject a worker report's photo (editor or admin "
                     "key, within its area)")
async def decide_photo(conn: ConnDep, report_id: Annotated[int, Path(ge=1, le=2**62)],
                       body: DecisionIn, principal: Editor) -> Response:
    await svc.decide_report_photo(conn, principal, report_id, body.action == "approve")
    return Response(status_code=204)


async def _staff(conn: Any, authorization: str | None, sha: str) -> bool:
    """Whether the request carries a working key (any role) whose area holds a station
    the private photo was reported on: staff may see a pending report photo to decide
    it, within their area."""
    if not authorization:
        return False
    try:
        principal = await authenticate(conn, authorization)
        require_role(principal, *ROLES)
    except GeoServiceError:
        return False
    return await svc.may_see_private(conn, sha, principal)


async def _serve(request: Request, conn: Any, sha: str, authorization: str | None,
                 thumb: bool) -> Response:
    row = await svc.photo_row(conn, sha)
    private = row is not None and not row["public"]
    if row is None or (private and not await _staff(conn, authorization, sha)):
        raise NotFound(f"no photo {sha}", [("sha", "no such photo")])
    key = row["thumb_sha"] if thumb else sha
    etag = f'"{key}"'
    cache = "private, no-store" if private else IMMUTABLE
    if not private and etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers={"ETag": etag, "Cache-Control": cache})
    stored = await asyncio.to_thread(_work(request).store.get, key)
    if stored is None:
        raise NotFound(f"photo {sha} is recorded but its file is missing from the store",
                       [("sha", "file missing")])
    return Response(stored.data, media_type=stored.content_type,
                    headers={"ETag": etag, "Cache-Control": cache,
                             "X-Content-Type-Options": "nosniff"})


@router.get("/photos/{sha}.jpg", response_class=Response, responses=_JPEG,
            summary="A photo (JPEG, cached for a year: the hash names the bytes)")
async def photo_file(request: Request, conn: ConnDep, sha: ShaPath,
                     authorization: AuthHeader = None) -> Response:
    return await _serve(request, conn, sha, authorization, thumb=False)


@router.get("/photos/{sha}/thumb.jpg", response_class=Response, responses=_JPEG,
            summary="A photo's thumbnail (JPEG, GEO_PHOTO_THUMB_PX on the long side)")
async def photo_thumb(request: Request, conn: ConnDep, sha: ShaPath,
                      authorization: AuthHeader = None) -> Response:
    return await _serve(request, conn, sha, authorization, thumb=True)

