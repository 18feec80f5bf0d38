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


class BlobFormatMismatch(BlobMismatch):
    """A blob does not begin with the format's header (a retired envelope version); nothing was kept."""
