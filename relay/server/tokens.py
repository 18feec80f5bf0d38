"""Bearer secrets (device tokens, session tokens, the first enrollment code).

A token is ``<id>.<secret>``: the id finds the row, the 256-bit secret proves possession. Only
SHA-256 of the secret is stored (a fast hash is enough for a random 256-bit secret), and the
comparison is constant-time. Tokens are shown once and never logged.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets


def issue(row_id: str) -> tuple[str, str]:
    """A new token for ``row_id`` and the hash to store."""
    secret = secrets.token_urlsafe(32)
    return f"{row_id}.{secret}", digest(secret)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def split(token: str) -> tuple[str, str] | None:
    row_id, dot, secret = token.strip().partition(".")
    if not dot or not row_id or not secret or len(token) > 256:
        return None
    return row_id, secret


def matches(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(digest(secret), stored_hash)
