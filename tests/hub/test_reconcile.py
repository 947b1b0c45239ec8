from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from hub.reconcile import (
    Conflict,
    ConflictKind,
    PaperTick,
    admissions,
    bulk_ticks,
    dedupe,
    find_conflicts,
    paper_gate_id,
)
from tickets.entry import EntryKind, JournalEntry, Passage
from tickets.manifest import make_row
from tickets.policy import EntryPolicy

T0 = 1_780_000_000.0
SINGLE = EntryPolicy.preset(1, "single")
REENTRY = EntryPolicy.preset(2, "reentry")
UNLIMITED = EntryPolicy.preset(3, "unlimited")
SOFT = EntryPolicy.preset(4, "passback_soft")
TIMED = EntryPolicy.preset(5, "passback_timed", wait_s=600)
HARD = EntryPolicy.preset(6, "passback_hard")
REENTRY_MAX2 = EntryPolicy.preset(7, "reentry", max_entries=2)


def scan(gate: str, seq: int, dt: float, tid: int | None = 1, *, reason: str = "ADMIT", direction: str = "in",
         number: str | None = "N1", nonce: str | None = None) -> JournalEntry:
    extra = {"nonce": nonce} if nonce else {}
    return JournalEntry(gate_id=gate, seq=seq, at=T0 + dt, kind=EntryKind.SCAN, reason=reason, ticket_id=tid,
                        ticket_number=number, direction=direction,
                        passage=Passage.PENDING if reason.startswith("ADMIT") else Passage.NONE, **extra)


def manual(gate: str, seq: int, dt: float, tid: int | None = 1, *, number: str | None = "N1",
           reason: str = "ADMIT", staff: str = "S1") -> JournalEntry:
    return JournalEntry(gate_id=gate, seq=seq, at=T0 + dt, kind=EntryKind.MANUAL, reason=reason, ticket_id=tid,
                        ticket_number=number, mode="MANIFEST", staff_id=staff, detail="cause: schema_mismatch")


def passage(gate: str, seq: int, dt: float, ref: int, outcome: Passage) -> JournalEntry:
    return JournalEntry(gate_id=gate, seq=seq, at=T0 + dt, kind=EntryKind.PASSAGE, reason="ADMIT", ticket_id=1,
                        passage=outcome, ref_seq=ref)


@dataclass
class Case:
    name: str
    entries: list[JournalEntry]
    policy: EntryPolicy | None = SINGLE
    #: expected conflicts as (kind, (gate, seq) of first, (gate, seq) of second, words in the rule)
    expected: list[tuple[ConflictKind, tuple[str, int], tuple[str, int], str]] = field(default_factory=list)
    number_to_id: dict[str, int] | None = None


CASES = [
    Case("scan+scan at two gates in a partition", [scan("G1", 1, 0), scan("G2", 1, 5)],
         expected=[(ConflictKind.SCAN_SCAN, ("G1", 1), ("G2", 1), "single")]),
    Case("manual at one gate then scan at another", [manual("G1", 1, 0), scan("G2", 1, 5)],
         expected=[(ConflictKind.MANUAL_SCAN, ("G1", 1), ("G2", 1), "single")]),
    Case("scan first then manual elsewhere", [scan("G2", 3, 0), manual("G1", 9, 5)],
         expected=[(ConflictKind.MANUAL_SCAN, ("G2", 3), ("G1", 9), "single")]),
    Case("manual+manual at two gates", [manual("G1", 1, 10), manual("G2", 4, 3)],
         expected=[(ConflictKind.MANUAL_MANUAL, ("G2", 4), ("G1", 1), "single")]),
    Case("three admits give two conflicts, both against the first",
         [scan("G1", 1, 0), scan("G2", 1, 5), manual("G3", 1, 9)],
         expected=[(ConflictKind.SCAN_SCAN, ("G1", 1), ("G2", 1), "single"),
                   (ConflictKind.MANUAL_SCAN, ("G1", 1), ("G3", 1), "single")]),
    Case("fan who never passed leaves the ticket valid",
         [scan("G1", 1, 0), passage("G1", 2, 8, 1, Passage.NOT_PASSED), scan("G2", 1, 20)]),
    Case("a confirmed passage still counts", [scan("G1", 1, 0), passage("G1", 2, 2, 1, Passage.PASSED),
                                               scan("G2", 1, 20)],
         expected=[(ConflictKind.SCAN_SCAN, ("G1", 1), ("G2", 1), "single")]),
    Case("a not-passed at another gate with the same seq cancels nothing here",
         [scan("G1", 1, 0), passage("G2", 2, 8, 1, Passage.NOT_PASSED), scan("G2", 5, 20)],
         expected=[(ConflictKind.SCAN_SCAN, ("G1", 1), ("G2", 5), "single")]),
    Case("refusals are not admissions", [scan("G1", 1, 0), scan("G2", 1, 5, reason="ALREADY_USED"),
                                         manual("G3", 1, 6, reason="PIN_REFUSED")]),
    Case("admit on signature counts", [scan("G1", 1, 0, reason="ADMIT_ON_SIGNATURE"), scan("G2", 1, 5)],
         expected=[(ConflictKind.SCAN_SCAN, ("G1", 1), ("G2", 1), "single")]),
    Case("an exit is not a second entry", [scan("G1", 1, 0), scan("G1", 2, 50, direction="out")]),
    Case("different tickets never conflict", [scan("G1", 1, 0, tid=1), scan("G2", 1, 5, tid=2, number="N2")]),
    Case("same-gate double admit is still reported", [manual("G1", 1, 0), manual("G1", 2, 5)],
         expected=[(ConflictKind.MANUAL_MANUAL, ("G1", 1), ("G1", 2), "single")]),
    Case("reentry after an exit is fine", [scan("G1", 1, 0), scan("G1", 2, 60, direction="out"),
                                           scan("G2", 1, 120)], policy=REENTRY),
    Case("reentry without an exit is a conflict", [scan("G1", 1, 0), scan("G2", 1, 120)], policy=REENTRY,
         expected=[(ConflictKind.SCAN_SCAN, ("G1", 1), ("G2", 1), "inside")]),
    Case("max entries caps reentry", [scan("G1", 1, 0), scan("G1", 2, 10, direction="out"), manual("G2", 1, 20),
                                      scan("G2", 2, 30, direction="out"), scan("G3", 1, 40)],
         policy=REENTRY_MAX2, expected=[(ConflictKind.MANUAL_SCAN, ("G2", 1), ("G3", 1), "at most 2")]),
    Case("unlimited allows anything", [scan("G1", 1, 0), scan("G2", 1, 1), manual("G3", 1, 2)], policy=UNLIMITED),
    Case("soft passback only flags at the gate", [scan("G1", 1, 0), scan("G2", 1, 1)], policy=SOFT),
    Case("hard passback refuses while inside", [scan("G1", 1, 0), scan("G2", 1, 1)], policy=HARD,
         expected=[(ConflictKind.SCAN_SCAN, ("G1", 1), ("G2", 1), "inside")]),
    Case("timed passback: too soon is a conflict, later is fine",
         [scan("G1", 1, 0), scan("G2", 1, 100), scan("G2", 2, 700)], policy=TIMED,
         expected=[(ConflictKind.SCAN_SCAN, ("G1", 1), ("G2", 1), "600 s")]),
    Case("unknown policy is judged as single entry", [scan("G1", 1, 0), scan("G2", 1, 5)], policy=None,
         expected=[(ConflictKind.SCAN_SCAN, ("G1", 1), ("G2", 1), "single")]),
    Case("override by number joins the ticket through a scan carrying both",
         [scan("G1", 1, 0, tid=1, number="100-001"), manual("G2", 1, 5, tid=None, number="100001")],
         expected=[(ConflictKind.MANUAL_SCAN, ("G1", 1), ("G2", 1), "single")]),
    Case("override by number joins the ticket through the hub's number index",
         [scan("G1", 1, 0, tid=1, number=None), manual("G2", 1, 5, tid=None, number="N1")],
         number_to_id={"N1": 1}, expected=[(ConflictKind.MANUAL_SCAN, ("G1", 1), ("G2", 1), "single")]),
    Case("two overrides of an unknown number conflict with each other",
         [manual("G1", 1, 0, tid=None, number="999"), manual("G2", 1, 5, tid=None, number="999")],
         expected=[(ConflictKind.MANUAL_MANUAL, ("G1", 1), ("G2", 1), "single")]),
    Case("a re-sent entry is one admission", [scan("G1", 1, 0, nonce="aa"), scan("G1", 1, 0, nonce="aa")]),
    Case("an admit naming no ticket cannot conflict", [manual("G1", 1, 0, tid=None, number=None),
                                                        manual("G2", 1, 5, tid=None, number=None)]),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_reconcile_reports_exactly_the_admissions_the_policy_forbids(case: Case) -> None:
    policies = {1: case.policy} if case.policy is not None else {}
    conflicts = find_conflicts(case.entries, policies, number_to_id=case.number_to_id)
    got = [(c.kind, (c.first.gate_id, c.first.seq), (c.second.gate_id, c.second.seq)) for c in conflicts]
    assert got == [(k, a, b) for k, a, b, _ in case.expected]
    for c, (_k, _a, _b, words) in zip(conflicts, case.expected, strict=True):
        assert words in c.rule
        assert c.policy == (case.policy or SINGLE).name


def test_conflict_holds_both_entries_for_the_supervisor() -> None:
    a, b = manual("G1", 1, 0, staff="S7"), scan("G2", 4, 30)
    (c,) = find_conflicts([b, a], {1: SINGLE})
    assert isinstance(c, Conflict)
    assert c.first == a and c.second == b
    assert (c.ticket_id, c.ticket_number, c.gates, c.same_gate) == (1, "N1", ("G1", "G2"), False)
    assert c.first.staff_id == "S7" and c.first.mode == "MANIFEST"
    assert c.key == ("G1", 1, "G2", 4)


def test_policy_may_be_given_as_a_function() -> None:
    entries = [scan("G1", 1, 0), scan("G2", 1, 5)]
    assert find_conflicts(entries, lambda tid: UNLIMITED) == []
    assert len(find_conflicts(entries, lambda tid: None)) == 1


def test_conflicts_come_out_in_time_order_of_the_forbidden_admission() -> None:
    entries = [scan("G1", 1, 100, tid=2, number="N2"), scan("G2", 1, 110, tid=2, number="N2"),
               scan("G1", 2, 0, tid=1), scan("G2", 2, 50, tid=1)]
    conflicts = find_conflicts(entries, {})
    assert [c.second.at - T0 for c in conflicts] == [50, 110]


def test_reconcile_is_independent_of_arrival_order() -> None:
    entries = [scan("G1", 1, 0), manual("G2", 1, 5), scan("G3", 1, 9), passage("G1", 2, 3, 1, Passage.PASSED)]
    expected = find_conflicts(entries, {1: SINGLE})
    for rotated in (entries[1:] + entries[:1], list(reversed(entries))):
        assert find_conflicts(rotated, {1: SINGLE}) == expected


def test_dedupe_drops_resends_and_reports_reused_seqs() -> None:
    a = scan("G1", 1, 0, nonce="n1")
    d = dedupe([a, a, scan("G1", 1, 0, nonce="n1"), scan("G1", 1, 3, nonce="n2"), scan("G1", 2, 4)])
    assert [(e.gate_id, e.seq) for e in d.entries] == [("G1", 1), ("G1", 2)]
    assert d.replays == 2
    assert len(d.clashes) == 1 and d.clashes[0][0] == a and d.clashes[0][1].nonce == "n2"


def test_admissions_lists_passes_in_time_order() -> None:
    entries = [scan("G2", 1, 9), scan("G1", 1, 0, reason="REVOKED"), manual("G1", 2, 3),
               passage("G1", 3, 4, 2, Passage.NOT_PASSED), scan("G1", 4, 5, direction="out")]
    assert [(e.gate_id, e.seq) for e in admissions(entries)] == [("G1", 4), ("G2", 1)]


# --- bulk paper ticks ------------------------------------------------------------------------

def row(i: int, status: str = "valid") -> object:
    return make_row(2026, ticket_id=i, number=f"10000{i:04d}", holder=f"H{i}", zone_id=1, zone_name="East",
                    seat="", status=status)


def test_bulk_ticks_become_manual_entries_recording_who_entered_them() -> None:
    entries = bulk_ticks([row(1), PaperTick(row(2), at=T0 - 600, steward_id="S4")], "supervisor.kim", gate_id="G3",
                         first_seq=40, entered_at=T0, manifest_hub_seq=812)
    assert [(e.gate_id, e.seq) for e in entries] == [(paper_gate_id("G3"), 40), (paper_gate_id("G3"), 41)]
    first, second = entries
    assert first.kind is EntryKind.MANUAL and first.reason == "ADMIT" and first.admitted
    assert (first.ticket_id, first.ticket_number, first.zone_id, first.raw) == (1, "100000001", 1, b"100000001")
    assert first.staff_id == "supervisor.kim" and first.mode == "MANIFEST"
    assert "gate G3" in first.detail and "hub seq 812" in first.detail and "entered by supervisor.kim" in first.detail
    assert "admission time unknown" in first.detail and first.at == T0
    assert second.at == T0 - 600 and "steward S4" in second.detail
    assert JournalEntry.from_wire(first.to_wire()) == first


def test_bulk_ticks_skip_tickets_already_admitted_by_hand_and_lines_ticked_twice() -> None:
    on_screen = manual("G3", 7, 0, tid=1, number="100000001")
    keyed_before = bulk_ticks([row(2)], "kim", gate_id="G3", first_seq=1, entered_at=T0)
    scanned_elsewhere = scan("G1", 1, 0, tid=3, number="100000003")
    refused_here = manual("G3", 8, 0, tid=4, number="100000004", reason="PIN_REFUSED")
    entries = bulk_ticks([row(1), row(2), row(3), row(3), row(4)], "kim", gate_id="G3", first_seq=2,
                         entered_at=T0, existing=[on_screen, *keyed_before, scanned_elsewhere, refused_here])
    assert [e.ticket_id for e in entries] == [3, 4]
    assert [e.seq for e in entries] == [2, 3]


def test_a_paper_tick_of_a_ticket_scanned_elsewhere_is_a_conflict() -> None:
    (paper,) = bulk_ticks([PaperTick(row(5), at=T0 + 100)], "kim", gate_id="G3", first_seq=1, entered_at=T0 + 9000)
    (c,) = find_conflicts([scan("G1", 1, 0, tid=5, number="100000005"), paper], {5: SINGLE})
    assert c.kind is ConflictKind.MANUAL_SCAN and c.second == paper


def test_a_paper_tick_of_a_cancelled_ticket_is_recorded_and_says_so() -> None:
    (e,) = bulk_ticks([row(6, "revoked")], "kim", gate_id="G3", first_seq=1, entered_at=T0)
    assert "ticket was revoked" in e.detail


@pytest.mark.parametrize(("kwargs", "words"), [({"entered_by": " "}, "entered_by"),
                                               ({"gate_id": ""}, "gate_id"), ({"first_seq": 0}, "first_seq")])
def test_bulk_ticks_refuse_anonymous_or_malformed_input(kwargs: dict[str, object], words: str) -> None:
    args: dict[str, object] = {"entered_by": "kim", "gate_id": "G3", "first_seq": 1, "entered_at": T0}
    args.update(kwargs)
    entered_by = args.pop("entered_by")
    with pytest.raises(ValueError, match=words):
        bulk_ticks([row(1)], entered_by, **args)  # type: ignore[arg-type]
