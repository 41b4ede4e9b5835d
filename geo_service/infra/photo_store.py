"""Where photo bytes are kept: one small interface, a local folder or an S3-compatible bucket.

Photos are content-addressed: a file's name is the SHA-256 of its bytes, so the same
photo uploaded twice is stored once, a stored file never changes (it can be cached
for a year), and a backup can list what it holds by hash. The database keeps which
station, inspection or report a hash belongs to; the store only keeps bytes.

:class:`LocalStore` (the default) writes under ``data/photos`` (``GEO_PHOTO_DIR``) in
folders sharded by the hash's first two pairs of hex digits, so no folder grows past a
few hundred files; a write goes to a temporary file in the same folder, is flushed,
then renamed into place, so a reader sees the whole file or none. :class:`S3Store`
(``GEO_PHOTO_STORE=s3``) keeps the same keys in a bucket, through boto3, for a
deployment whose machines do not share a disk.

Calls block (disk or network): the service runs them in a worker thread.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from geo_service.infra.paths import DATA_DIR
from geo_service.infra.settings import Settings

SHA_RE = re.compile(r"^[0-9a-f]{64}$")
#: The content types a store keeps, and the file suffix each has on disk.
JPEG_TYPE = "image/jpeg"
SUFFIXES = {JPEG_TYPE: ".jpg", "image/png": ".png", "image/webp": ".webp"}


@dataclass(frozen=True)
class Stored:
    """A stored object's bytes and content type."""

    data: bytes
    content_type: str


class PhotoStore(Protocol):
    """Bytes by their SHA-256 (64 lowercase hex digits), each with a content type."""

    kind: str

    def put(self, sha: str, data: bytes, content_type: str) -> None:
        """Keep ``data`` under ``sha`` (a no-op when it is already there)."""

    def get(self, sha: str) -> Stored | None:
        """The object, or None when there is none."""

    def exists(self, sha: str) -> bool:
        """Whether an object is kept under ``sha``."""

    def delete(self, sha: str) -> None:
        """Forget ``sha`` (no error when there is nothing to forget)."""

    def hashes(self) -> Iterator[str]:
        """Every hash kept (for backups and their manifests)."""


def _check(sha: str, content_type: str | None = None) -> None:
    """Refuse a key that is not a hash (it would name a path or a bucket key) and a
    content type the store does not keep."""
    if not SHA_RE.fullmatch(sha):
        raise ValueError(f"not a SHA-256 hex digest: {sha[:80]!r}")
    if content_type is not None and content_type not in SUFFIXES:
        raise ValueError(f"content type {content_type!r} is not one the store keeps")


class LocalStore:
    """Files named by hash under ``root``: ``root/ab/cd/abcd….jpg``."""

    kind = "local"

    def __init__(self, root: Path) -> None:
        self.root = root

    def _folder(self, sha: str) -> Path:
        return self.root / sha[:2] / sha[2:4]

    def _find(self, sha: str) -> tuple[Path, str] | None:
        _check(sha)
        folder = self._folder(sha)
        for content_type, suffix in SUFFIXES.items():
            path = folder / (sha + suffix)
            if path.is_file():
                return path, content_type
        return None

    def put(self, sha: str, data: bytes, content_type: str) -> None:
        _check(sha, content_type)
        if self._find(sha) is not None:
            return
        folder = self._folder(sha)
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, folder / (sha + SUFFIXES[content_type]))
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def get(self, sha: str) -> Stored | None:
        found = self._find(sha)
        if found is None:
            return None
        path, content_type = found
        return Stored(path.read_bytes(), content_type)

    def exists(self, sha: str) -> bool:
        return self._find(sha) is not None

    def delete(self, sha: str) -> None:
        found = self._find(sha)
        if found is not None:
            found[0].unlink(missing_ok=True)

    def hashes(self) -> Iterator[str]:
        if not self.root.is_dir():
            return
        for path in sorted(self.root.glob("??/??/*")):
            if path.suffix in SUFFIXES.values() and SHA_RE.fullmatch(path.stem):
                yield path.stem

    def path_of(self, sha: str) -> Path | None:
        """The file holding ``sha`` (backups copy files, not bytes in memory)."""
        found = self._find(sha)
        return found[0] if found else None


class S3Store:
    """Objects named ``<prefix><hash>`` in an S3-compatible bucket, through boto3.

    The bucket's own versioning is its backup (``geo-service backup`` lists the hashes
    in its manifest, and leaves the objects where they are).
    """

    kind = "s3"

    def __init__(self, client: Any, bucket: str, prefix: str = "photos/") -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix

    def _key(self, sha: str) -> str:
        _check(sha)
        return self.prefix + sha

    def put(self, sha: str, data: bytes, content_type: str) -> None:
        _check(sha, content_type)
        self.client.put_object(Bucket=self.bucket, Key=self._key(sha), Body=data,
                               ContentType=content_type)

    def get(self, sha: str) -> Stored | None:
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self._key(sha))
        except self.client.exceptions.NoSuchKey:
            return None
        return Stored(answer["Body"].read(), answer.get("ContentType") or "image/jpeg")

    def exists(self, sha: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(sha))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def delete(self, sha: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(sha))

    def hashes(self) -> Iterator[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix)
        for page in pages:
            for item in page.get("Contents", []):
                sha = item["Key"][len(self.prefix):]
                if SHA_RE.fullmatch(sha):
                    yield sha


def local_root(settings: Settings) -> Path:
    """The local store's folder: ``GEO_PHOTO_DIR``, else ``data/photos`` in the project."""
    return Path(settings.photo_dir) if settings.photo_dir else DATA_DIR / "photos"


def store_for(settings: Settings) -> PhotoStore:
    """The store the settings choose (built once per app or command, not per request)."""
    if settings.photo_store == "local":
        return LocalStore(local_root(settings))
    if not settings.photo_s3_bucket:
        raise ValueError("GEO_PHOTO_STORE=s3 needs GEO_PHOTO_S3_BUCKET")
    import boto3

    secret = settings.photo_s3_secret_access_key
    client = boto3.client(
        "s3", endpoint_url=settings.photo_s3_endpoint_url,
        region_name=settings.photo_s3_region,
        aws_access_key_id=settings.photo_s3_access_key_id,
        aws_secret_access_key=secret.get_secret_value() if secret else None)
    return S3Store(client, settings.photo_s3_bucket, settings.photo_s3_prefix)
