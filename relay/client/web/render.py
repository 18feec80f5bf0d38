"""Pages: Jinja2 templates with autoescaping, in the reader's language, and the words for things.

Templates escape everything by default (aiohttp-jinja2 with ``autoescape``): a letter, a label
or a problem title is shown as text, never as markup. Messages come from the gettext catalogs
(``relay.i18n.catalogs``); the language of each request is held in a context variable, so one
environment serves both languages.
"""

from __future__ import annotations

import contextvars
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web
from babel.dates import format_datetime, format_timedelta
from babel.numbers import format_decimal

from relay import i18n
from relay.client import visible
from relay.i18n import cli as cli_text
from relay.i18n.catalogs import LANGUAGES, N_, translation

TEMPLATES = Path(__file__).parent / "templates"
LANG_COOKIE = "relay_lang"
_lang: contextvars.ContextVar[str] = contextvars.ContextVar("relay_web_lang", default="en")


def lang() -> str:
    return _lang.get()


def set_lang(value: str) -> None:
    _lang.set(value if value in LANGUAGES else "en")


def _(message: str) -> str:
    return translation(lang()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return translation(lang()).ngettext(singular, plural, n)


def age(seconds: float) -> str:
    """'3 days', '« 3 jours »': how long ago, in words."""
    return format_timedelta(timedelta(seconds=max(0, seconds)), threshold=1.1, locale=lang())


def when(stamp: str | None) -> str:
    if not stamp:
        return ""
    moment = datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone(UTC)
    return format_datetime(moment, format="medium", tzinfo=UTC, locale=lang())


def size(n: int | None) -> str:
    """Bytes in kB, MB or GB (decimal units), in the reader's number format."""
    if n is None:
        return ""
    for unit, scale in ((N_("GB"), 1e9), (N_("MB"), 1e6), (N_("kB"), 1e3)):
        if n >= scale:
            return f"{format_decimal(round(n / scale, 1), locale=lang())} {_(unit)}"
    return f"{n} {_('bytes')}"


KINDS = {"letter": N_("Letter"), "video": N_("Video message")}
CONDITION_KINDS = {
    "court_order": N_("court non-communication order"),
    "parole_condition": N_("parole no-contact condition"),
    "institutional": N_("institutional no-contact condition"),
}
DIRECTIONS = {"both": N_("both directions"), "from_restricted": N_("from the restricted person"),
              "to_restricted": N_("to the restricted person")}
KIND_PLURALS = {"letter": N_("letters"), "video": N_("video messages")}


def staff_state(state: str) -> str:
    """An item's state in the staff's words: the CLI's, from the shared catalog (a sender sees the
    neutral status the relay gives instead)."""
    key = f"state.{state}"
    return cli_text.say(key, lang()) if key in cli_text.TEXT else state.replace("_", " ")


def hold_words(code: str | None) -> str:
    """Why an item is held, in the relay's own words for its hold codes (the same the relay puts in
    the queue's ``hold_reason``)."""
    if not code:
        return ""
    return i18n.text(f"hold.{code}" if f"hold.{code}" in i18n.MESSAGES else "hold.other", lang())


def words(table: dict[str, str], key: str | None) -> str:
    if key is None:
        return ""
    return _(table[key]) if key in table else key.replace("_", " ").replace("-", " ")


def setup(app: web.Application) -> jinja2.Environment:
    env = aiohttp_jinja2.setup(
        app, loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=jinja2.select_autoescape(default=True),
        extensions=["jinja2.ext.i18n"], undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.install_gettext_callables(_, ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.filters.update(kind_plural=lambda k: words(KIND_PLURALS, k), direction_words=lambda d: words(DIRECTIONS, d))
    env.globals.update(age=age, when=when, size=size, kind_words=lambda k: words(KINDS, k),
                       staff_state=staff_state, hold_words=hold_words,
                       condition_kind=lambda k: words(CONDITION_KINDS, k),
                       direction_words=lambda d: words(DIRECTIONS, d),
                       segments=visible.segments, Hidden=visible.Hidden, lang=lang, LANGUAGES=LANGUAGES)
    return env


def page(request: web.Request, template: str, context: dict[str, Any] | None = None,
         *, status: int = 200) -> web.Response:
    return aiohttp_jinja2.render_template(template, request, context or {}, status=status)


def reason_words(kind: str, code: str) -> str:
    """A reason code's words (``withhold``, ``pause``, ``resume``), from the shared table the relay
    also announces at /v1/limits."""
    return i18n.text(f"{kind}.{code}", lang()) if f"{kind}.{code}" in i18n.MESSAGES else code


def reasons(kind: str, codes: tuple[str, ...]) -> list[tuple[str, str]]:
    return [(code, reason_words(kind, code)) for code in codes]
