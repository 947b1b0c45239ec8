"""Seat mismatches, decided without I/O: double-sold seats and zones sold over capacity.

The hub reads who holds which seat and asks these functions; the import, the re-seating
check (on the state a move file *would* leave), the seats page and the readiness report all
use the same rules, so they never disagree about what counts as double-sold:

* two or more **valid** tickets of one zone whose seats are the same place are a clash;
  a ticket without a seat (standing) never clashes;
* seat labels are compared as people read them: surrounding and repeated spaces and letter
  case are ignored (``"a 12"`` is ``"A  12"``) — a seller's export and a hand-typed move file
  must not hide a double sale behind a space;
* a zone marked *shared seats* (standing, benches, boxes) has no clashes at all;
* a zone with a capacity and more valid tickets than it is over capacity.
"""
from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass


def seat_key(seat: str) -> str:
    """The place a seat label names: spaces collapsed, case folded (``""`` for no seat)."""
    return " ".join(seat.split()).casefold()


@dataclass(frozen=True, slots=True)
class Holding:
    """One valid ticket on one seat."""

    ticket_id: int
    number: str
    zone_id: int
    seat: str


@dataclass(frozen=True, slots=True)
class SeatClash:
    """A seat held by more than one valid ticket: ``tickets`` ordered by ticket id."""

    zone_id: int
    seat: str
    tickets: tuple[Holding, ...]

    @property
    def key(self) -> str:
        """A stable name for this clash (readiness waivers and the page refer to it)."""
        return f"{self.zone_id}:{seat_key(self.seat)}"


@dataclass(frozen=True, slots=True)
class OverCapacity:
    zone_id: int
    capacity: int
    tickets: int

    @property
    def excess(self) -> int:
        return self.tickets - self.capacity


def double_sold(holdings: Iterable[Holding], shared_zones: Collection[int] = ()) -> list[SeatClash]:
    """Every seat held by two or more of ``holdings``, ordered by zone and seat.

    Holdings without a seat and holdings in ``shared_zones`` never clash.
    """
    by_place: dict[tuple[int, str], list[Holding]] = {}
    for h in holdings:
        key = seat_key(h.seat)
        if not key or h.zone_id in shared_zones:
            continue
        by_place.setdefault((h.zone_id, key), []).append(h)
    clashes = []
    for (zone_id, _key), held in by_place.items():
        if len(held) > 1:
            held.sort(key=lambda h: h.ticket_id)
            clashes.append(SeatClash(zone_id, held[0].seat, tuple(held)))
    clashes.sort(key=lambda c: (c.zone_id, seat_key(c.seat)))
    return clashes


def over_capacity(tickets: Mapping[int, int], capacities: Mapping[int, int | None]) -> list[OverCapacity]:
    """Zones (by id) with a capacity and more valid tickets than it, ordered by zone id."""
    out = []
    for zone_id in sorted(capacities):
        cap = capacities[zone_id]
        n = tickets.get(zone_id, 0)
        if cap is not None and n > cap:
            out.append(OverCapacity(zone_id, cap, n))
    return out
