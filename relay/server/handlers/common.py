"""Small pieces handlers use: file out (JSON out is relay.server.api.operation's)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import IO, Any

from aiohttp import web

from relay.server.problems import ProblemStatuses


class BlobResponse(web.FileResponse, ProblemStatuses):
    """FileResponse streams from disk and honours Range requests, so a terminal can resume;
    the answers it writes on its own (missing file, failed precondition, Range past the end)
    come out as problem documents (MRO: BlobResponse, FileResponse, ProblemStatuses, StreamResponse)."""

    async def _sendfile(self, request: web.BaseRequest, fobj: IO[Any], offset: int, count: int) -> Any:
        # Over the relay's own TLS there is no sendfile: asyncio's loop.sendfile copies through
        # the SSL transport itself, and a connection lost mid-file (the recipient hanging up, a
        # delivery cut off) makes it fail in its cleanup (3.11: AttributeError in restore(),
        # logged as an unhandled exception). aiohttp's own chunked copy ends quietly instead.
        transport = request.transport
        if transport is not None and transport.get_extra_info("sslcontext") is not None:
            writer = await super(web.FileResponse, self).prepare(request)  # as FileResponse._sendfile does
            return await self._sendfile_fallback(writer, fobj, offset, count)
        return await super()._sendfile(request, fobj, offset, count)


def blob(path: Path) -> web.FileResponse:
    response = BlobResponse(path, chunk_size=64 * 1024)
    response.content_type = "application/octet-stream"
    return response


Streaming = Callable[[Any], AbstractAsyncContextManager[bool]]


class DeliveryResponse(BlobResponse):
    """A delivery's ciphertext, known as streaming (``ctx.deliveries``) while its bytes go out
    (FileResponse sends the whole body inside ``prepare``), so that a change which stops the
    delivery also cuts this answer off mid-file (``services.deliveries``)."""

    def __init__(self, path: Path, streaming: Streaming) -> None:
        super().__init__(path, chunk_size=64 * 1024)
        self.content_type = "application/octet-stream"
        self._streaming = streaming

    async def prepare(self, request: web.BaseRequest) -> Any:
        async with self._streaming(request.transport) as allowed:
            if not allowed:  # stopped before its first byte; aiohttp ends a ConnectionError quietly
                raise ConnectionResetError("the delivery was stopped before it began")
            return await super().prepare(request)
