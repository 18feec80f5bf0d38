"""Translations from gettext catalogs (``relay/i18n/locale/<lang>/LC_MESSAGES/relay.po``).

English is the source language: every message is written in English in the code and the
templates (``_("…")``), Babel extracts them, and translators work on the ``.po`` files in the
tools they know. The catalogs are compiled in memory when first used, so there is no build step
and no compiled file to keep in step with its source.

``python -m relay.i18n update`` extracts every message and merges it into each
catalog (new ones with an empty translation); ``tests/test_i18n.py`` fails while any message
lacks a translation.
"""

from __future__ import annotations

import functools
import gettext
import io
from pathlib import Path

LANGUAGES = ("en", "fr")
DOMAIN = "relay"
LOCALE_DIR = Path(__file__).parent / "locale"
ROOT = Path(__file__).resolve().parents[2]  # the project: relay/, templates under it

# What Babel extracts from: our Python and the local web interfaces' templates.
METHOD_MAP = [
    ("relay/**.py", "python"),
    ("media/errors.py", "python"),
    ("relay/client/web/templates/**.html", "jinja2"),
]
OPTIONS_MAP = {"relay/client/web/templates/**.html": {"extensions": "jinja2.ext.i18n", "trimmed": "true"}}
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None}


def N_(message: str) -> str:  # noqa: N802 - the gettext convention for "mark for extraction only"
    """Mark a message for extraction where it is defined; it is translated where it is shown."""
    return message


def catalog_path(lang: str) -> Path:
    return LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


@functools.cache
def translation(lang: str) -> gettext.NullTranslations:
    """The translations for ``lang`` (English, or an unknown language: the messages as written)."""
    path = catalog_path(lang)
    if lang == "en" or not path.is_file():
        return gettext.NullTranslations()
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    with open(path, "rb") as po:
        catalog = read_po(po, locale=lang)
    compiled = io.BytesIO()
    write_mo(compiled, catalog, use_fuzzy=False)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


def gettext_for(lang: str):  # type: ignore[no-untyped-def]
    return translation(lang).gettext


def extract():  # type: ignore[no-untyped-def]
    """Every message in the source, as a Babel catalog (msgid -> locations)."""
    from babel.messages.catalog import Catalog
    from babel.messages.extract import extract_from_dir

    catalog = Catalog(project="mediation-relay", domain=DOMAIN)
    for filename, lineno, message, comments, context in extract_from_dir(
        str(ROOT), METHOD_MAP, OPTIONS_MAP, keywords=KEYWORDS, comment_tags=("Translators:",),
    ):
        catalog.add(message, None, [(filename, lineno)], auto_comments=comments, context=context)
    return catalog


def update() -> int:
    """Merge the extracted messages into each language's catalog; report what is untranslated."""
    from babel.messages.pofile import read_po, write_po

    template = extract()
    missing = 0
    for lang in LANGUAGES:
        if lang == "en":
            continue
        path = catalog_path(lang)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_file():
            with open(path, "rb") as po:
                catalog = read_po(po, locale=lang)
        else:
            from babel.messages.catalog import Catalog
            catalog = Catalog(locale=lang, domain=DOMAIN, project="mediation-relay")
        catalog.update(template, no_fuzzy_matching=True)
        with open(path, "wb") as po:
            write_po(po, catalog, width=100, omit_header=False, sort_output=False, ignore_obsolete=True,
                     include_previous=False)
        untranslated = [m.id for m in catalog if m.id and not m.string]
        missing += len(untranslated)
        for message in untranslated:
            print(f"{lang}: untranslated: {message!r}")
    return 1 if missing else 0

