"""The trust boundary is visible in the layout, and the import directions hold.

``relay/server`` runs on the host that stores ciphertext: it must never import the code that
runs on people's machines (``relay/client``), nor anything that decrypts (the envelope's
``stream`` and ``keys`` modules). ``policies/`` imports nothing of ours; ``media/`` imports
neither ``relay`` nor ``storage``; ``storage/`` never imports ``relay``.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OURS = ("relay", "storage", "media", "policies")
DECRYPTING = ("relay.envelope.stream", "relay.envelope.keys")


def _imports(package: str) -> dict[str, set[str]]:
    """Every absolute module each file of ``package`` imports (relative imports resolved)."""
    found: dict[str, set[str]] = {}
    for path in (ROOT / package.replace(".", "/")).rglob("*.py"):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        pkg = module if path.name == "__init__.py" else module.rpartition(".")[0]
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                    base = ".".join(parts + ([base] if base else []))
                # "from a.b import c" names a.b.c (a submodule or a name in a.b): what was asked for.
                names.update(f"{base}.{alias.name}" for alias in node.names)
        found[str(path.relative_to(ROOT))] = names
    return found


def _offending(package: str, forbidden: tuple[str, ...]) -> list[str]:
    return sorted(
        f"{file} imports {name}"
        for file, names in _imports(package).items()
        for name in names
        if any(name == f or name.startswith(f + ".") for f in forbidden)
    )


def test_the_server_never_imports_client_code_or_anything_that_decrypts() -> None:
    assert _offending("relay.server", ("relay.client", *DECRYPTING)) == []
    # Nor through the envelope's lazy facade (``from relay import envelope``, then ``envelope.open_key``):
    # the server names ``relay.envelope.documents`` and nothing else of the envelope.
    envelope_uses = _offending("relay.server", ("relay.envelope",))
    assert envelope_uses and all(".envelope.documents" in line for line in envelope_uses)


def test_the_client_sdk_imports_nothing_of_the_relay_host() -> None:
    """The SDK on a person's machine shares the format (``relay.envelope``) and the wire
    constants (``relay.wire``) with the relay, never the relay's storage or server code. (The
    CLI's ``relay serve`` starts a relay, so only the SDK is held to this.)"""
    assert _offending("relay.client.sdk", ("storage", "relay.server")) == []


def test_the_running_server_has_loaded_no_decrypting_module() -> None:
    """What actually gets imported when the relay starts, not only what the files say. (PyNaCl's
    ``nacl.signing`` loads ``nacl.public`` itself, so the check is on our own modules.)"""
    code = (
        "import sys, relay.server.app, relay.server.admin;"
        "bad = sorted(m for m in sys.modules if m.startswith(('relay.client', 'relay.envelope.stream',"
        " 'relay.envelope.keys')));"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == ""


def test_policies_import_nothing_of_ours() -> None:
    assert _offending("policies", OURS[:3]) == []


def test_media_imports_neither_relay_nor_storage() -> None:
    assert _offending("media", ("relay", "storage")) == []


def test_storage_never_imports_relay() -> None:
    assert _offending("storage", ("relay",)) == []


def test_the_shared_leaf_modules_import_nothing_of_either_side() -> None:
    for leaf in ("relay/wire.py", "relay/clock.py", "relay/ids.py"):
        names = _imports("relay")[leaf]
        assert not [n for n in names if n.startswith(("relay.server", "relay.client"))], leaf
