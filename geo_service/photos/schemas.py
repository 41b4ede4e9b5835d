"""The photos API's bodies: what a photo, a station's photo and a re-kind look like."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

PhotoKind = Literal["exterior", "interior", "other"]


class KindIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: PhotoKind = Field(description="exterior (外观: first exterior is what the exports "
                                        "publish), interior (室内) or other (其他)")


class PhotoOut(BaseModel):
    sha: str = Field(pattern=r"^[0-9a-f]{64}$",
                     description="SHA-256 of the stored JPEG: its name everywhere")
    url: str = Field(description="the photo on this service (JPEG)")
    thumb_url: str = Field(description="its thumbnail (JPEG)")
    width: int
    height: int
    bytes: int


class StationPhotoOut(PhotoOut):
    id: int
    station_code: str
    kind: PhotoKind
    position: int = Field(description="order within its kind (exterior photos first)")
    uploaded_by: str = Field(description="the key's or the person's name")
    created_at: dt.datetime


class StationPhotoList(BaseModel):
    station_code: str
    photos: list[StationPhotoOut]
    count: int


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: Literal["approve", "reject"] = Field(
        description="approve: the photo becomes public; reject: it stays private")


class PendingPhoto(BaseModel):
    report_id: int
    sha: str
    thumb_url: str
    url: str
    station_code: str
    station_name: str
    kind: str = Field(description="the report's kind")
    comment: str | None
    created_at: dt.datetime
    sample: bool


class PendingPhotos(BaseModel):
    photos: list[PendingPhoto]
    count: int
