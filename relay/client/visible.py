"""Make every character of a letter visible, so what a mediator reviews is what is delivered.

A sender can hide text from a reviewer with characters that draw nothing or move the cursor:
terminal escapes (``ESC[8m`` conceals, ``CR`` + ``ESC[2K`` erases a line), bidirectional
overrides that reorder what is shown ("Trojan Source", CVE-2021-42574), zero-width characters,
private-use and unassigned code points. Letters are plain text: the only layout characters a
letter needs are line feeds and tabs. Everything else that is not drawn is *hidden* here, and
shown as a visible mark naming its code point, the way code review tools flag bidi overrides.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass

ALLOWED_LAYOUT = frozenset("\n\t")
# Letters or marks that draw nothing, though their category says otherwise.
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u034f\u17b4\u17b5\u180e\u2800")
_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


@dataclass(frozen=True)
class Hidden:
    """One hidden character: the character itself, and how to show it."""

    char: str

    @property
    def code(self) -> str:
        return f"U+{ord(self.char):04X}"

    @property
    def name(self) -> str:
        if self.char == "\x1b":
            return "ESCAPE"
        return unicodedata.name(self.char, "CONTROL CHARACTER" if unicodedata.category(self.char) == "Cc"
                                else "UNASSIGNED OR PRIVATE USE")

    @property
    def mark(self) -> str:
        return f"⟦{self.code}⟧"


Segment = str | Hidden


def is_hidden(char: str) -> bool:
    if char in ALLOWED_LAYOUT:
        return False
    if char in _BLANK_LETTERS or "\ufe00" <= char <= "\ufe0f" or "\U000e0100" <= char <= "\U000e01ef":
        return True  # blank letters and variation selectors
    return unicodedata.category(char) in _HIDDEN_CATEGORIES


def segments(text: str) -> list[Segment]:
    """``text`` as runs of visible text and single :class:`Hidden` characters, in order."""
    out: list[Segment] = []
    run: list[str] = []
    for char in text:
        if is_hidden(char):
            if run:
                out.append("".join(run))
                run = []
            out.append(Hidden(char))
        else:
            run.append(char)
    if run:
        out.append("".join(run))
    return out


def hidden_count(text: str) -> int:
    return sum(1 for char in text if is_hidden(char))


def reveal(text: str) -> tuple[str, int]:
    """``text`` with each hidden character replaced by its visible mark, and how many there were
    (for a terminal: nothing in the result can move the cursor, recolour or reorder)."""
    count = 0
    shown: list[str] = []
    for segment in segments(text):
        if isinstance(segment, Hidden):
            count += 1
            shown.append(segment.mark)
        else:
            shown.append(segment)
    return "".join(shown), count


def strip_hidden(text: str) -> str:
    """``text`` without its hidden characters."""
    return "".join(char for char in text if not is_hidden(char))


_TOKEN = re.compile(r"\s+|\w+|[^\w\s]", re.UNICODE)


@dataclass(frozen=True)
class Change:
    """A run of the comparison of an original with its delivered version."""

    op: str  # "same", "removed" (in the original only) or "added" (in the delivery only)
    text: str


def changes(original: str, delivered: str) -> list[Change]:
    """What a redaction changed, line by line, and word by word inside a line that was edited
    (so a removed line shows as one removal, and a removed name inside a line as just that)."""
    a, b = original.splitlines(keepends=True), delivered.splitlines(keepends=True)
    out: list[Change] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if tag == "equal":
            out.append(Change("same", "".join(a[i1:i2])))
        elif tag == "replace" and i2 - i1 == j2 - j1:
            for old, new in zip(a[i1:i2], b[j1:j2], strict=True):
                out.extend(_word_changes(old, new))
        else:
            if i2 > i1:
                out.append(Change("removed", "".join(a[i1:i2])))
            if j2 > j1:
                out.append(Change("added", "".join(b[j1:j2])))
    return out


def _word_changes(original: str, delivered: str) -> list[Change]:
    a, b = _TOKEN.findall(original), _TOKEN.findall(delivered)
    if "".join(a) != original or "".join(b) != delivered:  # nothing may fall between tokens
        a, b = list(original), list(delivered)
    out: list[Change] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if tag == "equal":
            out.append(Change("same", "".join(a[i1:i2])))
            continue
        if i2 > i1:
            out.append(Change("removed", "".join(a[i1:i2])))
        if j2 > j1:
            out.append(Change("added", "".join(b[j1:j2])))
    return out
