"""relay.client.visible as the desk uses it: hidden characters as segments, and a comparison of a
letter with its redaction that stays fast whatever a sender writes."""

from __future__ import annotations

import time

from relay.client.visible import Gap, Hidden, changes, hidden_count, reveal, segments, strip_hidden


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


def test_emoji_sequences_are_ordinary_text() -> None:
    """A heart with its presentation selector, a keycap, a family joined by ZWJ and a skin tone:
    all drawn as pictures, nothing hidden in them, so nothing marked."""
    for text in ("Merci ❤️", "1️⃣ then 2️⃣", "👨\u200d👩\u200d👧", "👋🏽\u200d", "🏳️\u200d🌈"):
        expected = 1 if text.endswith("\u200d") else 0  # a joiner with nothing after it joins nothing
        assert hidden_count(text) == expected, text
    assert strip_hidden("Merci ❤️ 👨\u200d👩\u200d👧") == "Merci ❤️ 👨\u200d👩\u200d👧"


def test_what_emoji_could_smuggle_stays_marked() -> None:
    """Variation selectors after an emoji can carry bytes (one per selector), tag characters
    spell invisible ASCII, and a joiner or selector between letters draws nothing: all marked."""
    smuggled = "😀" + "".join(chr(0xE0100 + b) for b in b"12 Elm St")
    assert hidden_count(smuggled) == 9
    assert hidden_count("😀\ufe0f\ufe0f") == 1  # one selector presents the emoji; the second hides
    assert hidden_count("🏴" + "".join(chr(0xE0000 + ord(c)) for c in "gbeng") + "\U000e007f") == 6
    assert hidden_count("a\u200db") == 1 and hidden_count("a\ufe0fb") == 1 and hidden_count("\u200d😀") == 1
    parts = segments("😀\ufe0f\ufe01")
    assert [p.char for p in parts if isinstance(p, Hidden)] == ["\ufe01"]


def test_a_long_run_of_empty_lines_is_one_counted_mark() -> None:
    """Forty empty lines could make a reader think the letter ended above what follows."""
    text = "Dear O-1,\nI forgive nothing.\n" + "\n" * 2 + "  \n" * 38 + "We live at 12 Elm Street.\n"
    parts = segments(text)
    gaps = [p for p in parts if isinstance(p, Gap)]
    assert len(gaps) == 1 and gaps[0].lines == 40 and gaps[0].mark == "⟦↵ × 40⟧\n"
    assert "".join(p if isinstance(p, str) else p.text if isinstance(p, Gap) else p.char for p in parts) == text
    assert hidden_count(text) == 1
    marked, findings = reveal(text)
    assert "⟦↵ × 40⟧\nWe live at 12 Elm Street." in marked and len(findings) == 1
    assert hidden_count("a\n\n\n\nb") == 0  # three empty lines are a letter's ordinary spacing
    # a lone carriage return inside the run is still marked on its own
    assert hidden_count("a\n" + "\n" * 5 + "\r\n" * 2 + "\rb") == 2


def test_no_selector_rides_on_a_symbol_that_draws_nothing_and_stripping_leaves_nothing_hidden() -> None:
    """Found by review: the blank braille pattern is a symbol (So) that draws nothing; selectors
    after it passed as an emoji's, and stripping left a run of selectors after the emoji."""
    text = "😀" + "\u2800\ufe0f\u2800\ufe0f" * 4
    assert hidden_count(text) == 16
    assert strip_hidden(text) == "😀"
    for text in ("a😀\u200d\u2800b", "😀\ufe0f\ufe0f\u2800\ufe0f", "x\u2800\u200d😀\ufe0e"):
        stripped = strip_hidden(text)
        assert hidden_count(stripped) == 0 and strip_hidden(stripped) == stripped, text
    # The text presentation selector is a choice a keyboard does not make: it stays marked.
    assert hidden_count("©\ufe0e ♥\ufe0e") == 2 and hidden_count("©\ufe0f ♥\ufe0f") == 0


def test_a_selector_or_joiner_after_a_symbol_that_is_no_emoji_stays_marked() -> None:
    """Found by the second review: any symbol counted as an emoji, so a divider of box-drawing
    characters could carry a selector and a joiner at each one, unmarked and never stripped."""
    assert hidden_count("─\ufe0f\u200d─\ufe0f\u200d─") == 4
    assert hidden_count("20°\ufe0f") == 1 and hidden_count("⠁\ufe0f") == 1
    assert strip_hidden("─\ufe0f\u200d─") == "──"
    # Emoji outside the pictograph blocks still read as written.
    assert hidden_count("©️ ™️ ↔️ ⏩ ⭐ ▶️ ❤️\u200d🔥 ☀️") == 0
