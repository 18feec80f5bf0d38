"""Small pieces handlers use: file out (JSON out is relay.server.api.operation's)."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from relay.server.problems import ProblemStatuses


class BlobResponse(web.FileResponse, ProblemStatuses):
    """FileResponse streams from disk and honours Range requests, so a terminal can resume;
    the answers it writes on its own (missing file, failed precondition, Range past the end)
    come out as problem documents (MRO: BlobResponse, FileResponse, ProblemStatuses, StreamResponse)."""


def blob(path: Path) -> web.FileResponse:
    response = BlobResponse(path, chunk_size=64 * 1024)
    response.content_type = "application/octet-stream"
    return response
