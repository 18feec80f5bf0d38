"""A private scratch directory per job, and moving a finished file to where the caller wants it.

ffmpeg writes into a fresh directory that only this user can enter (``tempfile.mkdtemp`` makes
it mode 0700), so a half-written plaintext video is never readable by others and never sits at
the caller's path. The directory is removed however the job ends. The caller's path receives
the file only once it is complete and checked, in one rename, so a reader of that path sees
either nothing or the whole file.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

PREFIX = "media-"


@contextlib.contextmanager
def private_workdir(parent: Path | str | None = None) -> Iterator[Path]:
    """A new mode-0700 directory under ``parent`` (default: the system temp dir), removed on exit."""
    path = Path(tempfile.mkdtemp(prefix=PREFIX, dir=parent))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def publish(finished: Path, dst: Path) -> None:
    """Move ``finished`` to ``dst`` (replacing it), readable by this user only.

    A rename when both are on one filesystem; otherwise a streamed copy to a hidden file next to
    ``dst`` and a rename of that, so ``dst`` is never seen half-written.
    """
    os.chmod(finished, 0o600)
    try:
        os.replace(finished, dst)
        return
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
    fd, staging = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".partial", dir=dst.parent)
    try:
        with os.fdopen(fd, "wb") as out, open(finished, "rb") as src:
            shutil.copyfileobj(src, out, length=1024 * 1024)
        os.replace(staging, dst)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(staging)
        raise
