"""``relay backup DEST`` and ``relay restore SRC --data-dir DIR``: a consistent copy of a relay's
data directory, taken while it runs, and the way back.

The database is copied with SQLite's online backup API through :meth:`Database.backup_to`
(one consistent snapshot; the relay keeps writing meanwhile). What the copy's rows point at is
then read *from the copy* and copied beside it: every blob an item names, and the acknowledged
part of every unfinished upload (its row's offset, which is where a client resumes). Blobs are
made durable before their rows commit, so every blob the snapshot names exists when the
snapshot is taken; only a purge that runs in between can remove one. Then the snapshot is taken
again (the purge's rows are in the new one) and only what changed is copied: a few rounds at
most, or the command says the relay is changing too fast and leaves no manifest.

``manifest.json`` is written last: a directory without it is not a backup. It lists every file
with its size and BLAKE3-256 (the format's one hash), the schema version and the audit chain's head at the snapshot.
Its own hash is printed, for the operator to keep apart from the backup (as the audit head is):
``relay restore --expect-manifest`` checks it, so a backup edited together with its manifest is
refused too.

Restore copies into an empty data directory only, checking every file's size and hash as it
copies (the copy is what is checked, not the source), refuses any file the manifest does not
list, then opens the database the one way the relay does (migrations apply to an older
schema; a newer one is refused) and verifies the whole audit chain up to the manifest's head.
On any failure nothing is left in the data directory.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path

import blake3
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from relay.i18n.cli import say
from relay.server.admin import OperatorError, open_store
from relay.server.serving import restrict_file_modes
from storage import audit
from storage.backup import read_snapshot
from storage.blobs import BlobStore
from storage.db import Database
from storage.errors import MigrationError

MANIFEST = "manifest.json"
FORMAT = "mediation-relay-backup/1"
DATABASE = "relay.sqlite3"
ROUNDS = 5
_CHUNK = 1024 * 1024
# The only paths a backup may hold: a restore writes nothing else, wherever a manifest points.
_LISTED = re.compile(r"^(relay\.sqlite3|blobs/objects/[0-9a-f]{2}/[0-9a-f]{32}|blobs/uploads/upl_[0-9a-f]{16}\.part)$")


class ManifestFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str = Field(pattern=_LISTED.pattern)
    size: int = Field(ge=0)
    blake3: str = Field(pattern=r"^[0-9a-f]{64}$")


class AuditHead(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seq: int = Field(ge=0)
    head: str = Field(pattern=r"^[0-9a-f]{64}$")


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    format: str = Field(pattern=f"^{re.escape(FORMAT)}$")
    created_at: str
    schema_version: int = Field(ge=1)
    audit: AuditHead
    files: list[ManifestFile]


class _Short(Exception):
    """A file ended before the length its row acknowledges (it changed under the copy)."""


def _copy(source: Path, target: Path, limit: int | None = None) -> tuple[int, str]:
    """Copy ``source`` (its first ``limit`` bytes, if given) to a new private file, fsynced;
    return its size and BLAKE3-256 (the format's one hash), computed over the bytes written."""
    digest = blake3.blake3()
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    size = 0
    with open(source, "rb") as src:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            with os.fdopen(fd, "wb", closefd=False) as out:
                while limit is None or size < limit:
                    chunk = src.read(_CHUNK if limit is None else min(_CHUNK, limit - size))
                    if not chunk:
                        break
                    out.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
                out.flush()
                os.fsync(fd)
        finally:
            os.close(fd)
    if limit is not None and size < limit:
        target.unlink()
        raise _Short(str(source))
    return size, digest.hexdigest()


def _hash_file(path: Path) -> tuple[int, str]:
    digest, size = blake3.blake3(), 0
    with open(path, "rb") as src:
        while chunk := src.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def _fsync_tree(root: Path) -> None:
    """Every directory under ``root`` (and itself): the new names in them survive a power cut."""
    for directory in [root, *(p for p in root.rglob("*") if p.is_dir())]:
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _is_empty(directory: Path) -> bool:
    return not directory.exists() or (directory.is_dir() and not any(directory.iterdir()))


def manifest_hash(data: bytes) -> str:
    return blake3.blake3(data).hexdigest()


# -- backup -----------------------------------------------------------------------------------


async def backup(data_dir: Path, dest: Path, lang: str) -> int:
    restrict_file_modes()
    dest = dest.resolve()
    if not _is_empty(dest):
        raise OperatorError(say("backup.dest-not-empty", lang, path=dest))
    dest.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        async with open_store(data_dir, lang=lang) as ctx:
            manifest = await _take(ctx.db, ctx.blobs, dest, lang)
        body = json.dumps(manifest.model_dump(), indent=1, sort_keys=True).encode("utf-8") + b"\n"
        tmp = dest / f".{MANIFEST}.part"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(body)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, dest / MANIFEST)
        await asyncio.to_thread(_fsync_tree, dest)
    except BaseException:
        # Half a backup must not pass for one: without its manifest it never does, but leave
        # nothing behind either (the directory was empty; all in it is ours).
        _empty(dest)
        raise
    blobs = sum(1 for f in manifest.files if f.path.startswith("blobs/objects/"))
    uploads = sum(1 for f in manifest.files if f.path.startswith("blobs/uploads/"))
    print(say("backup.done", lang, path=dest, schema=manifest.schema_version, seq=manifest.audit.seq,
              head=manifest.audit.head, blobs=blobs, uploads=uploads,
              bytes=sum(f.size for f in manifest.files), manifest=manifest_hash(body)))
    return 0


async def _take(db: Database, blobs: BlobStore, dest: Path, lang: str) -> Manifest:
    copied: dict[str, tuple[int | None, int, str]] = {}  # path -> (limit copied to, size, hash)
    for _ in range(ROUNDS):
        database = dest / DATABASE
        database.unlink(missing_ok=True)
        await db.backup_to(database)
        snapshot = await asyncio.to_thread(read_snapshot, database)
        wanted: dict[str, tuple[Path, int | None]] = {}
        for blob_id in snapshot.blobs:
            path = blobs.path(blob_id)
            wanted[path.relative_to(blobs.root.parent).as_posix()] = (path, None)
        for upload_id, offset in snapshot.uploads.items():
            path = blobs.upload_path(upload_id)
            wanted[path.relative_to(blobs.root.parent).as_posix()] = (path, offset)
        for stale in [p for p, (limit, _, _) in copied.items() if p not in wanted or wanted[p][1] != limit]:
            (dest / stale).unlink(missing_ok=True)  # gone from the newer snapshot, or an upload moved on
            del copied[stale]
        moved = False
        for rel, (source, limit) in sorted(wanted.items()):
            if rel in copied:
                continue
            try:
                size, digest = await asyncio.to_thread(_copy, source, dest / rel, limit)
            except (FileNotFoundError, _Short):
                moved = True  # purged, finished or expired after the snapshot: take it again
                continue
            copied[rel] = (limit, size, digest)
        if not moved:
            break
    else:
        raise OperatorError(say("backup.moving", lang, rounds=ROUNDS))
    size, digest = await asyncio.to_thread(_hash_file, dest / DATABASE)
    files = [ManifestFile(path=DATABASE, size=size, blake3=digest)]
    files += [ManifestFile(path=rel, size=s, blake3=d) for rel, (_, s, d) in sorted(copied.items())]
    return Manifest(format=FORMAT, created_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    schema_version=snapshot.schema_version,
                    audit=AuditHead(seq=snapshot.audit_seq, head=snapshot.audit_head), files=files)


def _empty(directory: Path) -> None:
    """Remove everything in ``directory`` (which this command found empty and filled)."""
    if not directory.is_dir():
        return
    for child in directory.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


# -- restore ----------------------------------------------------------------------------------


def read_manifest(src: Path, lang: str, expect: str | None = None) -> Manifest:
    try:
        body = (src / MANIFEST).read_bytes()
    except FileNotFoundError:
        raise OperatorError(say("restore.no-manifest", lang, path=src)) from None
    except OSError as exc:
        raise OperatorError(say("operator.unreadable", lang, path=src / MANIFEST, why=exc.strerror)) from None
    if expect is not None and manifest_hash(body) != expect.strip().lower():
        raise OperatorError(say("restore.manifest-hash", lang, path=src / MANIFEST))
    try:
        manifest = Manifest.model_validate_json(body)
    except ValidationError as exc:
        where = "; ".join(".".join(map(str, e["loc"])) or "-" for e in exc.errors(include_url=False)[:5])
        raise OperatorError(say("restore.bad-manifest", lang, path=src / MANIFEST, where=where)) from None
    paths = [f.path for f in manifest.files]
    if DATABASE not in paths or len(set(paths)) != len(paths):
        raise OperatorError(say("restore.bad-manifest", lang, path=src / MANIFEST, where="files"))
    return manifest


def _unlisted(src: Path, manifest: Manifest) -> list[str]:
    listed = {f.path for f in manifest.files} | {MANIFEST}
    return sorted(rel for p in src.rglob("*") if not p.is_dir()
                  and (rel := p.relative_to(src).as_posix()) not in listed)


async def restore(src: Path, data_dir: Path, lang: str, expect_manifest: str | None = None) -> int:
    restrict_file_modes()
    src, data_dir = src.resolve(), data_dir.resolve()
    manifest = read_manifest(src, lang, expect_manifest)
    if unlisted := _unlisted(src, manifest):
        raise OperatorError(say("restore.unlisted", lang, path=src, files=", ".join(unlisted[:5])))
    if not _is_empty(data_dir):
        raise OperatorError(say("restore.not-empty", lang, path=data_dir))
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    data_dir.chmod(0o700)
    try:
        for entry in manifest.files:
            try:
                size, digest = await asyncio.to_thread(_copy, src / entry.path, data_dir / entry.path)
            except FileNotFoundError:
                raise OperatorError(say("restore.missing", lang, file=entry.path)) from None
            if size != entry.size or digest != entry.blake3:
                raise OperatorError(say("restore.damaged", lang, file=entry.path))
        (data_dir / "blobs").mkdir(exist_ok=True, mode=0o700)
        snapshot = await asyncio.to_thread(read_snapshot, data_dir / DATABASE)
        if (snapshot.schema_version, snapshot.audit_seq, snapshot.audit_head) != (
                manifest.schema_version, manifest.audit.seq, manifest.audit.head):
            raise OperatorError(say("restore.damaged", lang, file=DATABASE))
        restored = {f.path for f in manifest.files}
        store = BlobStore(data_dir / "blobs")
        for blob_id in snapshot.blobs:
            if store.path(blob_id).relative_to(data_dir).as_posix() not in restored:
                raise OperatorError(say("restore.missing", lang, file=f"blobs/objects/{blob_id[:2]}/{blob_id}"))
        try:
            async with open_store(data_dir, lang=lang) as ctx:  # migrations apply here, as at the relay's start
                result = await audit.verify(ctx.db, expect_head=manifest.audit.head if manifest.audit.seq else None)
        except MigrationError as exc:
            raise OperatorError(say("restore.schema", lang, why=exc)) from None
        if not result.ok:
            raise OperatorError(say("audit-bad", lang, seq=result.bad_seq or "end", problem=result.problem))
        await asyncio.to_thread(_fsync_tree, data_dir)
    except BaseException:
        _empty(data_dir)
        raise
    print(say("restore.done", lang, path=data_dir, files=len(manifest.files), schema=manifest.schema_version,
              n=result.entries, head=result.head))
    return 0

