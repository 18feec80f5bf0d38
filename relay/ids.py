"""Identifiers: a short type prefix and 64 random bits, so a log line says what an id names."""

from __future__ import annotations

import re
import secrets

PREFIXES = {"institution": "ins", "person": "per", "device": "dev", "case": "cas", "item": "itm",
            "session": "ses", "challenge": "chl", "bootstrap": "bst",
            "condition": "cnd", "approval": "apr", "upload": "upl"}
_PATTERN = {kind: re.compile(rf"^{prefix}_[0-9a-f]{{16}}$") for kind, prefix in PREFIXES.items()}


def new(kind: str) -> str:
    return f"{PREFIXES[kind]}_{secrets.token_hex(8)}"


def valid(kind: str, value: object) -> bool:
    return isinstance(value, str) and _PATTERN[kind].fullmatch(value) is not None


def pattern(kind: str) -> str:
    """The regular expression, for pydantic ``Field(pattern=...)``."""
    return _PATTERN[kind].pattern
