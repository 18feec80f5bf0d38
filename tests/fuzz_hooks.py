"""Schemathesis hooks for tests/test_schema_fuzz.py (loaded through SCHEMATHESIS_HOOKS).

tus PATCH bodies are ``application/offset+octet-stream``: raw bytes, sent as schemathesis sends
``application/octet-stream``.
"""

import schemathesis

schemathesis.serializer.alias("application/offset+octet-stream", "application/octet-stream")
