"""Make a letter's hidden characters visible, so what a reader sees is what the text holds.

A letter is plain text, but text can hide things from a person looking at it: terminal escape
sequences (``\\x1b[8m`` hides what follows, ``\\r\\x1b[2K`` erases a line), bidirectional overrides
that reorder what is displayed, zero-width characters, and other control or format characters.
A mediator who releases a letter "as written" must see all of it, so every such character is
replaced by a visible mark and counted.

Pure functions, no I/O: the CLI and the local web interfaces both use them.

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

import unicodedata
from dataclasses import dataclass

OPEN, CLOSE = "⟦", "⟧"

# Short names for the controls people may have heard of; others are shown as U+XXXX.
_NAMES = {0x00: "NUL", 0x07: "BEL", 0x08: "BS", 0x0B: "VT", 0x0C: "FF", 0x0D: "CR", 0x1B: "ESC", 0x7F: "DEL",
          0x9B: "CSI", 0x200B: "ZWSP", 0x200C: "ZWNJ", 0x200D: "ZWJ", 0x2060: "WJ", 0xFEFF: "BOM",
          0x00AD: "SHY", 0x2028: "LSEP", 0x2029: "PSEP"}
# Letters and marks that draw nothing (Unicode gives them no visible glyph), used to hide text.
_BLANK_LETTERS = frozenset({0x034F, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x3164, 0xFFA0})
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
    category = unicodedata.category(char)
    return (category in ("Cc", "Cf", "Co", "Cs", "Zl", "Zp") or ord(char) in _BLANK_LETTERS)


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
