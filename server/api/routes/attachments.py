"""Attachments: POST to declare, PATCH chunks at the server's offset, GET to download."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from server.api.deps import Ctx, CurrentCaller
from server.api.params import ShaPath
from server.errors import ApiError
from server.schemas import UploadProgress, UploadStart, UploadState
from server.services import attachments

router = APIRouter(prefix="/attachments", tags=["attachments"])
# tus clients send application/offset+octet-stream; any content type is accepted.
CHUNK_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}


@router.post("", response_model=UploadProgress)
def start(body: UploadStart, caller: CurrentCaller, ctx: Ctx) -> UploadProgress:
    offset, complete = attachments.start(
        ctx.engine, ctx.blobs, caller, body.sha256, body.size, ctx.settings.max_attachment_bytes
    )
    return UploadProgress(offset=offset, complete=complete)


@router.get("/{sha256}/offset", response_model=UploadState)
def offset(sha256: ShaPath, caller: CurrentCaller, ctx: Ctx) -> UploadState:
    got, size, complete = attachments.state(ctx.engine, ctx.blobs, caller, sha256)
    return UploadState(offset=got, size=size, complete=complete)


@router.patch("/{sha256}", response_model=UploadProgress, openapi_extra=CHUNK_BODY)
async def append(
    sha256: ShaPath,
    request: Request,
    caller: CurrentCaller,
    ctx: Ctx,
    upload_offset: Annotated[int, Header(ge=0, le=2**62)],
) -> UploadProgress:
    chunk = await _read_chunk(request, ctx.settings.max_chunk_bytes)
    got, complete = await run_in_threadpool(
        attachments.append, ctx.engine, ctx.blobs, caller, sha256, upload_offset, chunk
    )
    return UploadProgress(offset=got, complete=complete)


async def _read_chunk(request: Request, limit: int) -> bytes:
    parts, size = [], 0
    async for part in request.stream():
        size += len(part)
        if size > limit:
            raise ApiError(413, "too_large", f"chunks are limited to {limit} bytes")
        parts.append(part)
    if not size:
        raise ApiError(422, "empty_chunk", "the chunk is empty")
    return b"".join(parts)


@router.get("/{sha256}", response_class=StreamingResponse)
def download(sha256: ShaPath, caller: CurrentCaller, ctx: Ctx) -> StreamingResponse:
    attachments.readable_path(ctx.engine, ctx.blobs, caller, sha256)  # scope check, or 404
    # Sealed on disk: the plaintext streams frame by frame (each frame checked as it opens).
    size = ctx.blobs.size(sha256)
    return StreamingResponse(
        ctx.blobs.read_chunks(sha256),
        media_type="application/octet-stream",
        headers={"Content-Length": str(size)},
    )
