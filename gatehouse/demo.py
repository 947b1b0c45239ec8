"""``gatehouse demo``: a whole venue on one machine.

Until the hub and gate agents exist this demonstrates the decision core: it creates an
event key, issues tickets and shows how a gate decides a stream of scans.
"""
from __future__ import annotations

import argparse
import time

from tickets import credential
from tickets.decide import decide
from tickets.keys import KeyRing, generate_key
from tickets.model import EntryState, GatePolicy, Scan, TicketRecord, Zone
from tickets.policy import EntryPolicy, record_passage


def register(parser: argparse.ArgumentParser) -> None:
    parser.set_defaults(func=run)


class _DictView:
    def __init__(self) -> None:
        self.by_id: dict[int, TicketRecord] = {}
        self.states: dict[int, EntryState] = {}

    def ticket_by_id(self, ticket_id: int) -> TicketRecord | None:
        return self.by_id.get(ticket_id)

    def ticket_by_number(self, number: str) -> TicketRecord | None:
        return next((r for r in self.by_id.values() if r.number == number), None)

    def entry_state(self, ticket_id: int) -> EntryState:
        return self.states.get(ticket_id, EntryState())


def run(_args: argparse.Namespace) -> int:
    now = time.time()
    key = generate_key(1)
    policy = GatePolicy(
        gate_id="north-1", event_id=7, keyring=KeyRing([key.verify_key]),
        zones={1: Zone(1, "North stand", frozenset({"north-1"})), 2: Zone(2, "South stand", frozenset({"south-1"}))},
        entry_policies={1: EntryPolicy.preset(1, "single")},
    )
    view = _DictView()
    for tid, zone in ((1001, 1), (1002, 2)):
        view.by_id[tid] = TicketRecord(tid, f"T{tid}", zone, 1, now - 3600, now + 3600)
    codes = [credential.issue(key, credential.CredentialFields(1, 7, tid, view.by_id[tid].zone_id, 1, int(now) - 3600, int(now) + 3600))
             for tid in (1001, 1002)]
    stream = [codes[0], codes[0], codes[1], "T1001", "NOPE-42", codes[0][:-3] + "AAA", "\x00\xff"]
    print("gatehouse demo — gate north-1 deciding scans:\n")
    for text in stream:
        verdict = decide(Scan(text.encode("latin-1"), "qrcode"), view, policy, now)
        print(f"  {text[:28]:<30} {verdict.reason:<14} {verdict.message}")
        if verdict.admitted and verdict.ticket_id is not None:
            view.states[verdict.ticket_id] = record_passage(view.entry_state(verdict.ticket_id), verdict.direction, now)
    return 0
