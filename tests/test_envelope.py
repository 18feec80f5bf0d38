"""relay.envelope: the test vectors, the fail-closed properties, and streaming round trips.

The property tests run 1000 examples each on real 64 KiB chunks (plaintexts of 0..200 KiB,
so blobs of one to four chunks), with the chunk-boundary sizes drawn often.
"""

from __future__ import annotations

import contextlib
import copy
import enum
import importlib.util
import io
import json
import random
import tracemalloc
import unicodedata
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import nacl.bindings as nb
import nacl.pwhash.argon2id as argon2id
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from nacl.public import PublicKey, SealedBox
from nacl.signing import SigningKey

from relay import envelope as ev
from relay.envelope import CHUNK_SIZE, ENCRYPTED_CHUNK_SIZE, HEADER_SIZE, Domain, EnvelopeError

VECTORS_DIR = Path(__file__).parent / "vectors"
VECTORS: dict[str, Any] = json.loads((VECTORS_DIR / "envelope-v2.json").read_text(encoding="ascii"))

MANY = settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CHEAP = {"opslimit": argon2id.OPSLIMIT_MIN, "memlimit": argon2id.MEMLIMIT_MIN}
CHEAP_MIN = {"min_opslimit": argon2id.OPSLIMIT_MIN, "min_memlimit": argon2id.MEMLIMIT_MIN}

KEY = bytes(range(32))
PEOPLE = {
    name: ev.Identity.from_seeds(bytes.fromhex(v["sign_seed_hex"]), bytes.fromhex(v["box_secret_hex"]))
    for name, v in VECTORS["identities"].items()
}
SAMPLE_DOCUMENTS: dict[Domain, dict[str, Any]] = {
    Domain[s["domain"]]: s["document"] for s in VECTORS["signatures"]
}

# Plaintext sizes: anything up to 200 KiB, with the chunk edges drawn often.
EDGE_SIZES = [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 2 * CHUNK_SIZE, 3 * CHUNK_SIZE - 1]
sizes = st.one_of(st.sampled_from(EDGE_SIZES), st.integers(0, 200 * 1024))
multi_chunk_sizes = st.one_of(
    st.sampled_from([CHUNK_SIZE, CHUNK_SIZE + 1, 2 * CHUNK_SIZE, 3 * CHUNK_SIZE - 1]),
    st.integers(CHUNK_SIZE, 200 * 1024),
)
domains = st.sampled_from(list(Domain))


def random_bytes(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


def split_blob(blob: bytes) -> tuple[bytes, list[bytes]]:
    """(MAGIC + header, chunks): every chunk full-size except the last."""
    body = blob[HEADER_SIZE:]
    chunks = [body[i : i + ENCRYPTED_CHUNK_SIZE] for i in range(0, len(body), ENCRYPTED_CHUNK_SIZE)]
    return blob[:HEADER_SIZE], chunks


def open_fails(blob: bytes, key: bytes = KEY) -> bool:
    """True when both the in-memory and the streaming decryption refuse the blob."""
    results = []
    for attempt in (
        lambda: ev.decrypt_bytes(key, blob),
        lambda: ev.decrypt_stream(key, io.BytesIO(blob), io.BytesIO()),
    ):
        try:
            attempt()
        except EnvelopeError:
            results.append(True)
        else:
            results.append(False)
    return all(results)


# --------------------------------------------------------------------------------------------
# Test vectors
# --------------------------------------------------------------------------------------------


def vector_blobs() -> dict[str, bytes]:
    """Each secretstream case's blob, rebuilding the one stored as a shared prefix + tail."""
    blobs: dict[str, bytes] = {}
    for case in VECTORS["secretstream"]["cases"]:
        if "blob_hex" in case:
            blobs[case["name"]] = bytes.fromhex(case["blob_hex"])
        else:
            prefix = blobs[case["blob_shares_prefix_with"]][: case["shared_prefix_length"]]
            blobs[case["name"]] = prefix + bytes.fromhex(case["blob_tail_hex"])
    return blobs


def vector_plaintext(n: int) -> bytes:
    assert VECTORS["secretstream"]["cases"][0]["plaintext_rule"] == "bytes(i % 251 for i in range(n))"
    return bytes(i % 251 for i in range(n))


def test_vectors_file_is_exactly_what_the_generator_makes() -> None:
    """The committed vectors are reproducible from fixed seeds by the current code."""
    spec = importlib.util.spec_from_file_location("make_vectors", VECTORS_DIR / "make_vectors.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.render(module.build()) == (VECTORS_DIR / "envelope-v2.json").read_text(encoding="ascii")


def test_vector_constants_match_the_module() -> None:
    constants = VECTORS["constants"]
    assert bytes.fromhex(constants["magic_hex"]) == ev.MAGIC == b"RLY\x02"
    assert constants["version"] == ev.VERSION == 2
    assert (constants["chunk_size"], constants["header_size"]) == (CHUNK_SIZE, HEADER_SIZE)
    assert constants["encrypted_chunk_size"] == ENCRYPTED_CHUNK_SIZE
    assert {name: bytes.fromhex(h) for name, h in constants["domains"].items()} == {
        d.name: d.value for d in Domain
    }


def test_canonical_json_vectors() -> None:
    for vector in VECTORS["canonical_json"]["valid"]:
        assert ev.canonical_json(vector["input"]).hex() == vector["canonical_utf8_hex"], vector["name"]
        assert ev.digest(vector["input"]) == vector["blake3_256"], vector["name"]
    for vector in VECTORS["canonical_json"]["invalid"]:
        with pytest.raises(EnvelopeError):
            ev.canonical_json(vector["input"])


def test_blake3_vectors() -> None:
    for vector in VECTORS["blake3_256"]:
        data = bytes.fromhex(vector["input_hex"])
        assert ev.blob_hash(data) == vector["hash"]
        hasher = ev.new_hasher()
        for i in range(0, len(data), 7):  # incremental hashing gives the same answer
            hasher.update(data[i : i + 7])
        assert hasher.hexdigest() == vector["hash"]


def test_identity_vectors() -> None:
    for name, vector in VECTORS["identities"].items():
        public = PEOPLE[name].public
        assert public.sign_pk.hex() == vector["sign_pk_hex"]
        assert public.box_pk.hex() == vector["box_pk_hex"]
        assert public.fingerprint() == vector["fingerprint"]


def test_signature_vectors_are_reproduced_and_verify() -> None:
    builders: dict[Domain, Callable[..., dict[str, object]]] = {
        Domain.MANIFEST: ev.item_manifest,
        Domain.DECISION: ev.decision_manifest,
        Domain.RECEIPT: ev.receipt,
        Domain.LOGIN: ev.login_statement,
        Domain.ENROLLMENT: ev.enrollment,
    }
    for vector in VECTORS["signatures"]:
        domain = Domain[vector["domain"]]
        document = vector["document"]
        signer = PEOPLE[vector["signer"]]
        fields = {k: v for k, v in document.items() if k not in ("v", "type")}
        assert builders[domain](**fields) == document
        assert bytes.fromhex(vector["prefix_hex"]) == domain.value
        assert ev.canonical_json(document).hex() == vector["canonical_utf8_hex"]
        assert ev.digest(document) == vector["digest"]
        assert (
            ev.sign(domain, document, signer.signing_key) == vector["signature_b64"]
        )  # Ed25519 is deterministic
        ev.verify(domain, document, vector["signature_b64"], signer.public.sign_pk)


def test_signature_vectors_link_documents_by_digest() -> None:
    item, decision, receipt = (
        SAMPLE_DOCUMENTS[d] for d in (Domain.MANIFEST, Domain.DECISION, Domain.RECEIPT)
    )
    assert decision["manifest_hash"] == ev.digest(item)
    assert receipt["decision_hash"] == ev.digest(decision)
    exchange = VECTORS["exchange"]
    assert (item, decision, receipt) == (exchange["item"]["manifest"], exchange["release"]["decision"],
                                         exchange["receipt"]["document"])


def test_exchange_vector_checks_end_to_end_with_plain_libsodium() -> None:
    """The exchange is one consistent story a third party can check from the trust root down,
    with libsodium, BLAKE3 and an ordinary JSON encoder, without our envelope code: the
    enrollments, the sender's manifest and its blob, the mediator's release naming the sender
    and a delivery blob that the recipient's sealed key opens, and the receipt."""
    import blake3

    x, identities = VECTORS["exchange"], VECTORS["identities"]
    prefix = {d: bytes.fromhex(h) for d, h in VECTORS["constants"]["domains"].items()}

    def canonical(doc: dict[str, Any]) -> bytes:
        return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()

    def b3(data: bytes) -> str:
        return blake3.blake3(data).hexdigest()

    def check(domain: str, doc: dict[str, Any], sig: str, signer: str) -> None:
        sign_pk = bytes.fromhex(identities[signer]["sign_pk_hex"])
        nb.crypto_sign_open(ev.b64d(sig) + prefix[domain] + canonical(doc), sign_pk)

    def unseal(sealed_b64: str, person: str) -> bytes:
        box_sk = bytes.fromhex(identities[person]["box_secret_hex"])
        return nb.crypto_box_seal_open(ev.b64d(sealed_b64), nb.crypto_scalarmult_base(box_sk), box_sk)

    def decrypt(key: bytes, blob: bytes) -> bytes:
        assert blob[:4] == b"RLY\x02"
        state = nb.crypto_secretstream_xchacha20poly1305_state()
        nb.crypto_secretstream_xchacha20poly1305_init_pull(state, blob[4:28], key)
        out, tags, pos = b"", [], 28
        while pos < len(blob):
            piece, tag = nb.crypto_secretstream_xchacha20poly1305_pull(state, blob[pos:pos + ENCRYPTED_CHUNK_SIZE])
            out, pos = out + piece, pos + ENCRYPTED_CHUNK_SIZE
            tags.append(tag)
        assert tags[-1] == nb.crypto_secretstream_xchacha20poly1305_TAG_FINAL
        return out

    name_of = {pid: name for name, pid in x["person_ids"].items()}
    enrolled = {}
    for name, entry in x["enrollments"].items():
        check("ENROLLMENT", entry["document"], entry["signature_b64"], x["trust_root"])
        doc = entry["document"]
        enrolled[doc["person_id"]] = ev.b64d(doc["sign_pk"]) + ev.b64d(doc["box_pk"])
        assert enrolled[doc["person_id"]].hex() == identities[name]["sign_pk_hex"] + identities[name]["box_pk_hex"]

    item, manifest = x["item"], x["item"]["manifest"]
    check("MANIFEST", manifest, item["signature_b64"], name_of[manifest["sender"]])
    blob = bytes.fromhex(item["blob_hex"])
    assert (len(blob), b3(blob)) == (manifest["size"], manifest["hash"])
    for reader, sealed in manifest["keys"].items():  # every reader's key opens the blob it names
        assert decrypt(unseal(sealed, name_of[reader]), blob).decode() == item["plaintext_utf8"]
    assert x["person_ids"]["recipient"] not in manifest["keys"]  # only the release gives the recipient a key

    release, decision = x["release"], x["release"]["decision"]
    check("DECISION", decision, release["signature_b64"], name_of[decision["mediator"]])
    assert decision["manifest_hash"] == b3(canonical(manifest)) == item["manifest_digest"]
    assert decision["sender"] == {"id": manifest["sender"], "fingerprint": b3(enrolled[manifest["sender"]])}
    delivery, delivered = decision["delivery"], bytes.fromhex(release["blob_hex"])
    assert (len(delivered), b3(delivered)) == (delivery["size"], delivery["hash"])
    assert decision["recipient"] in delivery["keys"]
    for reader, sealed in delivery["keys"].items():  # item 26: the sealed keys open the delivery blob named
        assert decrypt(unseal(sealed, name_of[reader]), delivered).decode() == release["plaintext_utf8"]

    receipt = x["receipt"]["document"]
    check("RECEIPT", receipt, x["receipt"]["signature_b64"], name_of[receipt["recipient"]])
    assert receipt["decision_hash"] == b3(canonical(decision)) == release["decision_digest"]
    assert receipt["recipient"] == decision["recipient"]


def test_secretstream_vectors_decrypt_and_are_reproduced() -> None:
    stream = VECTORS["secretstream"]
    key, header = bytes.fromhex(stream["key_hex"]), bytes.fromhex(stream["header_hex"])
    blobs = vector_blobs()
    for case in stream["cases"]:
        blob, expected = blobs[case["name"]], vector_plaintext(case["plaintext_size"])
        assert len(blob) == case["blob_size"] == ev.ciphertext_size(case["plaintext_size"])
        assert ev.blob_hash(blob) == case["blob_blake3_256"]
        assert ev.decrypt_bytes(key, blob) == expected
        out = io.BytesIO()
        assert ev.decrypt_stream(key, io.BytesIO(blob), out) == len(expected)
        assert out.getvalue() == expected
        assert b"".join(ev._encrypt_stream_with_header(key, header, io.BytesIO(expected))) == blob
        assert [len(c) for c in split_blob(blob)[1]] == [c["length"] for c in case["chunks"]]


def test_secretstream_invalid_vectors_are_refused() -> None:
    stream = VECTORS["secretstream"]
    by_size = {
        case["plaintext_size"]: blob
        for case, blob in zip(stream["cases"], vector_blobs().values(), strict=True)
    }
    for vector in stream["invalid"]:
        key = bytes.fromhex(stream["key_hex"])
        if "blob_hex" in vector:
            blob = bytes.fromhex(vector["blob_hex"])
        else:
            blob = by_size[vector["base"]]
            if vector["op"] == "truncate":
                blob = blob[: vector["length"]]
            elif vector["op"] == "flip_bit":
                blob = flip_bit(blob, vector["bit"])
            elif vector["op"] == "append_hex":
                blob += bytes.fromhex(vector["hex"])
            else:
                assert vector["op"] == "use_key"
                key = bytes.fromhex(vector["key_hex"])
        assert open_fails(blob, key), vector["name"]


def test_sealed_key_vector_opens() -> None:
    vector = VECTORS["sealed_key"]
    assert ev.open_key(vector["sealed_b64"], PEOPLE[vector["recipient"]]) == bytes.fromhex(
        vector["content_key_hex"]
    )
    with pytest.raises(EnvelopeError):
        ev.open_key(vector["sealed_b64"], PEOPLE["sender"])


def test_key_bundle_vector_opens_with_either_normalization() -> None:
    vector = VECTORS["key_bundle"]
    bundle = bytes.fromhex(vector["bundle_hex"])
    assert vector["passphrase"] != vector["passphrase_nfd"]  # different code points, same text
    for passphrase in (vector["passphrase"], vector["passphrase_nfd"]):
        identity = ev.open_identity(bundle, passphrase, **CHEAP_MIN)
        assert identity.public == PEOPLE[vector["identity"]].public
    derived = argon2id.kdf(
        32,
        vector["passphrase"].encode(),
        bytes.fromhex(vector["salt_hex"]),
        opslimit=vector["opslimit"],
        memlimit=vector["memlimit"],
    )
    assert derived.hex() == vector["derived_key_hex"]


def test_key_bundle_vector_is_refused_at_production_minimums() -> None:
    """A bundle recorded with cheap limits (as a substituted weak bundle would be) is refused."""
    with pytest.raises(EnvelopeError):
        ev.open_identity(
            bytes.fromhex(VECTORS["key_bundle"]["bundle_hex"]), VECTORS["key_bundle"]["passphrase"]
        )


# --------------------------------------------------------------------------------------------
# Content encryption: properties
# --------------------------------------------------------------------------------------------


def flip_bit(data: bytes, bit: int) -> bytes:
    changed = bytearray(data)
    changed[bit // 8] ^= 1 << (bit % 8)
    return bytes(changed)


@MANY
@given(size=sizes, seed=st.integers(), slices=st.lists(st.integers(1, 3 * ENCRYPTED_CHUNK_SIZE), max_size=8))
def test_round_trip_fed_in_arbitrary_slices(size: int, seed: int, slices: list[int]) -> None:
    """Any slicing of the blob gives back the plaintext; the blob has the predicted size."""
    plaintext = random_bytes(size, seed)
    blob = ev.encrypt_bytes(KEY, plaintext)
    assert len(blob) == ev.ciphertext_size(size)
    decryptor = ev.StreamDecryptor(KEY)
    out, pos = [], 0
    for length in [*slices, len(blob)]:  # the last slice takes whatever is left
        out.append(decryptor.feed(blob[pos : pos + length]))
        pos += length
    decryptor.finish()
    assert b"".join(out) == plaintext


@MANY
@given(size=sizes, seed=st.integers(), data=st.data())
def test_any_bit_flip_is_rejected(size: int, seed: int, data: st.DataObject) -> None:
    blob = ev.encrypt_bytes(KEY, random_bytes(size, seed))
    bit = data.draw(st.integers(0, len(blob) * 8 - 1), label="bit")
    assert open_fails(flip_bit(blob, bit))


@MANY
@given(size=sizes, seed=st.integers(), data=st.data())
def test_any_truncation_is_rejected(size: int, seed: int, data: st.DataObject) -> None:
    blob = ev.encrypt_bytes(KEY, random_bytes(size, seed))
    _, chunks = split_blob(blob)
    boundaries = [HEADER_SIZE + i * ENCRYPTED_CHUNK_SIZE for i in range(len(chunks))]
    length = data.draw(st.one_of(st.integers(0, len(blob) - 1), st.sampled_from(boundaries)), label="length")
    assert open_fails(blob[:length])


@MANY
@given(size=multi_chunk_sizes, seed=st.integers(), data=st.data())
def test_reordered_chunks_are_rejected(size: int, seed: int, data: st.DataObject) -> None:
    prefix, chunks = split_blob(ev.encrypt_bytes(KEY, random_bytes(size, seed)))
    i, j = data.draw(
        st.lists(st.integers(0, len(chunks) - 1), min_size=2, max_size=2, unique=True), label="swap"
    )
    chunks[i], chunks[j] = chunks[j], chunks[i]
    assert open_fails(prefix + b"".join(chunks))


@MANY
@given(size=sizes, seed=st.integers(), data=st.data())
def test_duplicated_chunk_is_rejected(size: int, seed: int, data: st.DataObject) -> None:
    prefix, chunks = split_blob(ev.encrypt_bytes(KEY, random_bytes(size, seed)))
    copied = data.draw(st.integers(0, len(chunks) - 1), label="copied")
    where = data.draw(st.integers(0, len(chunks)), label="inserted at")
    chunks.insert(where, chunks[copied])
    assert open_fails(prefix + b"".join(chunks))


def encrypt_keeping_state(
    key: bytes, plaintext: bytes
) -> tuple[bytes, nb.crypto_secretstream_xchacha20poly1305_state]:
    """Encrypt as envelope does, but keep the push state so a test can continue the stream."""
    state = nb.crypto_secretstream_xchacha20poly1305_state()
    header = nb.crypto_secretstream_xchacha20poly1305_init_push(state, key)
    parts = [ev.MAGIC, header]
    full = len(plaintext) // CHUNK_SIZE
    for i in range(full):
        parts.append(
            nb.crypto_secretstream_xchacha20poly1305_push(
                state, plaintext[i * CHUNK_SIZE : (i + 1) * CHUNK_SIZE]
            )
        )
    parts.append(
        nb.crypto_secretstream_xchacha20poly1305_push(
            state, plaintext[full * CHUNK_SIZE :], tag=nb.crypto_secretstream_xchacha20poly1305_TAG_FINAL
        )
    )
    assert sum(map(len, parts)) == ev.ciphertext_size(len(plaintext))
    return b"".join(parts), state


@MANY
@given(
    size=sizes,
    seed=st.integers(),
    extra_size=st.sampled_from([0, 1, CHUNK_SIZE - 1, CHUNK_SIZE]) | st.integers(0, CHUNK_SIZE),
    tag=st.sampled_from(
        [
            nb.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE,
            nb.crypto_secretstream_xchacha20poly1305_TAG_FINAL,
        ]
    ),
    junk=st.binary(min_size=1, max_size=64),
    authentic=st.booleans(),
)
def test_appended_data_is_rejected(
    size: int, seed: int, extra_size: int, tag: int, junk: bytes, authentic: bool
) -> None:
    """Bytes after the FINAL chunk are refused, even a chunk that authenticates under the key."""
    blob, state = encrypt_keeping_state(KEY, random_bytes(size, seed))
    assert ev.decrypt_bytes(KEY, blob) == random_bytes(size, seed)
    if authentic:
        extra = nb.crypto_secretstream_xchacha20poly1305_push(
            state, random_bytes(extra_size, seed + 1), tag=tag
        )
    else:
        extra = junk
    assert open_fails(blob + extra)


@MANY
@given(size=sizes, seed=st.integers(), other_key=st.binary(min_size=32, max_size=32))
def test_wrong_content_key_is_rejected(size: int, seed: int, other_key: bytes) -> None:
    assume(other_key != KEY)
    assert open_fails(ev.encrypt_bytes(KEY, random_bytes(size, seed)), key=other_key)


def test_full_size_final_chunk_is_rejected() -> None:
    """A FINAL chunk is always short; 64 KiB of plaintext must end with an empty FINAL chunk."""
    state = nb.crypto_secretstream_xchacha20poly1305_state()
    header = nb.crypto_secretstream_xchacha20poly1305_init_push(state, KEY)
    chunk = nb.crypto_secretstream_xchacha20poly1305_push(
        state, bytes(CHUNK_SIZE), tag=nb.crypto_secretstream_xchacha20poly1305_TAG_FINAL
    )
    assert open_fails(ev.MAGIC + header + chunk)


@pytest.mark.parametrize(
    "tag",
    [nb.crypto_secretstream_xchacha20poly1305_TAG_PUSH, nb.crypto_secretstream_xchacha20poly1305_TAG_REKEY],
)
def test_other_secretstream_tags_are_rejected(tag: int) -> None:
    state = nb.crypto_secretstream_xchacha20poly1305_state()
    header = nb.crypto_secretstream_xchacha20poly1305_init_push(state, KEY)
    first = nb.crypto_secretstream_xchacha20poly1305_push(state, bytes(CHUNK_SIZE), tag=tag)
    last = nb.crypto_secretstream_xchacha20poly1305_push(
        state, b"", tag=nb.crypto_secretstream_xchacha20poly1305_TAG_FINAL
    )
    assert open_fails(ev.MAGIC + header + first + last)


# --------------------------------------------------------------------------------------------
# Content encryption: the streaming API
# --------------------------------------------------------------------------------------------


class ShortReader(io.RawIOBase):
    """A file that returns at most a few random bytes per read, like a pipe or socket."""

    def __init__(self, data: bytes, seed: int) -> None:
        self._data, self._pos, self._random = data, 0, random.Random(seed)
        self.reads: list[int] = []

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        self.reads.append(size)
        take = min(size, self._random.randint(1, 40_000))
        piece = self._data[self._pos : self._pos + take]
        self._pos += len(piece)
        return piece


@settings(max_examples=100, deadline=None)
@given(size=sizes, seed=st.integers())
def test_short_reads_do_not_change_the_chunking(size: int, seed: int) -> None:
    plaintext = random_bytes(size, seed)
    header = bytes(24)
    reader = ShortReader(plaintext, seed)
    via_short_reads = b"".join(ev._encrypt_stream_with_header(KEY, header, reader))  # type: ignore[arg-type]
    assert via_short_reads == b"".join(ev._encrypt_stream_with_header(KEY, header, io.BytesIO(plaintext)))
    assert max(reader.reads) <= CHUNK_SIZE


def test_encrypt_stream_reads_lazily_one_chunk_at_a_time() -> None:
    reader = ShortReader(bytes(3 * CHUNK_SIZE + 5), seed=1)
    chunks = ev.encrypt_stream(KEY, reader)  # type: ignore[arg-type]
    assert next(chunks)[:4] == ev.MAGIC and reader.reads == []  # the prefix needs no input
    assert len(next(chunks)) == ENCRYPTED_CHUNK_SIZE
    consumed = reader._pos
    assert consumed == CHUNK_SIZE  # nothing read ahead
    assert [len(c) for c in chunks] == [ENCRYPTED_CHUNK_SIZE, ENCRYPTED_CHUNK_SIZE, 5 + 17]


def test_file_round_trip_streams_in_constant_memory(tmp_path: Path) -> None:
    """Encrypt a 6 MiB file to a file and back, keeping peak Python allocations near one chunk."""
    size = 6 * 1024 * 1024 + 12345
    plain, blob, back = tmp_path / "plain", tmp_path / "blob", tmp_path / "back"
    plain.write_bytes(random_bytes(size, 7))

    tracemalloc.start()
    try:
        with plain.open("rb") as src, blob.open("wb") as dst:
            for piece in ev.encrypt_stream(KEY, src):
                dst.write(piece)
        _, encrypt_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        with blob.open("rb") as src, back.open("wb") as dst:
            written = ev.decrypt_stream(KEY, src, dst)
        _, decrypt_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert blob.stat().st_size == ev.ciphertext_size(size)
    assert written == size and back.read_bytes() == plain.read_bytes()
    assert encrypt_peak < 6 * CHUNK_SIZE and decrypt_peak < 6 * CHUNK_SIZE  # not proportional to 6 MiB


def test_decryptor_refuses_further_use_after_a_failure() -> None:
    blob = ev.encrypt_bytes(KEY, b"hello")
    decryptor = ev.StreamDecryptor(KEY)
    with pytest.raises(EnvelopeError):
        decryptor.feed(b"XXXX")  # wrong magic is refused at once
    for attempt in (lambda: decryptor.feed(blob), lambda: decryptor.feed(b""), decryptor.finish):
        with pytest.raises(EnvelopeError):
            attempt()


def test_decryptor_after_final_chunk() -> None:
    blob = ev.encrypt_bytes(KEY, b"hello")
    decryptor = ev.StreamDecryptor(KEY)
    assert decryptor.feed(blob) == b"hello"
    assert decryptor.feed(b"") == b""  # nothing is not "data after FINAL"
    decryptor.finish()
    decryptor.finish()  # idempotent once successful
    with pytest.raises(EnvelopeError):
        decryptor.feed(b"\x00")
    with pytest.raises(EnvelopeError):
        decryptor.finish()  # and the failure sticks


def test_decryptor_fed_one_byte_at_a_time() -> None:
    """Every feed tries the buffered tail as the final chunk; failed tries must not disturb the state."""
    plaintext = b"one byte at a time"
    blob = ev.encrypt_bytes(KEY, plaintext)
    decryptor = ev.StreamDecryptor(KEY)
    out = b"".join(decryptor.feed(blob[i : i + 1]) for i in range(len(blob)))
    decryptor.finish()
    assert out == plaintext


def test_finish_before_the_end_is_refused() -> None:
    decryptor = ev.StreamDecryptor(KEY)
    decryptor.feed(ev.encrypt_bytes(KEY, bytes(CHUNK_SIZE + 10))[: HEADER_SIZE + ENCRYPTED_CHUNK_SIZE])
    with pytest.raises(EnvelopeError):
        decryptor.finish()


def test_key_size_mistakes() -> None:
    with pytest.raises(ValueError):
        ev.encrypt_bytes(KEY[:31], b"x")
    with pytest.raises(ValueError):
        ev.encrypt_stream(KEY + b"\x00", io.BytesIO(b"x"))  # refused at call time, not first next()
    with pytest.raises(EnvelopeError):
        ev.decrypt_bytes(KEY[:31], ev.encrypt_bytes(KEY, b"x"))
    with pytest.raises(ValueError):
        ev.ciphertext_size(-1)
    assert len(ev.new_content_key()) == ev.KEY_SIZE and ev.new_content_key() != ev.new_content_key()


def test_ciphertext_size_at_the_edges() -> None:
    assert ev.ciphertext_size(0) == 28 + 17
    assert ev.ciphertext_size(CHUNK_SIZE - 1) == 28 + CHUNK_SIZE - 1 + 17
    assert ev.ciphertext_size(CHUNK_SIZE) == 28 + ENCRYPTED_CHUNK_SIZE + 17  # plus an empty FINAL chunk
    assert ev.ciphertext_size(2 * CHUNK_SIZE + 3) == 28 + 2 * ENCRYPTED_CHUNK_SIZE + 3 + 17


# --------------------------------------------------------------------------------------------
# Key wrapping and identities
# --------------------------------------------------------------------------------------------


def test_seal_and_open_key() -> None:
    content_key = ev.new_content_key()
    sealed = ev.seal_key(content_key, PEOPLE["mediator"].public.box_pk)
    assert ev.open_key(sealed, PEOPLE["mediator"]) == content_key
    assert ev.seal_key(content_key, PEOPLE["mediator"].public.box_pk) != sealed  # fresh ephemeral key
    for bad in (sealed[:-4], sealed + "AAAA", "not base64!", ""):
        with pytest.raises(EnvelopeError):
            ev.open_key(bad, PEOPLE["mediator"])
    with pytest.raises(EnvelopeError):
        ev.open_key(sealed, PEOPLE["recipient"])
    with pytest.raises(ValueError):
        ev.seal_key(content_key[:16], PEOPLE["mediator"].public.box_pk)


def test_open_key_refuses_a_sealed_payload_of_the_wrong_length() -> None:
    sealed = SealedBox(PublicKey(PEOPLE["mediator"].public.box_pk)).encrypt(bytes(33))
    with pytest.raises(EnvelopeError):
        ev.open_key(ev.b64e(sealed), PEOPLE["mediator"])


def test_wiped_identity_fails_closed_and_repr_hides_keys() -> None:
    identity = ev.Identity.generate()
    seed = bytes(identity.signing_key).hex()
    sealed = ev.seal_key(KEY, identity.public.box_pk)
    assert seed not in repr(identity) and bytes(identity.box_key).hex() not in repr(identity)
    public = identity.public
    identity.wipe()
    assert identity.public == public and "wiped" in repr(identity)
    with pytest.raises(EnvelopeError):
        identity.signing_key  # noqa: B018
    with pytest.raises(EnvelopeError):
        ev.open_key(sealed, identity)


def test_public_identity_checks_key_lengths() -> None:
    with pytest.raises(EnvelopeError):
        ev.PublicIdentity(sign_pk=bytes(31), box_pk=bytes(32))
    with pytest.raises(EnvelopeError):
        ev.PublicIdentity(sign_pk=bytes(32), box_pk="x" * 32)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        ev.Identity.from_seeds(bytes(32), bytes(16))


def test_passphrase_bundle_round_trip_and_limits() -> None:
    identity = ev.Identity.generate()
    bundle = ev.seal_identity(identity, "a strong word passphrase", **CHEAP)
    assert len(bundle) == 141 and bundle[:5] == b"RLYK\x01"
    assert ev.open_identity(bundle, "a strong word passphrase", **CHEAP_MIN).public == identity.public
    with pytest.raises(EnvelopeError):  # recorded limits below the caller's minimums
        ev.open_identity(bundle, "a strong word passphrase")
    with pytest.raises(ValueError):
        ev.seal_identity(identity, "", **CHEAP)
    with pytest.raises(ValueError):  # libsodium would silently ignore the last 100 bytes
        ev.seal_identity(identity, "pw", opslimit=argon2id.OPSLIMIT_MIN, memlimit=argon2id.MEMLIMIT_MIN + 100)
    with pytest.raises(ValueError):  # could never be opened: above the SENSITIVE cap
        ev.seal_identity(
            identity, "pw", opslimit=argon2id.OPSLIMIT_SENSITIVE + 1, memlimit=argon2id.MEMLIMIT_MIN
        )


def test_bundle_with_limits_above_the_cap_is_refused_before_any_work() -> None:
    """A hostile server must not be able to make a terminal allocate huge Argon2 memory."""
    bundle = bytearray(bytes.fromhex(VECTORS["key_bundle"]["bundle_hex"]))
    bundle[13:21] = (argon2id.MEMLIMIT_SENSITIVE * 2).to_bytes(8, "big")
    with pytest.raises(EnvelopeError):
        ev.open_identity(bytes(bundle), VECTORS["key_bundle"]["passphrase"], **CHEAP_MIN)


def test_bundle_framing_is_checked() -> None:
    bundle = bytes.fromhex(VECTORS["key_bundle"]["bundle_hex"])
    passphrase = VECTORS["key_bundle"]["passphrase"]
    for bad in (bundle[:-1], bundle + b"\x00", b"RLYX" + bundle[4:], bundle[:4] + b"\x02" + bundle[5:], b""):
        with pytest.raises(EnvelopeError):
            ev.open_identity(bad, passphrase, **CHEAP_MIN)


BUNDLE = bytes.fromhex(VECTORS["key_bundle"]["bundle_hex"])
PASSPHRASE: str = VECTORS["key_bundle"]["passphrase"]


@MANY
@given(
    guess=st.one_of(
        st.text(max_size=40),
        st.text(min_size=1, max_size=3).map(lambda s: PASSPHRASE + s),
        st.integers(0, len(PASSPHRASE) - 1).map(lambda i: PASSPHRASE[:i] + PASSPHRASE[i + 1 :]),
        st.just(PASSPHRASE.upper()),
    )
)
def test_wrong_passphrase_is_rejected(guess: str) -> None:
    assume(unicodedata.normalize("NFC", guess) != unicodedata.normalize("NFC", PASSPHRASE))
    with pytest.raises(EnvelopeError):
        ev.open_identity(BUNDLE, guess, **CHEAP_MIN)


@MANY
@given(bit=st.integers(0, len(BUNDLE) * 8 - 1))
def test_any_bit_flip_in_a_bundle_is_rejected(bit: int) -> None:
    with pytest.raises(EnvelopeError):
        ev.open_identity(flip_bit(BUNDLE, bit), PASSPHRASE, **CHEAP_MIN)


# --------------------------------------------------------------------------------------------
# Base64, canonical JSON, documents and signatures
# --------------------------------------------------------------------------------------------


def test_b64d_is_strict() -> None:
    assert ev.b64d("") == b"" and ev.b64d("QQ==") == b"A" and ev.b64d(ev.b64e(b"\xfb\xff")) == b"\xfb\xff"
    for bad in ("QQ", "QR==", "QQ==\n", " QQ==", "Q===", "QQ=", "-_-_", "+/+/=", "é", "QQ==QQ=="):
        with pytest.raises(EnvelopeError):
            ev.b64d(bad)
    with pytest.raises(EnvelopeError):
        ev.b64d(b"QQ==")  # type: ignore[arg-type]


class Kind(str, enum.Enum):  # noqa: UP042 - deliberately not StrEnum: its str() is "Kind.LETTER"
    LETTER = "letter"


@pytest.mark.parametrize(
    "bad",
    [
        {1: "int key"},
        {"t": (1, 2)},
        {"b": b"bytes"},
        {"s": {1, 2}},
        {"f": float("nan")},
        {"f": float("inf")},
        {"f": -0.0},
    ],
)
def test_canonical_json_refuses_what_it_cannot_pin_down(bad: dict[Any, Any]) -> None:
    with pytest.raises(EnvelopeError):
        ev.canonical_json(bad)


def test_canonical_json_limits_depth_and_cycles() -> None:
    deep: dict[str, Any] = {}
    node = deep
    for _ in range(100):
        node["k"] = {}
        node = node["k"]
    cyclic: dict[str, Any] = {}
    cyclic["self"] = cyclic
    for bad in (deep, cyclic, [1]):
        with pytest.raises(EnvelopeError):
            ev.canonical_json(bad)  # type: ignore[arg-type]


def test_canonical_json_reduces_enums_to_their_values() -> None:
    assert ev.canonical_json({"kind": Kind.LETTER}) == b'{"kind":"letter"}'


def test_each_document_passes_only_for_its_own_domain() -> None:
    for domain, document in SAMPLE_DOCUMENTS.items():
        ev.check_document(domain, document)
        for other in Domain:
            if other is not domain:
                with pytest.raises(EnvelopeError):
                    ev.check_document(other, document)


@pytest.mark.parametrize(
    "change",
    [
        {"v": True},
        {"v": 1},
        {"v": 3},
        {"v": "2"},
        {"poster": None},
        {"v": "1"},
        {"type": "Item"},
        {"extra": "field"},
        {"size": -1},
        {"size": True},
        {"hash": "AB" * 32},
        {"created_at": "2026-13-01T00:00:00Z"},
        {"created_at": "2026-11-21T19:27:28+00:00"},
        {"kind": "audio"},
        {"keys": {}},
        {"keys": {"p": "AAAA"}},
        {"sender": ""},
    ],
)
def test_malformed_manifests_are_refused(change: dict[str, Any]) -> None:
    document = {**SAMPLE_DOCUMENTS[Domain.MANIFEST], **change}
    with pytest.raises(EnvelopeError):
        ev.check_document(Domain.MANIFEST, document)
    missing = dict(SAMPLE_DOCUMENTS[Domain.MANIFEST])
    del missing["created_at"]
    with pytest.raises(EnvelopeError):
        ev.check_document(Domain.MANIFEST, missing)


def test_decision_delivery_rules() -> None:
    release = SAMPLE_DOCUMENTS[Domain.DECISION]
    fields = {k: v for k, v in release.items() if k not in ("v", "type")}
    with pytest.raises(ValueError, match="release needs a delivery"):
        ev.decision_manifest(**{**fields, "delivery": None})
    with pytest.raises(ValueError, match="withheld item has no delivery"):
        ev.decision_manifest(**{**fields, "decision": "withhold"})
    withheld = ev.decision_manifest(
        **{**fields, "decision": "withhold", "delivery": None, "reason": "safety"}
    )
    returned = ev.decision_manifest(**{**fields, "decision": "return", "delivery": None, "reason": None})
    for document in (withheld, returned):
        ev.check_document(Domain.DECISION, document)


def test_builders_say_what_is_wrong() -> None:
    fields = {k: v for k, v in SAMPLE_DOCUMENTS[Domain.MANIFEST].items() if k not in ("v", "type")}
    with pytest.raises(ValueError, match="kind: Input should be 'letter' or 'video'"):
        ev.item_manifest(**{**fields, "kind": "audio"})
    enrolled = ev.enrollment(
        person_id="p",
        role="mediator",
        side=None,
        sign_pk=bytes(32),
        box_pk=ev.b64e(bytes(32)),
        enrolled_by="c",
        enrolled_at="2026-01-01T00:00:00.5Z",
    )
    assert enrolled["sign_pk"] == enrolled["box_pk"] == ev.b64e(bytes(32))
    enrollment_fields: dict[str, Any] = {k: v for k, v in enrolled.items() if k not in ("v", "type")}
    with pytest.raises(ValueError, match="box_pk: Value error, base64 of 32 bytes expected"):
        ev.enrollment(**{**enrollment_fields, "box_pk": bytes(31)})


def test_domain_prefixes_cannot_be_confused() -> None:
    prefixes = [d.value for d in Domain]
    assert len(set(prefixes)) == len(prefixes)
    assert all(p.endswith(b"\x00") and p.count(b"\x00") == 1 for p in prefixes)  # none is a prefix of another


def test_verify_refuses_malformed_signatures_and_keys() -> None:
    document, signer = SAMPLE_DOCUMENTS[Domain.LOGIN], PEOPLE["recipient"]
    signature = ev.sign(Domain.LOGIN, document, signer.signing_key)
    pk = signer.public.sign_pk
    for bad_signature, bad_pk in [
        (signature[:-4], pk),
        ("!" + signature[1:], pk),
        (ev.b64e(bytes(64)), pk),
        (signature, pk[:31]),
        (signature, bytes(32)),  # a small-order point: a weak key libsodium refuses
    ]:
        with pytest.raises(EnvelopeError):
            ev.verify(Domain.LOGIN, document, bad_signature, bad_pk)
    with pytest.raises(EnvelopeError):
        ev.verify("LOGIN", document, signature, pk)  # type: ignore[arg-type]
    with pytest.raises(EnvelopeError):  # sign refuses what verify would refuse
        ev.sign(Domain.RECEIPT, document, signer.signing_key)


signing_seeds = st.binary(min_size=32, max_size=32)


@MANY
@given(domain=domains, seed=signing_seeds, other=signing_seeds)
def test_wrong_signer_is_rejected(domain: Domain, seed: bytes, other: bytes) -> None:
    assume(seed != other)
    document = SAMPLE_DOCUMENTS[domain]
    signature = ev.sign(domain, document, SigningKey(seed))
    ev.verify(domain, document, signature, bytes(SigningKey(seed).verify_key))
    with pytest.raises(EnvelopeError):
        ev.verify(domain, document, signature, bytes(SigningKey(other).verify_key))


@MANY
@given(signed_as=domains, presented_as=domains, seed=signing_seeds)
def test_signature_of_one_domain_is_rejected_as_another(
    signed_as: Domain, presented_as: Domain, seed: bytes
) -> None:
    assume(signed_as is not presented_as)
    key = SigningKey(seed)
    pk = bytes(key.verify_key)
    # The same document signed under another domain's prefix (type check passes, prefix differs).
    document = SAMPLE_DOCUMENTS[presented_as]
    foreign = ev.b64e(key.sign(signed_as.value + ev.canonical_json(document)).signature)
    with pytest.raises(EnvelopeError):
        ev.verify(presented_as, document, foreign, pk)
    # A genuine document of one kind presented as another (prefix and type both differ).
    genuine = ev.sign(signed_as, SAMPLE_DOCUMENTS[signed_as], key)
    with pytest.raises(EnvelopeError):
        ev.verify(presented_as, SAMPLE_DOCUMENTS[signed_as], genuine, pk)


def leaf_paths(value: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every place in a document whose value can be replaced: each field, at every depth."""
    if path:
        yield path
    if isinstance(value, dict):
        for key, child in value.items():
            yield from leaf_paths(child, (*path, key))


def same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=5,
)


@MANY
@given(domain=st.sampled_from([Domain.MANIFEST, Domain.DECISION]), data=st.data())
def test_manifest_field_tampering_is_rejected(domain: Domain, data: st.DataObject) -> None:
    """Changing, adding or removing any field at any depth breaks the signature."""
    signer = PEOPLE["sender"] if domain is Domain.MANIFEST else PEOPLE["mediator"]
    document = SAMPLE_DOCUMENTS[domain]
    signature = ev.sign(domain, document, signer.signing_key)
    tampered = copy.deepcopy(document)
    path = data.draw(st.sampled_from(list(leaf_paths(document))), label="path")
    parent = tampered
    for key in path[:-1]:
        parent = parent[key]
    old = parent[path[-1]]
    action = data.draw(st.sampled_from(["replace", "remove", "add"]), label="action")
    if action == "remove":
        del parent[path[-1]]
    elif action == "add":
        name = data.draw(st.text(max_size=8).filter(lambda n: n not in parent), label="new field")
        parent[name] = data.draw(json_values, label="new value")
    else:
        nearby = [old + "x", old[:-1], old.upper()] if isinstance(old, str) and old else []
        candidates = st.sampled_from(nearby) | json_values if nearby else json_values
        parent[path[-1]] = data.draw(candidates.filter(lambda v: not same(v, old)), label="new value")
    with pytest.raises(EnvelopeError):
        ev.verify(domain, tampered, signature, signer.public.sign_pk)


@MANY
@given(domain=domains, bit=st.integers(0, 64 * 8 - 1))
def test_any_bit_flip_in_a_signature_is_rejected(domain: Domain, bit: int) -> None:
    signer = PEOPLE["coordinator"]
    signature = ev.b64d(ev.sign(domain, SAMPLE_DOCUMENTS[domain], signer.signing_key))
    with pytest.raises(EnvelopeError):
        ev.verify(domain, SAMPLE_DOCUMENTS[domain], ev.b64e(flip_bit(signature, bit)), signer.public.sign_pk)


@MANY
@given(
    domain=domains,
    document=st.one_of(
        st.dictionaries(st.text(max_size=12), json_values, max_size=12),
        st.builds(
            lambda base, extra: {**base, **extra},
            st.sampled_from(list(SAMPLE_DOCUMENTS.values())),
            st.dictionaries(
                st.sampled_from(["v", "type", "size", "keys", "delivery", "kind", "decision"]), json_values
            ),
        ),
    ),
    signature=st.text(max_size=100) | st.binary(max_size=70).map(ev.b64e),
    sign_pk=st.binary(max_size=40),
    junk=st.binary(max_size=300),
    key_text=st.text(max_size=120),
)
def test_hostile_input_only_ever_raises_envelope_error(
    domain: Domain, document: dict[str, Any], signature: str, sign_pk: bytes, junk: bytes, key_text: str
) -> None:
    """Whatever arrives from outside, the façade fails closed with its one exception."""
    for attempt in (
        lambda: ev.verify(domain, document, signature, sign_pk),
        lambda: ev.check_document(domain, document),
        lambda: ev.decrypt_bytes(KEY, ev.MAGIC + junk),
        lambda: ev.decrypt_bytes(KEY, junk),
        lambda: ev.open_key(key_text, PEOPLE["recipient"]),
        lambda: ev.open_identity(junk, key_text, **CHEAP_MIN),
        lambda: ev.b64d(key_text),
    ):
        with contextlib.suppress(EnvelopeError):
            attempt()


def test_version_1_blobs_and_documents_are_refused() -> None:
    """Version 1 is retired: a blob with its magic, and a document with its "v" signed under
    its domain prefixes, never open or verify, even with the right key."""
    blob = ev.encrypt_bytes(KEY, b"a letter")
    assert blob[:4] == b"RLY\x02"
    assert ev.decrypt_bytes(KEY, blob) == b"a letter"
    assert open_fails(b"RLY\x01" + blob[4:])
    sender = PEOPLE["sender"]
    v1 = {**SAMPLE_DOCUMENTS[Domain.MANIFEST], "v": 1}
    message = b"mediation-relay/v1/manifest\x00" + ev.canonical_json(v1)
    signature = ev.b64e(sender.signing_key.sign(message).signature)
    with pytest.raises(EnvelopeError):
        ev.verify(Domain.MANIFEST, v1, signature, sender.public.sign_pk)
    with pytest.raises(EnvelopeError):
        ev.sign(Domain.MANIFEST, v1, sender.signing_key)


def test_a_decision_names_the_sender_by_id_and_fingerprint() -> None:
    decision = SAMPLE_DOCUMENTS[Domain.DECISION]
    assert decision["sender"] == {"id": "p-sender", "fingerprint": PEOPLE["sender"].public.fingerprint()}
    for bad in ({}, {"id": "p-sender"}, {"id": "p-sender", "fingerprint": "AB" * 32},
                {"id": "", "fingerprint": "ab" * 32}, {"id": "p", "fingerprint": "ab" * 32, "name": "x"}, None):
        with pytest.raises(EnvelopeError):
            ev.check_document(Domain.DECISION, {**decision, "sender": bad})
    without = {k: v for k, v in decision.items() if k != "sender"}
    with pytest.raises(EnvelopeError):
        ev.check_document(Domain.DECISION, without)


@pytest.mark.parametrize("text", ['{"a":1,"a":2}', '{"d":{"recipient":"x","recipient":"y"}}', '[{"k":1,"k":1}]',
                                  "{not json", '{"a":"\\ud800"}'.encode("utf-8")[:-3] + b"\xff"])
def test_parse_json_refuses_duplicate_names_and_non_json(text: str | bytes) -> None:
    with pytest.raises(EnvelopeError):
        ev.parse_json(text)


def test_parse_json_leaves_the_rest_to_canonical_json() -> None:
    assert ev.parse_json('{"b":[1,{"c":null}],"a":"\\u00e9"}') == {"a": "é", "b": [1, {"c": None}]}
    for refused_later in ('{"x":1.0}', '{"x":9007199254740992}', '{"x":"\\ud800"}'):
        with pytest.raises(EnvelopeError):
            ev.canonical_json(ev.parse_json(refused_later))
