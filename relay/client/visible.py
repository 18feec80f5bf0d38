"""Make a letter's hidden characters visible, so what a reader sees is what the text holds.

A letter is plain text, but text can hide things from a person looking at it: terminal escape
sequences (``\\x1b[8m`` hides what follows, ``\\r\\x1b[2K`` erases a line), bidirectional overrides
that reorder what is displayed, zero-width characters, and other control or format characters.
A mediator who releases a letter "as written" must see all of it, so every such character is
replaced by a visible mark and counted.

Pure functions, no I/O: the CLI and the local web interfaces both use them. The desk also
compares an original with its redaction (:func:`changes`), line by line and then word by word.

    >>> marked, findings = reveal("fine\\x1b[8mhidden\\x1b[0m")
    >>> marked
    'fine⟦ESC⟧[8mhidden⟦ESC⟧[0m'
    >>> len(findings)
    2

``reveal(text)`` returns ``(marked_text, findings)``; ``reveal_bytes(data)`` does the same for
UTF-8 bytes, marking each byte that is not valid UTF-8 as ``⟦0xNN⟧``. Line feeds, tabs and
CR LF line ends are ordinary text and are left alone; a lone carriage return is marked.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass

OPEN, CLOSE = "⟦", "⟧"

# Short names for the controls people may have heard of; others are shown as U+XXXX.
_NAMES = {0x00: "NUL", 0x07: "BEL", 0x08: "BS", 0x0B: "VT", 0x0C: "FF", 0x0D: "CR", 0x1B: "ESC", 0x7F: "DEL",
          0x9B: "CSI", 0x200B: "ZWSP", 0x200C: "ZWNJ", 0x200D: "ZWJ", 0x2060: "WJ", 0xFEFF: "BOM",
          0x00AD: "SHY", 0x2028: "LSEP", 0x2029: "PSEP"}
# Letters and marks that draw nothing (Unicode gives them no visible glyph), used to hide text.
_BLANK_LETTERS = frozenset({0x034F, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x180E, 0x2800, 0x3164, 0xFFA0})
_ORDINARY = frozenset("\n\t")


@dataclass(frozen=True)
class Finding:
    """One hidden character: where it was in the text, which it is, and the mark that replaced it."""

    index: int  # position in the original text (in characters; for reveal_bytes, in the decoded text)
    codepoint: int  # for an invalid byte: the byte's value
    name: str  # the Unicode name, or a short description
    mark: str  # what replaced it in the marked text

    @property
    def invalid_byte(self) -> bool:
        return 0xDC80 <= self.codepoint <= 0xDCFF


def is_hidden(char: str) -> bool:
    """True for a character a reader would not see as written: controls (except line feed and
    tab), format characters (bidi controls, zero-width, tags), separators that break lines
    invisibly, private-use characters, and letters that draw nothing."""
    if char in _ORDINARY:
        return False
    code = ord(char)
    if 0xFE00 <= code <= 0xFE0F or 0xE0100 <= code <= 0xE01EF or 0x180B <= code <= 0x180F:
        # variation selectors (Mongolian ones too) draw nothing alone
        return True
    category = unicodedata.category(char)
    # Unassigned code points (Cn) too: no font draws them, and a later Unicode may give them a meaning.
    return category in ("Cc", "Cf", "Co", "Cs", "Cn", "Zl", "Zp") or code in _BLANK_LETTERS


def mark_for(char: str) -> str:
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # a byte that is not UTF-8, carried by surrogateescape
        return f"{OPEN}0x{code - 0xDC00:02X}{CLOSE}"
    short = _NAMES.get(code)
    return f"{OPEN}{short}{CLOSE}" if short else f"{OPEN}U+{code:04X}{CLOSE}"


def reveal(text: str) -> tuple[str, list[Finding]]:
    """``text`` with every hidden character replaced by a visible mark, and what was found."""
    out: list[str] = []
    findings: list[Finding] = []
    for index, char in enumerate(text):
        if char == "\r" and text[index + 1:index + 2] == "\n":
            out.append(char)  # a CR LF line end
            continue
        if not is_hidden(char):
            out.append(char)
            continue
        mark = mark_for(char)
        code = ord(char)
        name = (f"byte 0x{code - 0xDC00:02X} (not UTF-8)" if 0xDC80 <= code <= 0xDCFF
                else unicodedata.name(char, _NAMES.get(code, f"U+{code:04X}")))
        findings.append(Finding(index, code, name, mark))
        out.append(mark)
    return "".join(out), findings


def reveal_bytes(data: bytes) -> tuple[str, list[Finding]]:
    """Decode UTF-8 (an invalid byte becomes a ``⟦0xNN⟧`` mark and a finding), then :func:`reveal`."""
    return reveal(data.decode("utf-8", errors="surrogateescape"))


def _hidden_at(text: str, index: int) -> bool:
    char = text[index]
    return is_hidden(char) and not (char == "\r" and text[index + 1:index + 2] == "\n")


@dataclass(frozen=True)
class Hidden:
    """One hidden character in :func:`segments`, for a page to draw as a mark."""

    char: str

    @property
    def code(self) -> str:
        return f"U+{ord(self.char):04X}"

    @property
    def name(self) -> str:
        return unicodedata.name(self.char, _NAMES.get(ord(self.char), self.code))

    @property
    def mark(self) -> str:
        return mark_for(self.char)


Segment = str | Hidden


def segments(text: str) -> list[Segment]:
    """``text`` as runs of visible text and single :class:`Hidden` characters, in order (what
    :func:`reveal` marks, as parts a template can draw and label)."""
    out: list[Segment] = []
    start = 0
    for index in range(len(text)):
        if _hidden_at(text, index):
            if index > start:
                out.append(text[start:index])
            out.append(Hidden(text[index]))
            start = index + 1
    if start < len(text):
        out.append(text[start:])
    return out


def hidden_count(text: str) -> int:
    return sum(1 for index in range(len(text)) if _hidden_at(text, index))


def strip_hidden(text: str) -> str:
    """``text`` without its hidden characters (a mediator's choice before a release)."""
    return "".join(char for index, char in enumerate(text) if not _hidden_at(text, index))


_TOKEN = re.compile(r"\s+|\w+|[^\w\s]", re.UNICODE)


@dataclass(frozen=True)
class Change:
    """A run of the comparison of an original with its delivered version."""

    op: str  # "same", "removed" (in the original only) or "added" (in the delivery only)
    text: str


# difflib's matching costs up to the product of the two lengths: a hostile letter of repeated
# lines could stall the desk for minutes. Past this, the comparison is coarser, never slower.
MAX_COMPARISON = 4_000_000


def changes(original: str, delivered: str) -> list[Change]:
    """What a redaction changed, line by line, and word by word inside a line that was edited
    (so a removed line shows as one removal, and a removed name inside a line as just that)."""
    a, b = original.splitlines(keepends=True), delivered.splitlines(keepends=True)
    if len(a) * len(b) > MAX_COMPARISON:
        return _diff([], [], original, delivered) if original != delivered else [Change("same", original)]
    out: list[Change] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if tag == "equal":
            out.append(Change("same", "".join(a[i1:i2])))
        elif tag == "replace" and i2 - i1 == j2 - j1:
            for old, new in zip(a[i1:i2], b[j1:j2], strict=True):
                out.extend(_diff(_TOKEN.findall(old), _TOKEN.findall(new), old, new))
        else:
            out.extend(_diff([], [], "".join(a[i1:i2]), "".join(b[j1:j2])))
    return out


def _diff(a: list[str], b: list[str], original: str, delivered: str) -> list[Change]:
    if "".join(a) != original or "".join(b) != delivered or len(a) * len(b) > MAX_COMPARISON:
        a, b = ([original] if original else []), ([delivered] if delivered else [])
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
