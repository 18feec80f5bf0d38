"""The desk's words for the relay's codes come from the shared tables the CLI and the relay use."""

from __future__ import annotations

from relay import i18n
from relay.client.web import render


def test_hold_codes_the_relay_sends_get_the_relays_words_in_both_languages() -> None:
    for lang in ("en", "fr"):
        render.set_lang(lang)
        for code in ("condition-requires-approval", "consent-withdrawn", "case-paused", "case-closed"):
            assert render.hold_words(code) == i18n.text(f"hold.{code}", lang)
        assert render.hold_words("a-code-from-a-newer-relay") == i18n.text("hold.other", lang)
    render.set_lang("en")
    assert render.staff_state("pending_review") == "awaiting review"
    render.set_lang("fr")
    assert render.staff_state("pending_review") != "awaiting review"
    render.set_lang("en")
