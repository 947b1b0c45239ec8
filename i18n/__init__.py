"""Languages for every screen, message and printout: gettext catalogues read with Babel.

The catalogues are the ``.po`` files under ``i18n/locales/<lang>/LC_MESSAGES/gatehouse.po``
(sources, committed, edited by translators). They are **compiled when first loaded** (Babel
reads the ``.po`` and writes the ``.mo`` into memory), so there is no build step and no
stale compiled file: what the repository holds is what runs. Four small catalogues take a
few milliseconds.

One catalogue serves everyone: Python code calls :meth:`Lang.gettext` (``lang._("…")``),
the Jinja templates use the same translations through ``jinja2.ext.i18n``, and the browser
pages fetch :func:`catalogue_json` (``/i18n/<tag>.json``, served by the hub and the gate
agent) — never a second hand-written dictionary in JavaScript.

* msgids are the English text (the gettext convention), with ``{name}`` placeholders;
* reason messages are keyed by the stable reason code (``msgctxt "reason"``, msgid
  ``ALREADY_USED``); English comes from :mod:`tickets.reasons`, the other languages from
  their catalogues (:func:`reason_message`);
* numbers, dates and times are formatted per locale with Babel's CLDR data.

This package sits at the bottom of the dependency order beside ``tickets`` (it imports
only ``tickets.reasons``), so the hub, the gate agent and the CLI can all use it.
"""
from __future__ import annotations

import functools
import io
import json
import logging
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any

from babel import Locale
from babel.core import negotiate_locale
from babel.dates import format_datetime as _format_datetime
from babel.dates import format_time as _format_time
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal, format_percent
from babel.support import Translations

from tickets.reasons import Reason

log = logging.getLogger(__name__)

LOCALE_DIR = Path(__file__).resolve().parent / "locales"
DOMAIN = "gatehouse"
#: the supported languages as catalogue directory names (Babel / gettext locale ids)
LANGUAGES: tuple[str, ...] = ("en", "zh_Hans", "ru", "kk")
DEFAULT = "en"
#: what each language is called in itself (the language picker shows these)
NATIVE_NAMES: Mapping[str, str] = {"en": "English", "zh_Hans": "简体中文", "ru": "Русский", "kk": "Қазақша"}
#: the environment variable the CLI reads (``--lang`` wins)
ENV_VAR = "GATEHOUSE_LANG"
#: the message context of reason messages (msgid = the stable reason code)
REASON_CONTEXT = "reason"

_ALIASES = {"zh": "zh_Hans", "zh_cn": "zh_Hans", "zh_sg": "zh_Hans", "zh_hans_cn": "zh_Hans", "zh_hans": "zh_Hans",
            "ru_ru": "ru", "kk_kz": "kk", "kk_cyrl": "kk", "kk_cyrl_kz": "kk"}


class UnknownLanguage(ValueError):
    """A language tag gatehouse has no catalogue for."""

    def __init__(self, tag: str) -> None:
        super().__init__(f"unknown language {tag!r}; choose one of: {', '.join(tag_of(c) for c in LANGUAGES)}")
        self.tag = tag


def normalize(tag: str | None) -> str | None:
    """A language tag (``zh-Hans``, ``zh_CN``, ``ru-RU``, ``kk``, ``en-GB``) as one of
    :data:`LANGUAGES`, or None if it is none of them."""
    if not tag:
        return None
    key = tag.strip().replace("-", "_").lower()
    if not key:
        return None
    for code in LANGUAGES:
        if key == code.lower():
            return code
    if key in _ALIASES:
        return _ALIASES[key]
    base = key.split("_", 1)[0]
    if base == "zh":
        # Traditional Chinese (zh-Hant, zh-TW, zh-HK) is not Simplified: do not pretend it is.
        return None if any(t in key for t in ("hant", "_tw", "_hk", "_mo")) else "zh_Hans"
    return base if base in LANGUAGES else None


def require(tag: str) -> str:
    """:func:`normalize`, raising :class:`UnknownLanguage` for a tag with no catalogue."""
    code = normalize(tag)
    if code is None:
        raise UnknownLanguage(tag)
    return code


def tag_of(code: str) -> str:
    """The BCP 47 tag a browser uses (``zh_Hans`` → ``zh-Hans``)."""
    return code.replace("_", "-")


def negotiate(accept_language: str | None) -> str:
    """The best supported language for an HTTP ``Accept-Language`` header (English if none)."""
    if not accept_language:
        return DEFAULT
    wanted: list[tuple[float, str]] = []
    for i, part in enumerate(accept_language.split(",")):
        name, _sep, params = part.strip().partition(";")
        q = 1.0
        m = re.search(r"q=([0-9.]+)", params)
        if m:
            try:
                q = float(m.group(1))
            except ValueError:
                q = 0.0
        if name and q > 0:
            wanted.append((-q + i * 1e-6, name))
    for _q, name in sorted(wanted):
        code = normalize(name)
        if code is not None:
            return code
    found = negotiate_locale([n for _q, n in sorted(wanted)], list(LANGUAGES), sep="_")
    return found or DEFAULT


def po_path(code: str) -> Path:
    return LOCALE_DIR / code / "LC_MESSAGES" / f"{DOMAIN}.po"


@functools.cache
def translations(code: str) -> Translations:
    """The compiled catalogue of a supported language (cached for the process)."""
    code = require(code)
    path = po_path(code)
    with path.open("rb") as f:
        catalog = read_po(f, locale=code, domain=DOMAIN)
    buf = io.BytesIO()
    write_mo(buf, catalog, use_fuzzy=False)
    buf.seek(0)
    return Translations(buf, domain=DOMAIN)


@functools.cache
def catalogue(code: str) -> dict[str, str]:
    """Every translated message of a language as ``{msgid: text}`` (``ctx\\x04msgid`` for a
    message with a context), untranslated and fuzzy entries left out: a reader falls back
    to the English msgid, never to an empty string."""
    code = require(code)
    with po_path(code).open("rb") as f:
        cat = read_po(f, locale=code, domain=DOMAIN)
    out: dict[str, str] = {}
    for msg in cat:
        if not msg.id or msg.fuzzy or not msg.string or isinstance(msg.id, tuple):
            continue
        key = f"{msg.context}\x04{msg.id}" if msg.context else str(msg.id)
        out[key] = str(msg.string)
    return out


#: the template every catalogue is made from (``python -m i18n.extract`` writes it)
TEMPLATE = Path(__file__).resolve().parent / f"{DOMAIN}.pot"


@functools.cache
def template_ids() -> tuple[str, ...]:
    """Every message of the project (keyed like :func:`catalogue`), from the template: what
    a complete catalogue translates."""
    with TEMPLATE.open("rb") as f:
        cat = read_po(f, domain=DOMAIN)
    return tuple(f"{m.context}\x04{m.id}" if m.context else str(m.id)
                 for m in cat if m.id and not isinstance(m.id, tuple))


def catalogue_json(code: str) -> bytes:
    """What the browser pages load: the language, its tag and its messages, as JSON."""
    code = require(code)
    return _catalogue_json(code)


@functools.cache
def _catalogue_json(code: str) -> bytes:
    doc = {"lang": tag_of(code), "name": NATIVE_NAMES[code],
           "languages": [{"tag": tag_of(c), "name": NATIVE_NAMES[c]} for c in LANGUAGES],
           "messages": catalogue(code)}
    return json.dumps(doc, ensure_ascii=False, sort_keys=True).encode("utf-8")


@dataclass(frozen=True)
class Lang:
    """One language: its messages and its number, date and time formats.

    ``lang._("Gate {gate} is closed", gate=name)`` translates, then fills placeholders. A
    placeholder missing from the arguments is left as it is (never a crash on a screen).
    """

    code: str = DEFAULT

    @property
    def tag(self) -> str:
        return tag_of(self.code)

    @property
    def locale(self) -> Locale:
        return Locale.parse(self.code)

    def gettext(self, message: str, /, **values: Any) -> str:
        text = translations(self.code).ugettext(message)
        return _fill(text, values) if values else text

    _ = gettext

    def pgettext(self, context: str, message: str, /, **values: Any) -> str:
        text = translations(self.code).upgettext(context, message)
        return _fill(text, values) if values else text

    def ngettext(self, singular: str, plural: str, n: int, /, **values: Any) -> str:
        text = translations(self.code).ungettext(singular, plural, n)
        return _fill(text, {"n": self.number(n), **values})

    def reason(self, code: str) -> str:
        return reason_message(code, self.code)

    def number(self, value: float | int, *, decimals: int | None = None) -> str:
        if decimals is not None:
            pattern = "#,##0" + ("." + "0" * decimals if decimals else "")
            return format_decimal(value, format=pattern, locale=self.code)
        return format_decimal(value, locale=self.code)

    def percent(self, ratio: float) -> str:
        return format_percent(ratio, locale=self.code)

    def clock(self, at: float | datetime, tz: tzinfo | None = None) -> str:
        """A time of day, 24-hour, as this language writes it."""
        return _format_time(_dt(at, tz), format="HH:mm:ss", tzinfo=tz or _dt(at, tz).tzinfo, locale=self.code)

    def when(self, at: float | datetime, tz: tzinfo | None = None) -> str:
        """Date and time, medium length, as this language writes it (``12 мая 2026 г., 18:05:00``)."""
        dt = _dt(at, tz)
        return _format_datetime(dt, format="medium", tzinfo=dt.tzinfo, locale=self.code)


def _dt(at: float | datetime, tz: tzinfo | None) -> datetime:
    dt = at if isinstance(at, datetime) else datetime.fromtimestamp(float(at), tz=UTC)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(tz) if tz is not None else dt


class _Keep(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def _fill(text: str, values: Mapping[str, Any]) -> str:
    try:
        return text.format_map(_Keep(values))
    except (ValueError, IndexError, AttributeError, KeyError) as exc:  # a broken translation: show it raw
        log.warning("message %r could not be filled: %s", text, exc)
        return text


@functools.cache
def get(tag: str | None) -> Lang:
    """The :class:`Lang` for a tag; English for None or an unsupported tag (logged)."""
    code = normalize(tag)
    if code is None:
        if tag:
            log.warning("no catalogue for language %r; using English", tag)
        code = DEFAULT
    return Lang(code)


def from_env(explicit: str | None = None, env: Mapping[str, str] | None = None) -> Lang:
    """The CLI's language: ``--lang``, else ``$GATEHOUSE_LANG``, else ``$LC_ALL``/``$LC_MESSAGES``/
    ``$LANG`` when it names a supported language, else English. An unknown ``--lang`` is an error
    (:class:`UnknownLanguage`); an unknown environment setting falls back to English."""
    if explicit:
        return Lang(require(explicit))
    env = os.environ if env is None else env
    own = env.get(ENV_VAR)
    if own:
        return Lang(require(own))
    for var in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = env.get(var, "")
        if value:
            code = normalize(value.split(".", 1)[0])
            return Lang(code or DEFAULT)
    return Lang(DEFAULT)


def N_(message: str) -> str:
    """Marks a message for the catalogue without translating it (it is translated where shown)."""
    return message


def reason_message(code: str, lang: str = DEFAULT) -> str:
    """The staff message for a stable reason code (a verdict's :class:`~tickets.reasons.Reason`
    or a steward's :class:`~tickets.manifest.ManualRefusal`) in a language: English from the
    domain if the catalogue has none; the code itself if it is unknown."""
    english = _english_reason(code)
    if english is None:
        return code
    if normalize(lang) in (None, DEFAULT):
        return english
    return catalogue(require(lang)).get(f"{REASON_CONTEXT}\x04{code}") or english


def _english_reason(code: str) -> str | None:
    from tickets.manifest import ManualRefusal

    for kind in (Reason, ManualRefusal):
        try:
            return kind(code).message
        except ValueError:
            continue
    return None


def reason_messages(lang: str = DEFAULT) -> dict[str, str]:
    return {r.value: reason_message(r.value, lang) for r in Reason}


def all_languages() -> Iterable[Lang]:
    return (Lang(c) for c in LANGUAGES)


# --- the command line -----------------------------------------------------------------------

_current = Lang(DEFAULT)


def use(lang: Lang) -> Lang:
    """Set the language of this process's command-line messages (``gatehouse --lang``)."""
    global _current
    _current = lang
    return lang


def current() -> Lang:
    return _current


def _(message: str, /, **values: Any) -> str:
    """A command-line message in the language chosen with :func:`use`."""
    return _current.gettext(message, **values)


#: what an operator reads for the hub's most common error codes (msgctxt "error"); the
#: English detail from the hub follows in brackets, so nothing is lost in translation
ERROR_CONTEXT = "error"
ERROR_MESSAGES: Mapping[str, str] = {
    "gate_not_found": N_("No such gate"),
    "zone_not_found": N_("No such zone"),
    "ticket_not_found": N_("No such ticket"),
    "steward_not_found": N_("No such steward"),
    "conflict_not_found": N_("No such conflict"),
    "backup_not_found": N_("No such backup"),
    "already_initialised": N_("This directory already holds a hub"),
    "not_initialised": N_("This directory holds no hub"),
    "already_revoked": N_("Already cancelled"),
    "already_resolved": N_("Already resolved"),
    "gate_revoked": N_("This gate is revoked"),
    "enrolment_expired": N_("The enrolment token has expired"),
    "bad_enrolment_token": N_("The enrolment token is not valid"),
    "bad_kickoff": N_("Kick-off time not understood"),
    "bad_language": N_("No catalogue for that language"),
    "bad_pin": N_("The PIN must be 4 to 12 digits"),
    "pin_mismatch": N_("The two PINs differ"),
    "missing_dir": N_("A directory is needed (--dir)"),
    "missing_out": N_("An output file is needed (--out)"),
    "bad_token": N_("Unknown or revoked token"),
    "role_required": N_("This needs a higher role"),
}


def error_message(code: str, detail: str, lang: Lang | None = None) -> str:
    """An error for an operator: the translated message for its code and the hub's detail."""
    lang = lang or _current
    if code in ERROR_MESSAGES and lang.code != DEFAULT:
        return f"{lang.gettext(ERROR_MESSAGES[code])} ({detail})"
    return detail
