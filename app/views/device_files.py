"""Files that come from the device: the file picker and the camera, for any screen that attaches
them (dossier attachments, audit photos). Reading a picked path runs off the UI loop."""

from __future__ import annotations

import datetime as dt
import mimetypes
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.views.context import AppContext


@dataclass(frozen=True)
class DeviceFile:
    data: bytes
    name: str
    mime: str
    taken_at: dt.datetime | None = None  # a camera photo's moment


async def picked_files(app: AppContext, **pick_options: Any) -> list[DeviceFile]:
    """The files the user picked; the web build hands their bytes, desktop only a path."""
    files = await app.file_picker.pick_files(allow_multiple=True, with_data=True, **pick_options)
    picked = []
    for f in files or []:
        data = f.bytes
        if data is None and f.path:
            data = await app.io(_read_file, f.path)
        if data is not None:
            picked.append(DeviceFile(data, f.name, mime_of(f.name)))
    return picked


async def camera_photo(app: AppContext) -> DeviceFile | None:
    data = await app.camera.capture()
    if not data:
        return None
    stamp = dt.datetime.now(dt.UTC)
    return DeviceFile(data, f"anh-{stamp:%Y%m%d-%H%M%S}.jpg", "image/jpeg", stamp)


def mime_of(name: str) -> str:
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


def _read_file(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()
