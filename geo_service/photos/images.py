"""An uploaded photo made safe to keep and to publish: checked, turned upright, re-encoded.

What a phone sends carries more than the picture: EXIF with the GPS position it was
taken at, the device's make, model and serial, the time. A station's exterior photo is
public, and a worker's report photo shows where that worker stood, so nothing of it
is kept. The picture is decoded, turned the way the EXIF orientation says (a portrait
photo from a phone is stored landscape with a "rotate 90°" tag; once the tag is gone
it must already be upright), copied into a fresh image that carries no metadata, and
encoded again as JPEG (quality ``GEO_PHOTO_JPEG_QUALITY``), with a thumbnail.

Formats: JPEG, PNG and HEIC/HEIF (iPhones; read by pillow-heif, a maintained binding
of libheif) and WebP. Anything else, or bytes that are no picture at all (a PDF
renamed ``.jpg``), is refused with 415 "不是图片文件" naming the field.

Decompression bombs: a 30 KB PNG can declare 20,000 × 20,000 pixels, 1.6 GB decoded.
The size is read from the header (``Image.open`` decodes nothing) and checked against
``GEO_PHOTO_MAX_PIXELS`` before ``load``; Pillow's own guard
(``Image.MAX_IMAGE_PIXELS``) is set to the same figure as a second line.

Re-encoding is deterministic for one Pillow version, so the same upload gives the
same bytes and the same SHA-256: the store keeps it once.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass
from functools import cache

from PIL import Image, ImageOps, UnidentifiedImageError

from geo_service.domain.errors import PayloadTooLarge, UnsupportedMediaType

#: What Pillow calls the formats an upload may be in.
ACCEPTED = frozenset({"JPEG", "MPO", "PNG", "HEIF", "WEBP"})


@dataclass(frozen=True)
class Limits:
    """What one upload may be, and how it is stored (settings ``photo_*``)."""

    max_bytes: int = 15_000_000
    max_pixels: int = 40_000_000
    quality: int = 85
    thumb_px: int = 320


@dataclass(frozen=True)
class Processed:
    """A photo ready to store: the JPEG and its thumbnail, each with its SHA-256."""

    data: bytes
    sha: str
    width: int
    height: int
    thumb: bytes
    thumb_sha: str
    source_format: str


@cache
def _register_heif() -> None:
    """Teach Pillow to open HEIC/HEIF (once per process)."""
    from pillow_heif import register_heif_opener

    register_heif_opener()


def _not_an_image(field: str) -> UnsupportedMediaType:
    return UnsupportedMediaType(
        "不是图片文件 (not an image file): send a JPEG, PNG or HEIC photo",
        [(field, "不是图片文件 / not an image file (JPEG, PNG or HEIC)")])


def _too_many_pixels(field: str, limit: int, size: tuple[int, int] | None = None
                     ) -> PayloadTooLarge:
    shown = f"{size[0]}×{size[1]} is " if size else ""
    return PayloadTooLarge(
        f"图片像素过多 (too many pixels): {shown}more than {limit:,} pixels",
        [(field, f"图片像素过多 / too many pixels: {shown}more than {limit:,}")])


def _encode(image: Image.Image, quality: int) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality, optimize=True)
    return out.getvalue()


def _clean_rgb(image: Image.Image) -> Image.Image:
    """The pixels alone, in RGB: transparency laid on white, no metadata carried over
    (a new image has an empty ``info``, so no EXIF, XMP or comment can follow it)."""
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        clean = Image.new("RGB", rgba.size, (255, 255, 255))
        clean.paste(rgba, mask=rgba.getchannel("A"))
        return clean
    rgb = image.convert("RGB")
    clean = Image.new("RGB", rgb.size)
    clean.paste(rgb)
    return clean


def process(data: bytes, limits: Limits, field: str = "file") -> Processed:
    """``data`` (an upload) as a photo to store; 413 or 415 naming ``field`` when it
    is too big, has too many pixels, or is not a photo in an accepted format."""
    if len(data) > limits.max_bytes:
        raise PayloadTooLarge(f"图片太大 (photo too large): more than {limits.max_bytes:,} "
                              "bytes", [(field, f"图片太大 / larger than {limits.max_bytes:,} "
                                                "bytes")])
    _register_heif()
    Image.MAX_IMAGE_PIXELS = limits.max_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if image.format not in ACCEPTED:
                raise _not_an_image(field)
            if width * height > limits.max_pixels:
                raise _too_many_pixels(field, limits.max_pixels, (width, height))
            image.load()
            upright = ImageOps.exif_transpose(image)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _too_many_pixels(field, limits.max_pixels) from exc
    except UnidentifiedImageError as exc:
        raise _not_an_image(field) from exc
    except (OSError, SyntaxError, ValueError) as exc:  # truncated or corrupt after the header
        raise UnsupportedMediaType(
            "图片文件已损坏 (the image file is damaged or truncated)",
            [(field, "图片文件已损坏 / damaged or truncated image")]) from exc
    clean = _clean_rgb(upright)
    jpeg = _encode(clean, limits.quality)
    thumb = clean.copy()
    thumb.thumbnail((limits.thumb_px, limits.thumb_px), Image.Resampling.LANCZOS)
    small = _encode(thumb, min(limits.quality, 80))
    return Processed(data=jpeg, sha=hashlib.sha256(jpeg).hexdigest(), width=clean.width,
                     height=clean.height, thumb=small,
                     thumb_sha=hashlib.sha256(small).hexdigest(),
                     source_format=str(image.format))
