"""The seat rules: what counts as double-sold and as over capacity."""
from __future__ import annotations

from tickets.seats import Holding, double_sold, over_capacity, seat_key


def h(tid: int, zone: int, seat: str) -> Holding:
    return Holding(tid, f"T{tid}", zone, seat)


def test_two_valid_tickets_on_one_seat_of_one_zone_are_a_clash() -> None:
    clashes = double_sold([h(1, 1, "A-1"), h(2, 1, "A-1"), h(3, 1, "A-2"), h(4, 2, "A-1")])
    assert [(c.zone_id, c.seat, [t.ticket_id for t in c.tickets]) for c in clashes] == [(1, "A-1", [1, 2])]


def test_seat_labels_are_compared_as_people_read_them() -> None:
    assert seat_key("  a   12 ") == seat_key("A 12")
    clashes = double_sold([h(5, 1, "a 12"), h(3, 1, "A  12")])
    assert [t.ticket_id for t in clashes[0].tickets] == [3, 5]
    assert clashes[0].key == "1:a 12"


def test_standing_tickets_and_shared_seat_zones_never_clash() -> None:
    assert double_sold([h(1, 1, ""), h(2, 1, "  ")]) == []
    assert double_sold([h(1, 3, "Box 4"), h(2, 3, "Box 4")], shared_zones={3}) == []
    assert len(double_sold([h(1, 3, "Box 4"), h(2, 3, "Box 4")], shared_zones={2})) == 1


def test_three_tickets_on_one_seat_are_one_clash_naming_all_three() -> None:
    clashes = double_sold([h(i, 1, "C-3") for i in (9, 7, 8)])
    assert len(clashes) == 1 and [t.ticket_id for t in clashes[0].tickets] == [7, 8, 9]


def test_a_zone_is_over_capacity_only_when_it_has_one_and_more_tickets() -> None:
    over = over_capacity({1: 101, 2: 50, 3: 999}, {1: 100, 2: 50, 3: None, 4: 10})
    assert [(o.zone_id, o.excess) for o in over] == [(1, 1)]
