"""Small pictures of a share's images for the admin's Files page, made when first asked for.

A thumbnail is made from the file's content read through the share's VFS (so the site
guard and every rule of the share apply), at most :data:`MAX_SIDE` pixels on its longer
side, and kept in a folder of its own outside the share (``thumbnails/`` in the share's
state folder): the share never holds a file it did not hold before. A thumbnail's name is
a hash of the file's path and version (size, time, ETag), so a changed file gets a new one
and the old one ages out. The folder is bounded: past :data:`MAX_COUNT` thumbnails the
least recently made go until a tenth of the room is free again.

Only files up to :data:`MAX_SOURCE_SIZE` bytes and :data:`MAX_PIXELS` pixels are read (a
bigger picture costs the server more than a listing is worth); anything Pillow cannot
open is :class:`NoThumbnail`, never a server error.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import tempfile
import warnings
from pathlib import Path
from typing import Final

from PIL import Image, UnidentifiedImageError

from davstore.vfs import VFS, Entry

__all__ = [
    "EXTENSIONS",
    "MAX_COUNT",
    "MAX_PIXELS",
    "MAX_SIDE",
    "MAX_SOURCE_SIZE",
    "NoThumbnail",
    "Thumbnail",
    "Thumbnails",
    "may_have_thumbnail",
    "version_tag",
]

logger = logging.getLogger(__name__)

#: Longest side of a thumbnail in pixels (shown at 40 CSS pixels: sharp at 2x).
MAX_SIDE: Final = 96
#: Files bigger than this get no thumbnail.
MAX_SOURCE_SIZE: Final = 25 << 20
#: Pictures of more pixels than this get no thumbnail (decompression bombs included).
MAX_PIXELS: Final = 60_000_000
#: Thumbnails kept per share at most.
MAX_COUNT: Final = 5000
#: Names of the files a thumbnail is tried for (lowercase extensions).
EXTENSIONS: Final = frozenset(
    {".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff", ".ico"}
)


class NoThumbnail(Exception):
    """The file has no thumbnail: not a picture Pillow opens, or too big (the reason)."""


class Thumbnail:
    """A thumbnail's bytes and media type."""

    __slots__ = ("content_type", "data")

    def __init__(self, data: bytes, content_type: str) -> None:
        self.data = data
        self.content_type = content_type


def may_have_thumbnail(entry: Entry) -> bool:
    """Whether a thumbnail is worth asking for: a file named like a picture, not too big."""
    if entry.is_dir or entry.size is None or entry.size > MAX_SOURCE_SIZE:
        return False
    return os.path.splitext(entry.basename)[1].lower() in EXTENSIONS


def version_tag(entry: Entry) -> str:
    """A short name of this version of the file (its size, time and ETag)."""
    return Thumbnails.key(entry)[:12]


class Thumbnails:
    """The thumbnails of one share, kept in ``folder`` (created when first needed).

    :param max_count: thumbnails kept at most (:data:`MAX_COUNT`).
    """

    def __init__(self, vfs: VFS, folder: Path, *, max_count: int = MAX_COUNT) -> None:
        self.vfs = vfs
        self.folder = folder
        self.max_count = max_count

    def get(self, path: str) -> Thumbnail:
        """The thumbnail of file ``path``, from the folder or made now.

        Raises NoThumbnail, and the VFS's errors (NotFound, IsADirectory, StoreError).
        """
        entry = self.vfs.stat(path)
        if entry.is_dir:
            raise NoThumbnail("a folder")
        if not may_have_thumbnail(entry):
            raise NoThumbnail("not a picture, or too big")
        key = self.key(entry)
        for suffix, content_type in ((".jpg", "image/jpeg"), (".png", "image/png")):
            with contextlib.suppress(FileNotFoundError):
                return Thumbnail((self.folder / (key + suffix)).read_bytes(), content_type)
        with self.vfs.open_read(entry.name) as handle:
            data = handle.read(MAX_SOURCE_SIZE + 1)
        if len(data) > MAX_SOURCE_SIZE:
            raise NoThumbnail("too big")
        thumbnail = _make(data)
        suffix = ".png" if thumbnail.content_type == "image/png" else ".jpg"
        self._keep(key + suffix, thumbnail.data)
        return thumbnail

    def count(self) -> int:
        """How many thumbnails the folder holds."""
        try:
            return sum(1 for e in os.scandir(self.folder) if not e.name.startswith("."))
        except FileNotFoundError:
            return 0

    @staticmethod
    def key(entry: Entry) -> str:
        """The thumbnail's name for this version of the file."""
        version = f"{MAX_SIDE}\0{entry.name}\0{entry.size}\0{entry.mtime}\0{entry.etag}"
        return hashlib.sha256(version.encode("utf-8", "surrogatepass")).hexdigest()

    def _keep(self, name: str, data: bytes) -> None:
        """Write one thumbnail (whole or not at all), then trim the folder to its bound. A
        folder that cannot be written costs the cache, never the thumbnail."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd, temporary = tempfile.mkstemp(dir=self.folder, prefix=".new-")
            try:
                with os.fdopen(fd, "wb") as out:
                    out.write(data)
                os.replace(temporary, self.folder / name)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temporary)
                raise
            self._trim()
        except OSError as exc:
            logger.warning("thumbnails in %s are not kept: %s", self.folder, exc)

    def _trim(self) -> None:
        entries = [e for e in os.scandir(self.folder) if not e.name.startswith(".")]
        if len(entries) <= self.max_count:
            return
        entries.sort(key=lambda e: e.stat().st_mtime)
        for entry in entries[: len(entries) - self.max_count * 9 // 10]:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)


def _make(data: bytes) -> Thumbnail:
    """A thumbnail of the picture in ``data``: JPEG, or PNG where it has transparency."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                if image.width * image.height > MAX_PIXELS:
                    raise NoThumbnail("too many pixels")
                image.draft("RGB", (MAX_SIDE * 2, MAX_SIDE * 2))
                image.thumbnail((MAX_SIDE, MAX_SIDE))
                alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
                small = image.convert("RGBA" if alpha else "RGB")
    except NoThumbnail:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise NoThumbnail("not a picture") from None
    except (OSError, ValueError, SyntaxError) as exc:  # truncated or broken files
        raise NoThumbnail(f"a broken picture: {exc}") from None
    out = io.BytesIO()
    if alpha:
        small.save(out, "PNG", optimize=True)
        return Thumbnail(out.getvalue(), "image/png")
    small.save(out, "JPEG", quality=82)
    return Thumbnail(out.getvalue(), "image/jpeg")
