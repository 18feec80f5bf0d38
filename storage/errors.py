"""Errors raised by the storage layer. Each says what went wrong, never with row contents."""


class StorageError(Exception):
    """Base class for storage failures."""


class MigrationError(StorageError):
    """The database schema is newer than this code, or a migration failed: refuse to start."""


class NotFound(StorageError):
    """The row asked for does not exist."""


class Conflict(StorageError):
    """The write would break a uniqueness or state rule (for example a state that moved on)."""


class LegalHoldActive(Conflict):
    """The case is under legal hold: nothing of it may be erased or purged while it holds."""


class BlobPathError(StorageError):
    """A blob name that is not one the store issued, or a path that escapes the blob directory."""


class BlobTooLarge(StorageError):
    """A streamed blob went past the size limit; nothing was kept."""


class BlobMismatch(StorageError):
    """A streamed blob's size or hash differs from what was promised; nothing was kept."""


class StorageFull(StorageError):
    """The disk (or quota) is full: the write was not committed. Reads still work."""


class SignedOut(StorageError):
    """The session a write was made for ended, or its device or person was revoked, while the
    request was still arriving: the write is refused (revocation takes effect at once)."""


class QuotaExceeded(StorageError):
    """A person's quota would be passed by this write; nothing was written."""

    def __init__(self, quota: str, limit: int, used: int, resets_at: str | None) -> None:
        super().__init__(quota)
        self.quota, self.limit, self.used, self.resets_at = quota, limit, used, resets_at


class AlreadyDecided(Conflict):
    """A decision on an item that is no longer waiting for one; carries what the item is now."""

    def __init__(self, state: str, decision: str | None, decided_at: str | None) -> None:
        super().__init__("the item was decided or changed in the meantime")
        self.state, self.decision, self.decided_at = state, decision, decided_at


class PausedByCoordinator(Conflict):
    """A mediator asked to resume a case the national unit paused: only the coordinator may."""


class BlobFormatMismatch(BlobMismatch):
    """A blob does not begin with the format's header (a retired envelope version); nothing was kept."""
