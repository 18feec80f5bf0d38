"""Small pieces every handler uses: JSON out, file out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import web


def ok(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status)


def blob(path: Path) -> web.FileResponse:
    # FileResponse streams from disk and honours Range requests, so a terminal can resume.
    response = web.FileResponse(path, chunk_size=64 * 1024)
    response.content_type = "application/octet-stream"
    return response
