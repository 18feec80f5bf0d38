"""Room on the relay's disk: the reserve kept free for the database, and how a full disk is told.

New bytes (an upload, an item's content) are refused with ``507 insufficient-storage`` once the
free space of the data directory's file system falls below ``disk_reserve_mb``, so that the
database, whose commits are small, always has room left: an acknowledged item is never lost to a
full disk, and reads keep working. A write that meets a full disk anyway (the reserve set too
small, another process filling the disk) is answered the same way, never as a 500.
"""

from __future__ import annotations

import errno
import os
import sqlite3

from relay.server.context import Context
from relay.server.errors import InsufficientStorage
from storage.errors import StorageFull

_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT}


def free_bytes(ctx: Context) -> int:
    """Bytes an unprivileged writer may still use on the data directory's file system."""
    stats = os.statvfs(ctx.settings.data_dir)
    return stats.f_bavail * stats.f_frsize


def below_reserve(ctx: Context) -> bool:
    return free_bytes(ctx) < ctx.settings.disk_reserve_bytes


def check_reserve(ctx: Context) -> None:
    """Refuse new bytes while free space is below the reserve (the client retries later)."""
    if below_reserve(ctx):
        raise InsufficientStorage()


def is_full(exc: BaseException) -> bool:
    """An exception that means the disk (or the user's quota) is full, however it was raised."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, StorageFull):
            return True
        if isinstance(current, OSError) and current.errno in _FULL_ERRNOS:
            return True
        if isinstance(current, sqlite3.Error) and getattr(current, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
            return True
        current = current.__cause__ or current.__context__
    return False
