"""The manual-admit rules, table by table: each row one situation a steward meets."""
from __future__ import annotations

import pytest

from tickets import manual
from tickets.manifest import (
    ManifestRow,
    ManualRefusal,
    QueryKind,
    TicketState,
    TypedQuery,
    parse_typed,
)
from tickets.reasons import Reason


def row(number: str = "N0042", status: str = TicketState.VALID) -> ManifestRow:
    return ManifestRow(42, number, "K7QX", "Ada Lovelace", 1, "North", "A-1-1", status)


def cand(status: str = TicketState.VALID, ticked_by: str | None = None) -> manual.Candidate:
    return manual.Candidate(row(status=status), "number", ticked_by, 100.0 if ticked_by else None,
                            7 if ticked_by else None)


NUMBER = TypedQuery(QueryKind.NUMBER, "N0042")


@pytest.mark.parametrize(("mode", "refused"), [
    ("ONLINE", False), ("OFFLINE", False), ("MANIFEST", False), ("EMERGENCY", True), ("CLOSED", True)])
def test_a_closed_gate_or_one_in_emergency_admits_nobody_by_hand(mode: str, refused: bool) -> None:
    d = manual.refused_by_mode(mode)
    assert (d is not None) == refused
    if d is not None:
        assert d.reason == Reason.GATE_CLOSED and not d.admit


@pytest.mark.parametrize("code", [ManualRefusal.PIN_REFUSED, ManualRefusal.STEWARD_LOCKED])
def test_a_refused_pin_is_refused_with_the_stewards_code(code: ManualRefusal) -> None:
    d = manual.refused_pin(code, "wrong PIN (1 of 5)")
    assert not d.admit and d.reason == code and d.message == code.message


@pytest.mark.parametrize(("typed", "refused"), [
    ("", True), ("ada lovelace", True), ("N0042", False), ("K7QX", False), ("K7QX 0042", False)])
def test_only_a_number_or_a_check_code_may_admit_a_name_only_lists_candidates(typed: str, refused: bool) -> None:
    d = manual.refused_query(parse_typed(typed), [row()])
    assert (d is not None) == refused
    if d is not None:
        assert d.reason == Reason.MALFORMED
        assert d.candidates == ((row(),) if typed else ())


@pytest.mark.parametrize(("matches", "reason", "admit"), [
    ([cand()], Reason.ADMIT, True),
    ([cand(TicketState.REVOKED)], Reason.REVOKED, False),
    ([cand(TicketState.SUPERSEDED)], Reason.SUPERSEDED, False),
    ([cand(ticked_by="sam")], Reason.ALREADY_USED, False),
    ([cand(), cand()], ManualRefusal.AMBIGUOUS, False),
    ([], Reason.UNKNOWN, False),
])
def test_the_manifest_rows_that_matched_decide(matches: list[manual.Candidate], reason: str, admit: bool) -> None:
    d = manual.judge(NUMBER, matches)
    assert (d.reason, d.admit) == (reason, admit)
    if admit:
        assert d.row == row() and not d.override


@pytest.mark.parametrize(("query", "note", "ticked", "reason", "admit"), [
    (NUMBER, "sold at the box office at 14:02", False, Reason.ADMIT, True),
    (NUMBER, "   ", False, ManualRefusal.NOTE_REQUIRED, False),
    (TypedQuery(QueryKind.CODE, "K7QX"), "box office", False, Reason.UNKNOWN, False),
    (NUMBER, "box office", True, Reason.ALREADY_USED, False),
])
def test_an_override_needs_a_note_a_full_number_and_no_earlier_override(
        query: TypedQuery, note: str, ticked: bool, reason: str, admit: bool) -> None:
    tick = manual.Candidate(row(), "number", "sam", 1.0, 3) if ticked else None
    d = manual.judge(query, [], override=True, note=note, override_tick=tick)
    assert (d.reason, d.admit, d.override) == (reason, admit, admit)


def test_not_on_the_manifest_says_whether_any_manifest_was_received() -> None:
    assert manual.judge(NUMBER, [], manifest_received=False).detail.endswith("no manifest received yet")
    assert manual.judge(NUMBER, [], manifest_received=True).detail == "not on manifest"
