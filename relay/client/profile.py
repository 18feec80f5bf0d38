"""A client's local state: which relay, which approved device, which trust root, whose key.

A profile is a private directory (0700): ``profile.json`` holds the relay URL, the device id
and token, and the first coordinator's signing key (the trust root every enrollment is checked
against); ``identity.key`` holds the person's private keys sealed under their passphrase.
Terminals have no ``identity.key``: a participant unlocks their own bundle for one session.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

PROFILE_FILE = "profile.json"
IDENTITY_FILE = "identity.key"
PUBLIC_KEYS_FILE = "public-keys.json"  # written by ``relay keygen`` beside the sealed key


class NoProfile(FileNotFoundError):
    """No profile at this path: a mistyped ``--profile``, or a device not provisioned yet."""

    def __init__(self, directory: Path) -> None:
        super().__init__(f"no profile in {directory}; provision this device first")
        self.directory = directory


class BadProfile(ValueError):
    """A profile file that is not what ``relay provision`` writes."""

    def __init__(self, directory: Path) -> None:
        super().__init__(f"the profile in {directory} cannot be read")
        self.directory = directory


@dataclass(frozen=True)
class Profile:
    url: str
    device_id: str
    device_token: str
    device_kind: str
    trust_root: str  # b64 Ed25519 key of the first coordinator
    person_id: str | None = None

    def save(self, directory: Path) -> None:
        private_dir(directory)
        write_private(directory / PROFILE_FILE, json.dumps(asdict(self), indent=2).encode())

    @classmethod
    def load(cls, directory: Path) -> Profile:
        path = directory / PROFILE_FILE
        if not path.is_file():
            raise NoProfile(directory)
        try:
            return cls.from_dict(json.loads(path.read_text("utf-8")))
        except (ValueError, TypeError):
            raise BadProfile(directory) from None

    @classmethod
    def from_dict(cls, data: Any) -> Profile:
        """The profile's fields from ``data`` (extra keys, like a device file's, are ignored);
        TypeError if one is missing or not a string."""
        if not isinstance(data, dict):
            raise TypeError("not an object")
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        if any(v is not None and not isinstance(v, str) for v in values.values()):
            raise TypeError("a field is not text")
        return cls(**values)


def private_dir(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(directory, 0o700)
    return directory


def write_private(path: Path, data: bytes) -> None:
    """Write a file only its owner can read, atomically."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)
