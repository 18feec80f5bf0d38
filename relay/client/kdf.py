"""How hard a passphrase is stretched (Argon2id limits) when a key bundle is sealed or opened."""

from __future__ import annotations

from dataclasses import dataclass

import nacl.pwhash

from relay import envelope
from relay.envelope import Identity


@dataclass(frozen=True)
class Kdf:
    """Argon2id limits for sealing and opening key bundles."""

    opslimit: int
    memlimit: int

    def seal(self, identity: Identity, secret: str) -> bytes:
        return envelope.seal_identity(identity, secret, opslimit=self.opslimit, memlimit=self.memlimit)

    def open(self, bundle: bytes, secret: str) -> Identity:
        return envelope.open_identity(bundle, secret, min_opslimit=self.opslimit, min_memlimit=self.memlimit)

    @property
    def open_kwargs(self) -> dict[str, int]:
        return {"min_opslimit": self.opslimit, "min_memlimit": self.memlimit}


PRODUCTION_KDF = Kdf(nacl.pwhash.argon2id.OPSLIMIT_MODERATE, nacl.pwhash.argon2id.MEMLIMIT_MODERATE)
# Tests only (SecureDrop's "insecure_scrypt" habit): cheap enough to run hundreds of times.
TEST_KDF = Kdf(nacl.pwhash.argon2id.OPSLIMIT_MIN, nacl.pwhash.argon2id.MEMLIMIT_MIN)
