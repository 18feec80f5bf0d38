"""Strong word passphrases for key bundles, generated at enrollment by default.

Six words from the EFF long list (7,776 words, shipped by the ``xkcdpass`` package) give about
77 bits: with Argon2id at MODERATE limits, an offline guess of a fetched bundle costs about a
second of a core and 256 MiB each, which puts the whole space far out of reach. Words are drawn
with ``secrets.choice`` so the randomness is the operating system's.
"""

from __future__ import annotations

import functools
import secrets

from xkcdpass import xkcd_password

WORDS = 6


@functools.cache
def _wordlist() -> tuple[str, ...]:
    return tuple(xkcd_password.generate_wordlist(wordfile=xkcd_password.locate_wordfile("eff-long"),
                                                 min_length=3, max_length=9))


def generate(words: int = WORDS) -> str:
    wordlist = _wordlist()
    return "-".join(secrets.choice(wordlist) for _ in range(words))
