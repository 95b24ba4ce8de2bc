"""Message catalogues: every word the code and templates mark has its Chinese translation,
placeholders survive translation, and the catalogues are read at run time."""

from __future__ import annotations

import re
from pathlib import Path

import jinja2
import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from linectl import i18n

REPO = Path(__file__).resolve().parent.parent
KEYWORDS = {"_": None, "gettext": None, "N_": None}


def extracted() -> set[str]:
    """The msgids `pybabel extract -F babel.cfg -k N_` finds, as the README says to run it."""
    with (REPO / "babel.cfg").open() as f:
        method_map, options_map = parse_mapping_cfg(f)
    found = set()
    for _file, _line, msg, _comments, _ctx in extract_from_dir(
        str(REPO), method_map, options_map, keywords=KEYWORDS
    ):
        found.add(msg if isinstance(msg, str) else msg[0])
    return found


def catalogue(lang: str) -> dict[str, str]:
    with i18n.catalogue_path(lang).open("rb") as f:
        cat = read_po(f)
    return {m.id: m.string for m in cat if m.id and isinstance(m.id, str)}


def test_every_marked_msgid_is_in_both_catalogues_and_translated_to_chinese() -> None:
    ids = extracted()
    assert len(ids) > 150  # the report's words at least
    zh, en = catalogue("zh"), catalogue("en")
    assert not ids - set(zh), f"not in zh_CN: {sorted(ids - set(zh))}"
    assert not ids - set(en), f"not in en: {sorted(ids - set(en))}"
    assert not [i for i in ids if not zh[i]], "untranslated in zh_CN"
    assert not set(zh) - ids, f"stale in zh_CN: {sorted(set(zh) - ids)}"


def test_placeholders_survive_translation() -> None:
    for msgid, msgstr in catalogue("zh").items():
        assert sorted(re.findall(r"%\(\w+\)s", msgid)) == sorted(
            re.findall(r"%\(\w+\)s", msgstr)
        ), msgid


def test_translators_and_the_jinja_hook() -> None:
    zh, en = i18n.translator("zh"), i18n.translator("en")
    assert zh.gettext("Pass") == "合格" and en.gettext("Pass") == "Pass"
    assert zh.gettext("a msgid nobody wrote") == "a msgid nobody wrote"
    env = jinja2.Environment(extensions=["jinja2.ext.i18n"], autoescape=True)
    i18n.install(env, "zh")
    out = env.from_string('{{ _("Axle %(n)s service brake", n=2) }} {{ _("Fail") }}').render()
    assert out == "第2轴行车制动 不合格"
    with pytest.raises(i18n.UnknownLanguage):
        i18n.translator("fr")
