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

Emoji are ordinary text too, including the two invisible characters they are built with: one
emoji presentation selector (U+FE0F) right after an emoji or a keycap digit, and a zero-width
joiner between two emoji (a family, a profession). Anything more stays marked: a run of variation
selectors after an emoji can carry hidden bytes, and tag characters (used by a few flags) can spell
out invisible ASCII, so both are shown.

A long run of empty lines can make a reader think a letter has ended above text that follows it:
more than :data:`MAX_EMPTY_LINES` empty lines in a row are shown as one mark that counts them
(``⟦↵ × 40⟧``) and count as one finding.
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
# Only the emoji presentation selector is ordinary after an emoji (what keyboards type); the text
# one stays marked, so a sender's choice between the two cannot carry hidden bits.
_EMOJI_PRESENTATION = "\ufe0f"
_ZWJ = "\u200d"
_KEYCAP_BASES = frozenset("0123456789#*")
_KEYCAP = "\u20e3"
MAX_EMPTY_LINES = 3


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
    """``text`` with every hidden character replaced by a visible mark, each long run of empty
    lines by one counted mark, and what was found."""
    out: list[str] = []
    findings: list[Finding] = []
    runs = {start: (end, lines) for start, end, lines in _empty_runs(text)}
    index = 0
    while index < len(text):
        if index in runs:
            end, lines = runs[index]
            mark = gap_mark(lines)
            findings.append(Finding(index, 0x0A, f"{lines} empty lines", mark.rstrip("\n")))
            out.append(mark)
            index = end
            continue
        char = text[index]
        if not _hidden_at(text, index):
            out.append(char)
            index += 1
            continue
        mark = mark_for(char)
        code = ord(char)
        name = (f"byte 0x{code - 0xDC00:02X} (not UTF-8)" if 0xDC80 <= code <= 0xDCFF
                else unicodedata.name(char, _NAMES.get(code, f"U+{code:04X}")))
        findings.append(Finding(index, code, name, mark))
        out.append(mark)
        index += 1
    return "".join(out), findings


def reveal_bytes(data: bytes) -> tuple[str, list[Finding]]:
    """Decode UTF-8 (an invalid byte becomes a ``⟦0xNN⟧`` mark and a finding), then :func:`reveal`."""
    return reveal(data.decode("utf-8", errors="surrogateescape"))


# Python's unicodedata has no Emoji property. These are the blocks emoji come from (pictographs,
# emoticons, transport, flags' regional indicators, misc symbols, dingbats) and the few emoji
# elsewhere: not every symbol (°, box drawing, braille), since a selector or joiner after any
# symbol would let a sender hide bits a mediator never sees.
_EMOJI_BLOCKS = ((0x1F000, 0x1FAFF), (0x2600, 0x27BF))
_EMOJI_ELSEWHERE = frozenset({
    0x00A9, 0x00AE, 0x203C, 0x2049, 0x2122, 0x2139, 0x2194, 0x2195, 0x2196, 0x2197, 0x2198, 0x2199,
    0x21A9, 0x21AA, 0x231A, 0x231B, 0x2328, 0x23CF, *range(0x23E9, 0x23F4), 0x23F8, 0x23F9, 0x23FA,
    0x24C2, 0x25AA, 0x25AB, 0x25B6, 0x25C0, 0x25FB, 0x25FC, 0x25FD, 0x25FE, 0x2934, 0x2935,
    0x2B05, 0x2B06, 0x2B07, 0x2B1B, 0x2B1C, 0x2B50, 0x2B55, 0x3030, 0x303D, 0x3297, 0x3299})


def _is_emoji(char: str) -> bool:
    code = ord(char)
    in_block = any(low <= code <= high for low, high in _EMOJI_BLOCKS)
    return (in_block or code in _EMOJI_ELSEWHERE) and not is_hidden(char)


def _emoji_before(text: str, index: int) -> bool:
    """An emoji ends just before ``index``: an emoji, optionally followed by one emoji
    presentation selector or one skin-tone modifier (U+1F3FB..U+1F3FF)."""
    if index > 0 and (text[index - 1] == _EMOJI_PRESENTATION or 0x1F3FB <= ord(text[index - 1]) <= 0x1F3FF):
        index -= 1
    return index > 0 and _is_emoji(text[index - 1])


def _part_of_emoji(text: str, index: int) -> bool:
    """The invisible character at ``index`` is one an emoji sequence is made of, in its place."""
    char = text[index]
    before = text[index - 1] if index > 0 else ""
    if char == _EMOJI_PRESENTATION:
        keycap = before in _KEYCAP_BASES and text[index + 1:index + 2] == _KEYCAP
        return keycap or (_is_emoji(before) if before else False)
    if char == _ZWJ:
        after = text[index + 1:index + 2]
        return bool(after) and _is_emoji(after) and _emoji_before(text, index)
    return False


def _hidden_at(text: str, index: int) -> bool:
    char = text[index]
    if not is_hidden(char):
        return False
    if char == "\r" and text[index + 1:index + 2] == "\n":
        return False  # a CR LF line end
    return not _part_of_emoji(text, index)


_EMPTY_RUN = re.compile(r"(?:^[ \t\u00a0\u2000-\u200a\u3000]*\r?\n){%d,}" % (MAX_EMPTY_LINES + 1), re.MULTILINE)


def _empty_runs(text: str) -> list[tuple[int, int, int]]:
    """Runs of more than MAX_EMPTY_LINES empty lines as (start, end, lines)."""
    return [(m.start(), m.end(), m.group().count("\n")) for m in _EMPTY_RUN.finditer(text)]


def gap_mark(lines: int) -> str:
    return f"{OPEN}↵ × {lines}{CLOSE}\n"


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


@dataclass(frozen=True)
class Gap:
    """A run of more than MAX_EMPTY_LINES empty lines in :func:`segments`, drawn as one mark."""

    text: str  # the run itself, so the segments still add up to the letter

    @property
    def lines(self) -> int:
        return self.text.count("\n")

    @property
    def mark(self) -> str:
        return gap_mark(self.lines)


Segment = str | Hidden | Gap


def segments(text: str) -> list[Segment]:
    """``text`` as runs of visible text, single :class:`Hidden` characters and :class:`Gap` runs
    of empty lines, in order (what :func:`reveal` marks, as parts a template can draw and label)."""
    out: list[Segment] = []
    runs = {start: end for start, end, _ in _empty_runs(text)}
    start = index = 0
    while index < len(text):
        if index in runs or _hidden_at(text, index):
            if index > start:
                out.append(text[start:index])
            if index in runs:
                out.append(Gap(text[index:runs[index]]))
                index = runs[index]
            else:
                out.append(Hidden(text[index]))
                index += 1
            start = index
            continue
        index += 1
    if start < len(text):
        out.append(text[start:])
    return out


def hidden_count(text: str) -> int:
    """Hidden characters and long runs of empty lines: what a reader is warned about."""
    return sum(1 for index in range(len(text)) if _hidden_at(text, index)) + len(_empty_runs(text))


def strip_hidden(text: str) -> str:
    """``text`` without its hidden characters (a mediator's choice before a release). Removing
    one can change what its neighbours are part of (a selector then follows a different
    character), so it repeats until nothing hidden is left; each round removes at least one."""
    while True:
        kept = "".join(char for index, char in enumerate(text) if not _hidden_at(text, index))
        if kept == text:
            return text
        text = kept


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
