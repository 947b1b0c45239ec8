"""The catalogues: complete, consistent with the sources, and what the pages and CLI get."""
from __future__ import annotations

import json
import re

import pytest

import i18n
from i18n.extract import extract_all
from tickets.manifest import ManualRefusal
from tickets.reasons import Reason

TRANSLATED = ("zh_Hans", "ru", "kk")
_PLACEHOLDER = re.compile(r"\{(\w*)\}")


@pytest.fixture(scope="module")
def template():  # type: ignore[no-untyped-def]
    return extract_all()


def _key(m) -> str:  # type: ignore[no-untyped-def]
    return f"{m.context}\x04{m.id}" if m.context else str(m.id)


@pytest.mark.parametrize("code", TRANSLATED)
def test_every_message_in_the_sources_is_translated(template, code: str) -> None:  # type: ignore[no-untyped-def]
    have = i18n.catalogue(code)
    missing = [_key(m) for m in template if m.id and _key(m) not in have]
    assert not missing, f"{code} lacks {len(missing)} messages (run python -m i18n.extract, then translate): {missing[:10]}"


@pytest.mark.parametrize("code", TRANSLATED)
def test_translations_keep_every_placeholder(code: str) -> None:
    for key, text in i18n.catalogue(code).items():
        msgid = key.split("\x04")[-1]
        assert set(_PLACEHOLDER.findall(text)) == set(_PLACEHOLDER.findall(msgid)), (code, msgid, text)


@pytest.mark.parametrize("code", TRANSLATED)
def test_translations_are_in_their_own_script_not_english_left_in_place(code: str) -> None:
    script = {"zh_Hans": re.compile("[\u4e00-\u9fff]"), "ru": re.compile("[а-яё]", re.I),
              "kk": re.compile("[а-яәғқңөұүһі]", re.I)}[code]
    # words that stay as they are everywhere (acronyms, command names)
    same = {"PIN", "API", "OK"}
    for key, text in i18n.catalogue(code).items():
        msgid = key.split("\x04")[-1]
        if msgid in same or text == msgid == "code":
            continue
        if msgid in {"PIN"}:
            continue
        assert script.search(text) or msgid in same, (code, msgid, text)


def test_kazakh_uses_its_own_letters_not_only_russian_ones() -> None:
    text = " ".join(i18n.catalogue("kk").values())
    for letter in "әғқңөұүі":
        assert letter in text, letter


@pytest.mark.parametrize("code", TRANSLATED)
def test_every_reason_code_and_manual_refusal_has_a_staff_message(code: str) -> None:
    for reason in [*Reason, *ManualRefusal]:
        text = i18n.reason_message(reason.value, code)
        assert text and text != reason.message and text != reason.value, (code, reason)


def test_english_reason_messages_come_from_the_domain_and_unknown_codes_show_as_they_are() -> None:
    assert i18n.reason_message("ALREADY_USED") == Reason.ALREADY_USED.message
    assert i18n.reason_message("SOMETHING_NEW", "ru") == "SOMETHING_NEW"


@pytest.mark.parametrize(("tag", "code"), [("zh-Hans", "zh_Hans"), ("zh_CN", "zh_Hans"), ("zh", "zh_Hans"),
                                           ("ru-RU", "ru"), ("kk-KZ", "kk"), ("KK", "kk"), ("en-GB", "en"),
                                           ("zh-Hant", None), ("zh-TW", None), ("de", None), ("", None)])
def test_language_tags_map_to_a_catalogue_or_to_none(tag: str, code: str | None) -> None:
    assert i18n.normalize(tag) == code


@pytest.mark.parametrize(("header", "code"), [("kk-KZ,ru;q=0.8,en;q=0.5", "kk"), ("de-DE,ru;q=0.7", "ru"),
                                              ("zh-CN,zh;q=0.9", "zh_Hans"), ("fr", "en"), (None, "en"),
                                              ("ru;q=0.2,kk;q=0.9", "kk"), ("zh-TW,ru;q=0.5", "ru")])
def test_the_browser_language_is_negotiated(header: str | None, code: str) -> None:
    assert i18n.negotiate(header) == code


def test_numbers_dates_and_times_are_formatted_per_locale() -> None:
    at = 1_780_000_000.0  # 2026-05-28 20:26:40 UTC
    assert i18n.Lang("en").number(60000) == "60,000"
    assert i18n.Lang("ru").number(60000) == "60\xa0000"
    assert i18n.Lang("kk").number(60000) == "60\xa0000"
    assert i18n.Lang("zh_Hans").number(60000) == "60,000"
    assert "мая 2026" in i18n.Lang("ru").when(at)
    assert "2026年5月28日" in i18n.Lang("zh_Hans").when(at)
    assert i18n.Lang("kk").when(at).startswith("2026\u202fж.")
    assert i18n.Lang("ru").clock(at) == "20:26:40"


def test_a_missing_placeholder_value_stays_visible_instead_of_crashing() -> None:
    assert i18n.Lang("ru")._("Ticket {ticket}") == "Билет {ticket}"
    assert i18n.Lang("ru")._("Ticket {ticket}", other=1) == "Билет {ticket}"


def test_the_pages_get_the_same_catalogue_as_json() -> None:
    doc = json.loads(i18n.catalogue_json("kk"))
    assert doc["lang"] == "kk" and doc["name"] == "Қазақша"
    assert [x["tag"] for x in doc["languages"]] == ["en", "zh-Hans", "ru", "kk"]
    assert doc["messages"]["GO"] == i18n.Lang("kk")._("GO") == "ӨТІҢІЗ"
    assert doc["messages"]["reason\x04ALREADY_USED"] == i18n.reason_message("ALREADY_USED", "kk")


def test_the_cli_language_comes_from_the_flag_then_the_environment_then_the_locale() -> None:
    assert i18n.from_env("ru", env={"GATEHOUSE_LANG": "kk"}).code == "ru"
    assert i18n.from_env(None, env={"GATEHOUSE_LANG": "zh-Hans", "LANG": "ru_RU.UTF-8"}).code == "zh_Hans"
    assert i18n.from_env(None, env={"LANG": "kk_KZ.UTF-8"}).code == "kk"
    assert i18n.from_env(None, env={"LANG": "de_DE.UTF-8"}).code == "en"
    with pytest.raises(i18n.UnknownLanguage, match="zh-Hans"):
        i18n.from_env("xx", env={})


def test_an_error_code_is_translated_and_the_hubs_detail_kept() -> None:
    ru = i18n.Lang("ru")
    assert i18n.error_message("zone_not_found", "unknown zone 'Q'", ru) == "Такой зоны нет (unknown zone 'Q')"
    assert i18n.error_message("zone_not_found", "unknown zone 'Q'", i18n.Lang("en")) == "unknown zone 'Q'"
    assert i18n.error_message("some_new_code", "detail", ru) == "detail"
