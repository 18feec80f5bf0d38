"""A client's local state: which relay, which approved device, which trust root, whose key.

A profile is a private directory (0700): ``profile.json`` holds the relay URL, the device id
and token, and the first coordinator's signing key (the trust root every enrollment is checked
against); ``identity.key`` holds the person's private keys sealed under their passphrase.
Terminals have no ``identity.key``: a participant unlocks their own bundle for one session.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

PROFILE_FILE = "profile.json"
IDENTITY_FILE = "identity.key"


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
            raise FileNotFoundError(f"no profile in {directory}; provision this device first")
        return cls(**json.loads(path.read_text("utf-8")))


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
