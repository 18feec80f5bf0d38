"""Envelope format, version 2: every cryptographic operation of the relay, over PyNaCl, with
BLAKE3-256 as the format's one hash.

The relay server never holds a private key or a content key. This module is what the
participant's endpoint, the mediator's desk and the terminal use to seal and open items, and
what the server uses to check signatures and hashes on ciphertext. ``docs/envelope-v2.md`` is
the byte-level specification; ``tests/vectors/envelope-v2.json`` holds test vectors (one
consistent exchange, among others). Version 1 (BLAKE2b-256) is retired: its blobs and documents
are refused.

Contract, in the manner of pyca/cryptography's Fernet:

* Opening, decrypting, verifying or parsing anything that came from outside fails with exactly
  one exception, :class:`EnvelopeError`, that carries no detail. A caller cannot tell a bad
  MAC from a truncated blob from a wrong key, and neither can an attacker watching it.
* Producing something (encrypting, sealing, signing, building a document) with arguments that
  are wrong in kind (a 31-byte key, a negative size, an unknown ``kind``) is a programming
  error and raises ``ValueError``/``TypeError`` with a message for the developer. The two
  exceptions are :func:`canonical_json` and :func:`sign`, which raise :class:`EnvelopeError`
  for a document that :func:`verify` would refuse, so both sides reject the same inputs.
* No I/O other than the file objects passed in, no clock reads (times are arguments), no
  logging. Nothing here prints or formats a key or a plaintext, and reprs hide secrets.

The package is split by concern so the relay server can import only what verifies and hashes:

* ``relay.envelope.documents``: canonical JSON, signed documents (their pydantic models),
  signatures, base64, the hash;
* ``relay.envelope.stream``: the content stream (encrypts and decrypts);
* ``relay.envelope.keys``: identities, key bundles, sealing content keys (opens them too).

``from relay import envelope; envelope.open_key(...)`` still works on a person's machine: names
are looked up in the submodules on first use (PEP 562), so importing a submodule never pulls in
the others. The server imports ``relay.envelope.documents`` and nothing else of this package
(``tests/test_layout.py`` checks it).
"""

from __future__ import annotations

import importlib
from typing import Any

_SUBMODULES = ("documents", "stream", "keys")


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:  # "from relay.envelope import documents": that submodule, and no other
        return importlib.import_module(f"relay.envelope.{name}")
    for sub in _SUBMODULES:
        module = importlib.import_module(f"relay.envelope.{sub}")
        if name in vars(module):
            value = vars(module)[name]
            globals()[name] = value
            return value
    raise AttributeError(f"module 'relay.envelope' has no attribute {name!r}")
