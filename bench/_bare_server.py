"""The baseline: a bare aiohttp handler doing one aiosqlite insert and one select per request."""

from __future__ import annotations

import sys
from pathlib import Path

import aiosqlite
from aiohttp import web


async def make_app(db_path: Path) -> web.Application:
    app = web.Application()
    conn = await aiosqlite.connect(db_path, isolation_level=None)
    await conn.execute("PRAGMA journal_mode = WAL")
    await conn.execute("PRAGMA synchronous = FULL")
    await conn.execute("CREATE TABLE IF NOT EXISTS letters (id INTEGER PRIMARY KEY, body BLOB)")

    async def roundtrip(request: web.Request) -> web.Response:
        body = await request.read()
        cur = await conn.execute("INSERT INTO letters (body) VALUES (?)", (body,))
        async with conn.execute("SELECT body FROM letters WHERE id = ?", (cur.lastrowid,)) as rows:
            row = await rows.fetchone()
        return web.Response(body=row[0])

    async def close(_: web.Application) -> None:
        await conn.close()  # aiosqlite's thread would otherwise keep the process alive

    app.router.add_post("/letter", roundtrip)
    app.on_cleanup.append(close)
    return app


if __name__ == "__main__":
    port, db = int(sys.argv[1]), Path(sys.argv[2])
    web.run_app(make_app(db), host="127.0.0.1", port=port, print=lambda m: print(m, file=sys.stderr, flush=True))
