"""Every message a person reads exists in English and in French, from the gettext catalogs."""

from __future__ import annotations

import re

from babel.messages.pofile import read_po

from relay.i18n.catalogs import LANGUAGES, catalog_path, extract, translation

_PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]|\{(\w+)\}")


def _ids(message_id: str | tuple[str, ...]) -> str:
    return message_id[0] if isinstance(message_id, tuple) else message_id


def _french():  # type: ignore[no-untyped-def]
    with open(catalog_path("fr"), "rb") as po:
        return read_po(po, locale="fr")


def test_every_message_in_the_source_has_a_french_translation() -> None:
    source = {_ids(m.id) for m in extract() if m.id}
    catalog = {_ids(m.id): m for m in _french() if m.id}
    missing = sorted(source - set(catalog))
    assert not missing, f"not in the French catalog (run python -m relay.i18n update): {missing[:10]}"
    untranslated = sorted(k for k in source if not all(s for s in (
        catalog[k].string if isinstance(catalog[k].string, tuple) else (catalog[k].string,))))
    assert not untranslated, f"untranslated: {untranslated[:10]}"
    stale = sorted(set(catalog) - source)
    assert not stale, f"in the catalog but no longer in the source: {stale[:10]}"


def test_translations_keep_every_placeholder() -> None:
    for message in _french():
        if not message.id:
            continue
        wanted = {a or b for a, b in _PLACEHOLDER.findall(_ids(message.id))}
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        for string in strings:
            found = {a or b for a, b in _PLACEHOLDER.findall(string)}
            # A singular may spell out its number ("un caractère"); every other name must be kept.
            assert found - {"num"} == wanted - {"num"}, (message.id, string)


def test_the_catalog_is_what_the_interfaces_use() -> None:
    assert "fr" in LANGUAGES
    assert translation("fr").gettext("Review queue") == "File d'examen"
    assert translation("en").gettext("Review queue") == "Review queue"
