from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tickets.manifest import (
    CODE_ALPHABET,
    CODE_LENGTH,
    ManifestRow,
    ManualRefusal,
    PinHash,
    QueryKind,
    TicketState,
    check_code,
    hash_pin,
    is_check_code,
    make_row,
    number_sort_key,
    page_range,
    paginate,
    parse_typed,
    rows_for_zones,
    sort_rows,
    verify_pin,
    zone_counts,
)

# scrypt at full cost is deliberately slow; the rules do not depend on the cost.
FAST = {"n": 2**10, "r": 8, "p": 1}


def row(number: str, zone: int = 1, status: str = "valid", ticket_id: int | None = None) -> ManifestRow:
    return make_row(7, ticket_id=ticket_id or int("".join(c for c in number if c.isdigit()) or 0),
                    number=number, holder="H", zone_id=zone, zone_name=f"Zone {zone}", seat="", status=status)


def test_check_code_is_four_characters_of_the_unambiguous_alphabet() -> None:
    for i in range(2000):
        code = check_code(2026, str(100_000_000 + i))
        assert len(code) == CODE_LENGTH
        assert set(code) <= set(CODE_ALPHABET)
    assert not set("01OIL U") & set(CODE_ALPHABET)


def test_check_code_is_deterministic_and_depends_on_event_and_number() -> None:
    assert check_code(1, "100000000") == check_code(1, "100000000")
    assert check_code(1, "100000000") != check_code(2, "100000000")
    assert check_code(1, "100000000") != check_code(1, "100000001")


def test_check_code_ignores_how_the_number_was_spaced_or_cased() -> None:
    assert check_code(5, "1000 0001") == check_code(5, "10000001") == check_code(5, "1000-0001")
    assert check_code(5, "ab-12") == check_code(5, "AB12")


def test_check_codes_spread_evenly_enough_that_code_plus_digits_is_unique() -> None:
    numbers = [str(100_000_000 + i) for i in range(60_000)]
    codes = [check_code(2026, n) for n in numbers]
    assert len(set(codes)) > 55_000  # 810,000 codes: a few thousand shared, no clumping
    pairs = {(c, n[-3:]) for c, n in zip(codes, numbers, strict=True)}
    assert len(pairs) > 59_900


def test_adjacent_numbers_differ_in_code_so_a_one_digit_slip_is_caught() -> None:
    for i in range(1000):
        n = 100_000_000 + i
        assert check_code(9, str(n)) != check_code(9, str(n + 1))


@pytest.mark.parametrize(
    ("typed", "kind", "text", "digits"),
    [
        ("K7QX", QueryKind.CODE, "K7QX", ""),
        (" k7qx ", QueryKind.CODE, "K7QX", ""),
        ("K7QX 0049", QueryKind.CODE_DIGITS, "K7QX", "0049"),
        ("k7qx-49", QueryKind.CODE_DIGITS, "K7QX", "49"),
        ("K7QX0049", QueryKind.CODE_DIGITS, "K7QX", "0049"),
        ("100000049", QueryKind.NUMBER, "100000049", ""),
        ("1000 0004 9", QueryKind.NUMBER, "100000049", ""),
        ("1000", QueryKind.NUMBER, "1000", ""),
        ("AB-1234", QueryKind.NUMBER, "AB1234", ""),
        ("Anna  Smith", QueryKind.NAME, "anna smith", ""),
        ("o'connor", QueryKind.NAME, "o'connor", ""),
        ("smith", QueryKind.NAME, "smith", ""),
        ("", QueryKind.EMPTY, "", ""),
        ("   ", QueryKind.EMPTY, "", ""),
        ("K0QX", QueryKind.NUMBER, "K0QX", ""),  # 0 is not in the code alphabet: not a code
    ],
)
def test_parse_typed_classifies_what_a_steward_keys_in(typed: str, kind: QueryKind, text: str, digits: str) -> None:
    q = parse_typed(typed)
    assert (q.kind, q.text, q.digits) == (kind, text, digits)


def test_is_check_code_refuses_ambiguous_letters() -> None:
    assert is_check_code("k7qx")
    assert not is_check_code("K7Q0")
    assert not is_check_code("K7QXX")


def test_sort_rows_orders_numbers_naturally_not_as_text() -> None:
    rows = [row("100"), row("99"), row("A10", ticket_id=3), row("A9", ticket_id=4), row("1000")]
    assert [r.number for r in sort_rows(rows)] == ["99", "100", "1000", "A9", "A10"]


@given(st.lists(st.integers(min_value=0, max_value=10**12), max_size=50))
def test_sort_rows_of_plain_numbers_is_numeric_order(values: list[int]) -> None:
    rows = [row(str(v), ticket_id=i + 1) for i, v in enumerate(values)]
    assert [int(r.number) for r in sort_rows(rows)] == sorted(values)


@given(st.text(alphabet="AB12 -", max_size=12), st.text(alphabet="AB12 -", max_size=12))
def test_number_sort_key_never_fails_on_mixed_numbers(a: str, b: str) -> None:
    assert isinstance(number_sort_key(a) < number_sort_key(b), bool)


def test_zone_counts_separate_tickets_that_may_enter_from_cancelled_ones() -> None:
    rows = [row("1", 1), row("2", 1), row("3", 1, "revoked"), row("4", 2, "superseded"), row("5", 2)]
    counts = {c.zone_id: c for c in zone_counts(rows)}
    assert (counts[1].valid, counts[1].not_admissible, counts[1].total) == (2, 1, 3)
    assert (counts[2].valid, counts[2].not_admissible) == (1, 1)
    assert counts[1].zone_name == "Zone 1"


def test_rows_for_zones_keeps_only_the_gates_zones() -> None:
    rows = [row("1", 1), row("2", 2), row("3", 3)]
    assert [r.number for r in rows_for_zones(rows, [1, 3])] == ["1", "3"]


def test_paginate_and_page_range_give_phone_book_headers() -> None:
    rows = sort_rows(row(str(100 + i)) for i in range(10))
    pages = paginate(rows, 4)
    assert [len(p) for p in pages] == [4, 4, 2]
    assert page_range(pages[0]) == "100 - 103"
    assert page_range(pages[2]) == "108 - 109"
    assert page_range([]) == ""
    with pytest.raises(ValueError):
        paginate(rows, 0)


def test_status_is_printed_in_words_and_only_valid_tickets_are_admissible() -> None:
    assert row("1").admissible
    assert not row("1", status="revoked").admissible
    assert TicketState.REVOKED.printed == "CANCELLED"
    assert TicketState.SUPERSEDED.printed == "REPLACED"
    with pytest.raises(ValueError):
        row("1", status="maybe")


def test_manifest_row_round_trips_through_the_wire() -> None:
    r = make_row(3, ticket_id=9, number="A-9", holder="Zoë", zone_id=2, zone_name="North", seat="R1 S2",
                 status="superseded")
    assert ManifestRow.from_wire(r.to_wire()) == r


@pytest.mark.parametrize(
    "bad",
    [
        {"ticket_id": "9", "number": "1", "check_code": "AAAA", "zone_id": 1},
        {"ticket_id": True, "number": "1", "check_code": "AAAA", "zone_id": 1},
        {"ticket_id": 9, "number": "", "check_code": "AAAA", "zone_id": 1},
        {"ticket_id": 9, "number": "1", "check_code": "AAAA", "zone_id": None},
        {"ticket_id": 9, "number": "1", "check_code": "AAAA", "zone_id": 1, "status": "maybe"},
        {"number": "1"},
    ],
)
def test_manifest_row_from_wire_refuses_bad_input(bad: dict[str, object]) -> None:
    with pytest.raises((ValueError, KeyError, TypeError)):
        ManifestRow.from_wire(bad)


def test_pin_hash_verifies_the_right_pin_only_and_never_holds_it() -> None:
    h = hash_pin("4821", **FAST)
    assert verify_pin("4821", h)
    assert not verify_pin("4822", h)
    assert not verify_pin("", h)
    assert not verify_pin("48a1", h)
    assert b"4821" not in h.salt + h.digest
    assert "4821" not in repr(h.to_wire())


def test_same_pin_of_two_stewards_hashes_differently_per_salt() -> None:
    a, b = hash_pin("1234", **FAST), hash_pin("1234", **FAST)
    assert a.salt != b.salt and a.digest != b.digest


def test_pin_hash_round_trips_through_the_wire_with_its_cost_parameters() -> None:
    h = hash_pin("987654", **FAST)
    back = PinHash.from_wire(h.to_wire())
    assert back == h and back.n == 2**10
    assert verify_pin("987654", back)
    with pytest.raises(ValueError):
        PinHash.from_wire({**h.to_wire(), "n": 0})


@pytest.mark.parametrize("pin", ["123", "1234567890123", "12a4", "١٢٣٤", ""])
def test_hash_pin_refuses_what_a_keypad_cannot_type(pin: str) -> None:
    with pytest.raises(ValueError):
        hash_pin(pin, **FAST)


def test_manual_refusals_have_messages_for_staff() -> None:
    for refusal in ManualRefusal:
        assert refusal.message
        assert refusal.value == refusal.name
