"""Schemathesis hooks for tests/test_schema_fuzz.py (loaded through SCHEMATHESIS_HOOKS).

- tus PATCH bodies are ``application/offset+octet-stream``: raw bytes, sent as schemathesis
  sends ``application/octet-stream``.
- Path ids: ids the fuzzer makes up only ever meet "not found", so each path id is drawn either
  as generated or from the real objects the test set up (``RELAY_FUZZ_IDS``: a JSON object from
  parameter name to ids); requests then reach the services behind the lookups.
"""

from __future__ import annotations

import json
import os
from typing import Any

import schemathesis
from hypothesis import strategies as st

schemathesis.serializer.alias("application/offset+octet-stream", "application/octet-stream")

KNOWN: dict[str, list[str]] = json.loads(os.environ.get("RELAY_FUZZ_IDS", "{}"))


@schemathesis.hook
def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any] | None) -> Any:
    if not path_parameters:
        return st.just(path_parameters)
    return st.fixed_dictionaries({
        name: st.sampled_from([value, *KNOWN[name]]) if KNOWN.get(name) else st.just(value)
        for name, value in path_parameters.items()})
