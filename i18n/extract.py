"""``python -m i18n.extract``: collect every message from the sources and update the catalogues.

Babel's extractors read the Python code (``_``, ``N_``, ``gettext``, ``ngettext``,
``pgettext``), the Jinja templates of the gate screen and the fan page, and the pages'
JavaScript (``t("…")``); :func:`extract_html` reads the ``data-i18n*`` attributes of the
hub's static pages (:data:`HTML_PAGES`: the dashboard, seats and readiness pages). The reason
codes are added from :mod:`tickets.reasons` (``msgctxt "reason"``, the English message as a
comment for translators). The result is written to
``i18n/gatehouse.pot`` and merged into each language's ``.po`` (translations kept, new
messages empty, messages gone marked obsolete), exactly like ``pybabel update``.

The test suite runs :func:`extract_all` too and fails on any message a language lacks.
"""
from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

from i18n import DOMAIN, LANGUAGES, LOCALE_DIR, REASON_CONTEXT, TEMPLATE, po_path
from tickets.manifest import ManualRefusal
from tickets.reasons import Reason

ROOT = Path(__file__).resolve().parent.parent
POT = TEMPLATE
KEYWORDS = {"_": None, "N_": None, "gettext": None, "ngettext": (1, 2), "pgettext": ((1, "c"), 2)}
#: the pages' scripts call ``t("…")`` (ui/static/i18n.js)
JS_KEYWORDS = {"t": None}
#: the packages whose sources hold messages
SOURCES = ("gatehouse", "gate_agent", "hub", "ui", "tickets", "i18n")
#: the hub's static pages mark their words with data-i18n attributes (not Jinja templates)
HTML_PAGES = ("dashboard", "seats", "readiness")
METHOD_MAP = [
    *((f"ui/templates/{page}.html", "i18n.extract:extract_html") for page in HTML_PAGES),
    ("ui/templates/*.html", "jinja2"),
    *((f"{package}/**.py", "python") for package in SOURCES),
]
JS_METHOD_MAP = [("ui/static/qrcode.js", "ignore"), ("ui/static/*.js", "javascript")]
OPTIONS_MAP = {"ui/templates/*.html": {"extensions": "jinja2.ext.i18n"}}

_ATTR = re.compile(r'data-i18n(?:-[a-z-]+)?="([^"]+)"')


def extract_html(fileobj: IO[bytes], keywords: Any, comment_tags: Any,
                 options: Any) -> Iterator[tuple[int, str, str, list[str]]]:
    """Babel extraction method: the English keys in ``data-i18n``, ``data-i18n-placeholder``,
    ``data-i18n-title`` and ``data-i18n-aria-label`` attributes."""
    for lineno, line in enumerate(fileobj.read().decode("utf-8").splitlines(), start=1):
        for m in _ATTR.finditer(line):
            yield lineno, "", m.group(1).replace("&amp;", "&"), []


def extract_all() -> Catalog:
    """Every message of the project, as a template catalogue."""
    cat = Catalog(domain=DOMAIN, project="gatehouse", msgid_bugs_address="", copyright_holder="gatehouse",
                  charset="utf-8", fuzzy=False)
    for method_map, keywords in ((METHOD_MAP, KEYWORDS), (JS_METHOD_MAP, JS_KEYWORDS)):
        for filename, lineno, message, comments, context in extract_from_dir(
                ROOT, method_map=method_map, options_map=OPTIONS_MAP, keywords=keywords,
                comment_tags=("TRANSLATORS:",), strip_comment_tags=True):
            if not message or (isinstance(message, str) and not message.strip()):
                continue
            cat.add(message, locations=[(filename, lineno)], auto_comments=comments, context=context)
    for reason in Reason:
        cat.add(reason.value, context=REASON_CONTEXT, auto_comments=[f"English: {reason.message}"])
    for refusal in ManualRefusal:
        cat.add(refusal.value, context=REASON_CONTEXT, auto_comments=[f"English: {refusal.message}"])
    return cat


def update(template: Catalog) -> dict[str, int]:
    """Merge ``template`` into every language's catalogue; returns untranslated counts."""
    with POT.open("wb") as f:
        write_po(f, template, width=100, omit_header=False, sort_output=False)
    missing = {}
    for code in LANGUAGES:
        path = po_path(code)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            with path.open("rb") as f:
                cat = read_po(f, locale=code, domain=DOMAIN)
        else:
            cat = Catalog(locale=code, domain=DOMAIN, project="gatehouse", charset="utf-8", fuzzy=False)
        cat.update(template, no_fuzzy_matching=True)
        with path.open("wb") as f:
            write_po(f, cat, width=100, ignore_obsolete=True, include_previous=False)
        missing[code] = sum(1 for m in cat if m.id and not m.string)
    return missing


def main() -> int:
    missing = update(extract_all())
    for code, n in missing.items():
        print(f"{LOCALE_DIR / code}: {n} untranslated", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
