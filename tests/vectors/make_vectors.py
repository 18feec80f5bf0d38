"""Generate tests/vectors/envelope-v2.json, the test vectors of docs/envelope-v2.md.

Run from the repository root: ``python tests/vectors/make_vectors.py``. The output is
deterministic: every key, seed, salt, nonce and stream header below is fixed, and the two
operations that libsodium randomises internally are made deterministic here:

* secretstream headers: ``relay.envelope._encrypt_stream_with_header`` (see its docstring);
* sealed boxes: built by hand from a fixed ephemeral key (``_seal_deterministic``), exactly as
  ``crypto_box_seal`` builds them, and checked by opening them with ``relay.envelope``.

Every fixed value is derived from a label with BLAKE3 in its extendable-output mode
(:func:`fixed`), so the file explains where each one comes from. The ``exchange`` section is one
consistent exchange (docs/envelope-v2.md section 10.1): the sealed keys open the blobs the
documents name, and the documents link to each other and to the enrolled keys.

Never reuse these constructions for real data. ``tests/test_envelope.py`` checks that running
``build()`` reproduces the committed file byte for byte.
"""

from __future__ import annotations

import hashlib
import io
import json
import sys
import unicodedata
from pathlib import Path
from typing import Any

import blake3
import nacl.bindings
import nacl.pwhash.argon2id

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # allow running as a plain script from anywhere
    sys.path.insert(0, str(ROOT))

from relay import envelope as ev  # noqa: E402

OUTPUT = Path(__file__).with_name("envelope-v2.json")

# The rule that generates the plaintext of every secretstream case, as a Python expression.
PLAINTEXT_RULE = "bytes(i % 251 for i in range(n))"


def plaintext(n: int) -> bytes:
    """The plaintext of ``n`` bytes named by PLAINTEXT_RULE."""
    return bytes(i % 251 for i in range(n))


def fixed(label: str, size: int = 32) -> bytes:
    """A fixed pseudo-random value, derived from a label so the file explains itself: the first
    ``size`` bytes of BLAKE3's extendable output over ``"mediation-relay test vector: " + label``."""
    return blake3.blake3(b"mediation-relay test vector: " + label.encode()).digest(length=size)


def _seal_deterministic(message: bytes, box_pk: bytes, ephemeral_seed: bytes) -> bytes:
    """crypto_box_seal with a chosen ephemeral key: epk || crypto_box(m, nonce, pk, esk).

    The nonce is libsodium's own construction inside crypto_box_seal (BLAKE2b-192 of epk || pk,
    fixed by libsodium, not by this format): an implementation calls crypto_box_seal and never
    computes it; it is written out here only to make the vector reproducible."""
    epk, esk = nacl.bindings.crypto_box_seed_keypair(ephemeral_seed)
    nonce = hashlib.blake2b(epk + box_pk, digest_size=24).digest()
    return epk + nacl.bindings.crypto_box(message, nonce, box_pk, esk)


def _identity_vector(identity: ev.Identity, sign_seed: bytes, box_secret: bytes) -> dict[str, str]:
    public = identity.public
    return {
        "sign_seed_hex": sign_seed.hex(),
        "box_secret_hex": box_secret.hex(),
        "sign_pk_hex": public.sign_pk.hex(),
        "box_pk_hex": public.box_pk.hex(),
        "fingerprint": public.fingerprint(),
    }


def _canonical_vectors() -> dict[str, Any]:
    valid: dict[str, dict[str, Any]] = {
        "sorted keys, no whitespace, literals": {"b": 1, "a": [True, False, None], "c": {"z": "", "y": -7}},
        "non-ASCII is raw UTF-8; only quote, backslash and controls are escaped": {
            "text": 'Grüße, 日本, 😀, "quoted" \\ / \u2028 \x7f',
            "controls": "\x00\x01\x08\t\n\x0b\x0c\r\x1f",
        },
        "keys sort by code point (= UTF-8 bytes), not by UTF-16 units": {
            "\ue000": 1,
            "\U0001f600": 2,
            "a": 3,
            "B": 4,
            "é": 5,
        },
        "integers at the interoperable limits": {"max": 2**53 - 1, "min": -(2**53 - 1), "zero": 0},
        "empty object": {},
        "nested and empty containers": {"l": [[], {}, [1, [2]]], "o": {"k": {"k": {}}}},
    }
    invalid: dict[str, dict[str, Any]] = {
        "a float, even an integral one": {"x": 1.0},
        "a fraction": {"x": 0.5},
        "an integer above 2**53 - 1": {"x": 2**53},
        "an integer below -(2**53 - 1)": {"x": -(2**53)},
        "a lone surrogate in a value": {"x": "\ud800"},
        "a lone surrogate in a key": {"\udfff": 1},
        "a float nested in a list": {"x": [1, [2.5]]},
    }
    return {
        "valid": [
            {
                "name": name,
                "input": obj,
                "canonical_utf8_hex": ev.canonical_json(obj).hex(),
                "blake3_256": ev.digest(obj),
            }
            for name, obj in valid.items()
        ],
        "invalid": [{"name": name, "input": obj} for name, obj in invalid.items()],
    }


def _chunk_table(n: int) -> list[dict[str, Any]]:
    """Where each chunk of the blob of an n-byte plaintext lies, and its tag."""
    table = []
    offset = ev.HEADER_SIZE
    full, rest = divmod(n, ev.CHUNK_SIZE)
    for _ in range(full):
        table.append({"offset": offset, "length": ev.ENCRYPTED_CHUNK_SIZE, "tag": "MESSAGE"})
        offset += ev.ENCRYPTED_CHUNK_SIZE
    table.append({"offset": offset, "length": rest + 17, "tag": "FINAL"})
    return table


def _stream_vectors(key: bytes, header: bytes) -> tuple[dict[str, Any], dict[int, bytes]]:
    sizes = {"empty": 0, "one byte": 1, "thirteen bytes": 13, "64 KiB + 1": 65537, "exactly 64 KiB": 65536}
    blobs: dict[int, bytes] = {}
    cases = []
    for name, n in sizes.items():
        blob = b"".join(ev._encrypt_stream_with_header(key, header, io.BytesIO(plaintext(n))))
        assert ev.decrypt_bytes(key, blob) == plaintext(n)
        assert len(blob) == ev.ciphertext_size(n)
        blobs[n] = blob
        case: dict[str, Any] = {
            "name": name,
            "plaintext_size": n,
            "plaintext_rule": PLAINTEXT_RULE,
            "blob_size": len(blob),
            "blob_blake3_256": ev.blob_hash(blob),
            "chunks": _chunk_table(n),
        }
        if n == 65536:
            # Same key, header and first 64 KiB of plaintext as "64 KiB + 1", so the first
            # chunk is identical; store it once to keep the file small.
            shared = ev.HEADER_SIZE + ev.ENCRYPTED_CHUNK_SIZE
            assert blob[:shared] == blobs[65537][:shared]
            case |= {"blob_shares_prefix_with": "64 KiB + 1", "shared_prefix_length": shared}
            case["blob_tail_hex"] = blob[shared:].hex()
        else:
            case["blob_hex"] = blob.hex()
        cases.append(case)

    # A valid-looking chunk after FINAL: the stream state simply continues past a FINAL tag,
    # so someone holding the key can append a chunk that authenticates. It must be refused.
    state = nacl.bindings.crypto_secretstream_xchacha20poly1305_state()
    nacl.bindings.crypto_secretstream_xchacha20poly1305_init_pull(state, header, key)
    push = nacl.bindings.crypto_secretstream_xchacha20poly1305_push
    final = push(state, plaintext(13), tag=nacl.bindings.crypto_secretstream_xchacha20poly1305_TAG_FINAL)
    assert ev.MAGIC + header + final == blobs[13]
    appended = push(state, b"more", tag=nacl.bindings.crypto_secretstream_xchacha20poly1305_TAG_FINAL)
    # A stream that ends on a MESSAGE chunk: it authenticates chunk by chunk but never ends.
    state = nacl.bindings.crypto_secretstream_xchacha20poly1305_state()
    nacl.bindings.crypto_secretstream_xchacha20poly1305_init_pull(state, header, key)
    unterminated = ev.MAGIC + header + push(state, plaintext(13))

    first_final = ev.HEADER_SIZE + ev.ENCRYPTED_CHUNK_SIZE  # offset of 64 KiB + 1's FINAL chunk
    invalid = [
        {"name": "empty input", "blob_hex": ""},
        {"name": "magic and header only", "base": 13, "op": "truncate", "length": ev.HEADER_SIZE},
        {"name": "wrong format version in magic", "base": 13, "op": "flip_bit", "bit": 3 * 8 + 1},
        {"name": "bit flipped in stream header", "base": 13, "op": "flip_bit", "bit": 10 * 8},
        {"name": "bit flipped in chunk tag byte", "base": 13, "op": "flip_bit", "bit": ev.HEADER_SIZE * 8},
        {"name": "bit flipped in MAC", "base": 13, "op": "flip_bit", "bit": (ev.HEADER_SIZE + 29) * 8 + 7},
        {"name": "last byte removed", "base": 13, "op": "truncate", "length": ev.ciphertext_size(13) - 1},
        {"name": "FINAL chunk dropped (64 KiB + 1)", "base": 65537, "op": "truncate", "length": first_final},
        {
            "name": "empty FINAL chunk dropped (64 KiB)",
            "base": 65536,
            "op": "truncate",
            "length": first_final,
        },
        {
            "name": "bit flipped in second chunk",
            "base": 65537,
            "op": "flip_bit",
            "bit": (first_final + 5) * 8,
        },
        {"name": "one byte appended", "base": 13, "op": "append_hex", "hex": "00"},
        {
            "name": "authentic chunk appended after FINAL",
            "base": 13,
            "op": "append_hex",
            "hex": appended.hex(),
        },
        {"name": "no FINAL chunk (short MESSAGE chunk at the end)", "blob_hex": unterminated.hex()},
        {"name": "wrong key", "base": 13, "op": "use_key", "key_hex": fixed("another content key").hex()},
    ]
    return {
        "key_hex": key.hex(),
        "header_hex": header.hex(),
        "cases": cases,
        "invalid": invalid,
    }, blobs


LETTER = (
    "To the person who harmed me: I am writing because the mediator said I could. "
    "I want you to know what that night changed for my family. — Grüße, A."
)
# The delivery rendition the mediator releases: the same letter with a sentence taken out.
REDACTED = "To the person who harmed me: I am writing because the mediator said I could. [removed] — Grüße, A."


def _exchange(people: dict[str, ev.Identity], sealed_to: Any) -> dict[str, Any]:
    """One consistent exchange: enrollments, an item (manifest, blob, sealed keys), the mediator's
    release (decision naming the sender, the delivery blob and the sealed keys that open it) and
    the recipient's receipt, each signed, each checked here as a third party would."""
    ids = {"sender": "p-sender", "mediator": "p-mediator", "recipient": "p-recipient", "coordinator": "p-coordinator"}
    roles = {"sender": ("participant", "victim"), "mediator": ("mediator", None),
             "recipient": ("participant", "offender"), "coordinator": ("coordinator", None)}
    enrollments = {}
    for name in ("coordinator", "sender", "mediator", "recipient"):
        doc = ev.enrollment(person_id=ids[name], role=roles[name][0], side=roles[name][1],
                            sign_pk=people[name].public.sign_pk, box_pk=people[name].public.box_pk,
                            enrolled_by=ids["coordinator"], enrolled_at="2026-11-01T08:30:00Z")
        enrollments[name] = {"document": doc,
                             "signature_b64": ev.sign(ev.Domain.ENROLLMENT, doc, people["coordinator"].signing_key)}

    item_key, item_header = fixed("exchange: item content key"), fixed("exchange: item stream header", 24)
    item_blob = b"".join(ev._encrypt_stream_with_header(item_key, item_header, io.BytesIO(LETTER.encode())))
    manifest = ev.item_manifest(
        item_id="item-0001", case_id="case-2026-0042", kind="letter", sender=ids["sender"],
        recipient=ids["recipient"], created_at="2026-11-21T19:27:28Z", content_type="text/plain; charset=utf-8",
        size=len(item_blob), hash=ev.blob_hash(item_blob),
        keys={ids[name]: sealed_to(name, item_key, "item") for name in ("sender", "mediator")})
    manifest_sig = ev.sign(ev.Domain.MANIFEST, manifest, people["sender"].signing_key)

    delivery_key = fixed("exchange: delivery content key")
    delivery_header = fixed("exchange: delivery stream header", 24)
    delivery_blob = b"".join(ev._encrypt_stream_with_header(delivery_key, delivery_header,
                                                            io.BytesIO(REDACTED.encode())))
    decision = ev.decision_manifest(
        item_id="item-0001", case_id="case-2026-0042", manifest_hash=ev.digest(manifest),
        sender={"id": ids["sender"], "fingerprint": people["sender"].public.fingerprint()},
        decision="release", mediator=ids["mediator"], decided_at="2026-11-22T09:00:00.25Z",
        recipient=ids["recipient"],
        delivery={"content_type": "text/plain; charset=utf-8", "size": len(delivery_blob),
                  "hash": ev.blob_hash(delivery_blob),
                  "keys": {ids[name]: sealed_to(name, delivery_key, "delivery") for name in ("recipient", "mediator")}},
        reason=None)
    decision_sig = ev.sign(ev.Domain.DECISION, decision, people["mediator"].signing_key)
    receipt = ev.receipt(item_id="item-0001", decision_hash=ev.digest(decision), recipient=ids["recipient"],
                         opened_at="2026-11-23T14:05:10Z")
    receipt_sig = ev.sign(ev.Domain.RECEIPT, receipt, people["recipient"].signing_key)

    # What a third party checks, from the trust root (the coordinator's sign_pk) down:
    root = people["coordinator"].public.sign_pk
    enrolled = {}
    for entry in enrollments.values():
        ev.verify(ev.Domain.ENROLLMENT, entry["document"], entry["signature_b64"], root)
        enrolled[entry["document"]["person_id"]] = ev.PublicIdentity(ev.b64d(entry["document"]["sign_pk"]),
                                                                     ev.b64d(entry["document"]["box_pk"]))
    ev.verify(ev.Domain.MANIFEST, manifest, manifest_sig, enrolled[manifest["sender"]].sign_pk)
    assert (len(item_blob), ev.blob_hash(item_blob)) == (manifest["size"], manifest["hash"])
    opened = ev.open_key(manifest["keys"][ids["mediator"]], people["mediator"])
    assert ev.decrypt_bytes(opened, item_blob) == LETTER.encode()
    ev.verify(ev.Domain.DECISION, decision, decision_sig, enrolled[decision["mediator"]].sign_pk)
    assert decision["manifest_hash"] == ev.digest(manifest)
    assert decision["sender"] == {"id": manifest["sender"], "fingerprint": enrolled[manifest["sender"]].fingerprint()}
    delivery = decision["delivery"]
    assert (len(delivery_blob), ev.blob_hash(delivery_blob)) == (delivery["size"], delivery["hash"])
    opened = ev.open_key(delivery["keys"][decision["recipient"]], people["recipient"])
    assert ev.decrypt_bytes(opened, delivery_blob) == REDACTED.encode()
    ev.verify(ev.Domain.RECEIPT, receipt, receipt_sig, enrolled[receipt["recipient"]].sign_pk)
    assert receipt["decision_hash"] == ev.digest(decision)

    return {
        "person_ids": ids,
        "trust_root": "coordinator",
        "enrollments": enrollments,
        "item": {
            "plaintext_utf8": LETTER,
            "content_key_hex": item_key.hex(),
            "header_hex": item_header.hex(),
            "blob_hex": item_blob.hex(),
            "manifest": manifest,
            "manifest_digest": ev.digest(manifest),
            "signature_b64": manifest_sig,
        },
        "release": {
            "plaintext_utf8": REDACTED,
            "content_key_hex": delivery_key.hex(),
            "header_hex": delivery_header.hex(),
            "blob_hex": delivery_blob.hex(),
            "decision": decision,
            "decision_digest": ev.digest(decision),
            "signature_b64": decision_sig,
        },
        "receipt": {"document": receipt, "signature_b64": receipt_sig},
    }


def build() -> dict[str, Any]:
    """Every vector, as the JSON-ready dict written to OUTPUT."""
    seeds = {
        name: (fixed(f"{name} sign seed"), fixed(f"{name} box secret"))
        for name in ("sender", "mediator", "recipient", "coordinator")
    }
    people = {name: ev.Identity.from_seeds(*pair) for name, pair in seeds.items()}

    content_key = fixed("content key")
    header = fixed("stream header", 24)
    stream, _ = _stream_vectors(content_key, header)

    def sealed_to(person: str, key: bytes, label: str = "") -> str:
        ephemeral = fixed(f"ephemeral for {person}" + (f" ({label})" if label else ""))
        sealed = _seal_deterministic(key, people[person].public.box_pk, ephemeral)
        assert ev.open_key(ev.b64e(sealed), people[person]) == key
        return ev.b64e(sealed)

    exchange = _exchange(people, sealed_to)
    documents = [
        ("MANIFEST", "sender", exchange["item"]["manifest"]),
        ("DECISION", "mediator", exchange["release"]["decision"]),
        ("RECEIPT", "recipient", exchange["receipt"]["document"]),
        (
            "LOGIN",
            "recipient",
            ev.login_statement(
                challenge=ev.b64e(fixed("login challenge")), device_id="d-terminal-7", person_id="p-recipient"
            ),
        ),
        ("ENROLLMENT", "coordinator", exchange["enrollments"]["recipient"]["document"]),
    ]
    signatures = []
    for domain_name, signer, document in documents:
        domain = ev.Domain[domain_name]
        signature = ev.sign(domain, document, people[signer].signing_key)
        ev.verify(domain, document, signature, people[signer].public.sign_pk)
        signatures.append(
            {
                "domain": domain_name,
                "prefix_hex": domain.value.hex(),
                "signer": signer,
                "document": document,
                "canonical_utf8_hex": ev.canonical_json(document).hex(),
                "digest": ev.digest(document),
                "signature_b64": signature,
            }
        )

    # Passphrase bundle: cheap Argon2id limits (recorded in the bundle) so tests stay fast.
    passphrase = "correct horse battery staple é"  # precomposed é (U+00E9)
    opslimit, memlimit = nacl.pwhash.argon2id.OPSLIMIT_MIN, nacl.pwhash.argon2id.MEMLIMIT_MIN
    salt, nonce = fixed("bundle salt", 16), fixed("bundle nonce", 24)
    bundle = ev._seal_identity_with(
        people["sender"], passphrase, opslimit=opslimit, memlimit=memlimit, salt=salt, nonce=nonce
    )
    derived = nacl.pwhash.argon2id.kdf(32, passphrase.encode(), salt, opslimit=opslimit, memlimit=memlimit)

    return {
        "description": "Test vectors for docs/envelope-v2.md. Raw bytes are lowercase hex (*_hex); "
        "values that the format itself carries as base64 are base64 (*_b64, and inside documents). "
        "A secretstream case with blob_shares_prefix_with is the first shared_prefix_length bytes of "
        "that case's blob followed by blob_tail_hex. 'exchange' is one consistent exchange, checkable "
        "end to end (section 10.1). Generated by tests/vectors/make_vectors.py; do not edit by hand.",
        "constants": {
            "version": ev.VERSION,
            "magic_hex": ev.MAGIC.hex(),
            "chunk_size": ev.CHUNK_SIZE,
            "header_size": ev.HEADER_SIZE,
            "encrypted_chunk_size": ev.ENCRYPTED_CHUNK_SIZE,
            "domains": {domain.name: domain.value.hex() for domain in ev.Domain},
        },
        "blake3_256": [
            # BLAKE3 works in 1024-byte chunks and 64-byte blocks: inputs on either side of both.
            {"input_hex": data.hex(), "hash": ev.blob_hash(data)}
            for data in (b"", b"abc", plaintext(64), plaintext(1024), plaintext(1025), plaintext(3000))
        ],
        "canonical_json": _canonical_vectors(),
        "identities": {name: _identity_vector(people[name], *seeds[name]) for name in people},
        "exchange": exchange,
        "signatures": signatures,
        "secretstream": stream,
        "sealed_key": {
            "recipient": "recipient",
            "content_key_hex": content_key.hex(),
            "ephemeral_seed_hex": fixed("ephemeral for recipient").hex(),
            "sealed_b64": sealed_to("recipient", content_key),
        },
        "key_bundle": {
            "identity": "sender",
            "passphrase": passphrase,
            "passphrase_nfd": unicodedata.normalize("NFD", passphrase),
            "opslimit": opslimit,
            "memlimit": memlimit,
            "salt_hex": salt.hex(),
            "nonce_hex": nonce.hex(),
            "derived_key_hex": derived.hex(),
            "bundle_hex": bundle.hex(),
        },
    }


def render(vectors: dict[str, Any]) -> str:
    """The file's exact text (ASCII-only JSON, so lone surrogates and every byte are explicit)."""
    return json.dumps(vectors, indent=1, ensure_ascii=True) + "\n"


def main() -> None:
    OUTPUT.write_text(render(build()), encoding="ascii")
    print(f"wrote {OUTPUT.relative_to(ROOT)} ({OUTPUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
