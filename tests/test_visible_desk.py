"""relay.client.visible as the desk uses it: hidden characters as segments, and a comparison of a
letter with its redaction that stays fast whatever a sender writes."""

from __future__ import annotations

import time

from relay.client.visible import Hidden, changes, hidden_count, segments, strip_hidden


def test_segments_mark_every_hidden_character_and_keep_line_ends() -> None:
    text = "a\x1b[8mb\u202ec\u200b\u180bd\r\ne\rf\n"
    parts = segments(text)
    hidden = [p.char for p in parts if isinstance(p, Hidden)]
    assert hidden == ["\x1b", "\u202e", "\u200b", "\u180b", "\r"]  # CR LF is a line end, a lone CR is not
    assert "".join(p if isinstance(p, str) else p.char for p in parts) == text
    assert hidden_count(text) == 5 and strip_hidden(text) == "a[8mbcd\r\nef\n"


def test_a_redaction_shows_a_removed_line_whole_and_a_removed_word_alone() -> None:
    line = [(c.op, c.text) for c in changes("Dear O-1,\nWe live at 12 Elm Street.\nBye\n", "Dear O-1,\nBye\n")]
    assert line == [("same", "Dear O-1,\n"), ("removed", "We live at 12 Elm Street.\n"), ("same", "Bye\n")]
    word = [(c.op, c.text) for c in changes("I am Anna Smith.\n", "I am [name] Smith.\n")]
    assert ("removed", "Anna") in word and ("added", "[name]") in word
    assert "".join(t for o, t in word if o != "added") == "I am Anna Smith.\n"
    assert "".join(t for o, t in word if o != "removed") == "I am [name] Smith.\n"


def test_a_hostile_letter_cannot_stall_the_comparison() -> None:
    """Thousands of identical lines would cost difflib the square of their number."""
    original = "same line\n" * 20_000
    redacted = "same line\n" * 19_000 + "other\n" * 1_000
    started = time.monotonic()
    ops = changes(original, redacted)
    assert time.monotonic() - started < 2
    assert "".join(c.text for c in ops if c.op != "added") == original
    assert "".join(c.text for c in ops if c.op != "removed") == redacted
