"""UI languages: gettext message catalogues, read at run time, for code and templates.

Every string a person reads in the report (and later the console) is an
English msgid marked in code with `N_()` or in a template with `_()`; its
translation lives in linectl/locale/<locale>/LC_MESSAGES/linectl.po. The .po
files are read with Babel's pofile reader when a language is first asked
for: there is no compile step and no .mo file in the repository. English is
the identity (its catalogue holds the msgids with empty translations, as
gettext's source language does), Simplified Chinese the default.

`translator(lang)` gives a `gettext.NullTranslations` for code;
`install(env, lang)` hands the same one to a Jinja2 environment that loads
`jinja2.ext.i18n`, so templates say `{{ _("Overall verdict") }}`.
"""

from __future__ import annotations

import gettext
from functools import cache
from pathlib import Path
from typing import Literal

import jinja2
from babel.messages.pofile import read_po

DOMAIN = "linectl"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"

Lang = Literal["zh", "en"]
DEFAULT_LANG: Lang = "zh"
# The short names the command line and the API take, and the catalogue each reads.
LOCALES: dict[str, str] = {"zh": "zh_CN", "en": "en"}
# The HTML lang attribute of each.
HTML_LANG: dict[str, str] = {"zh": "zh-CN", "en": "en"}


class UnknownLanguage(ValueError):
    """Not one of LOCALES; `str()` names the ones there are."""

    def __init__(self, lang: str) -> None:
        super().__init__(f"unknown language {lang!r}: use one of {', '.join(LOCALES)}")


def N_(message: str) -> str:
    """Mark `message` for the catalogue without translating it (translated where shown)."""
    return message


class CatalogTranslations(gettext.NullTranslations):
    """gettext's interface over a Babel catalogue; untranslated and fuzzy
    messages fall back to the msgid, as gettext does."""

    def __init__(self, messages: dict[str, str], plurals: dict[str, tuple[str, ...]]) -> None:
        super().__init__()
        self._messages = messages
        self._plurals = plurals

    def gettext(self, message: str) -> str:
        return self._messages.get(message) or message

    def ngettext(self, msgid1: str, msgid2: str, n: int) -> str:
        forms = self._plurals.get(msgid1)
        if forms:
            # The two catalogues here: zh_CN has one form, en two (n != 1).
            return forms[0] if len(forms) == 1 or n == 1 else forms[1]
        return msgid1 if n == 1 else msgid2

    def pgettext(self, context: str, message: str) -> str:
        return self._messages.get(f"{context}\x04{message}") or message

    def npgettext(self, context: str, msgid1: str, msgid2: str, n: int) -> str:
        return self.ngettext(msgid1, msgid2, n)

    def __contains__(self, message: str) -> bool:
        return bool(self._messages.get(message))


def catalogue_path(lang: str) -> Path:
    if lang not in LOCALES:
        raise UnknownLanguage(lang)
    return LOCALE_DIR / LOCALES[lang] / "LC_MESSAGES" / f"{DOMAIN}.po"


@cache
def translator(lang: str = DEFAULT_LANG) -> CatalogTranslations:
    """The translations of `lang` ("zh" or "en"), read once from its .po file."""
    path = catalogue_path(lang)
    with path.open("rb") as f:
        catalog = read_po(f, locale=LOCALES[lang], domain=DOMAIN)
    messages: dict[str, str] = {}
    plurals: dict[str, tuple[str, ...]] = {}
    for m in catalog:
        if not m.id or m.fuzzy:
            continue
        if isinstance(m.id, tuple):
            forms = tuple(s for s in m.string if s) if isinstance(m.string, tuple) else ()
            if forms:
                plurals[m.id[0]] = forms
            continue
        key = m.id if not m.context else f"{m.context}\x04{m.id}"
        if m.string:
            messages[key] = str(m.string)
    return CatalogTranslations(messages, plurals)


def install(env: jinja2.Environment, lang: str = DEFAULT_LANG) -> None:
    """Give `env` (made with extensions=["jinja2.ext.i18n"]) the translations of `lang`."""
    env.install_gettext_translations(translator(lang), newstyle=True)  # type: ignore[attr-defined]
