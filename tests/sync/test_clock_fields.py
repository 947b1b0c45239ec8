"""The hello carries the gate's clock and the reply the hub's (clock skew is measured from them)."""
from __future__ import annotations

import pytest

from sync import messages as m
from sync.errors import RemoteProtocolError


def test_hello_and_reply_carry_the_two_clocks_and_older_peers_send_none() -> None:
    hello = m.Hello("g1", 1, 3, 1, 0, 0, 0, clock=1_800_000_000.25)
    assert m.decode(m.encode(hello)) == hello
    reply = m.HelloReply(3, 1, 3, 0, 0, "e", 5, 1, hub_time=1_800_000_300.5)
    assert m.decode(m.encode(reply)) == reply
    old = {k: v for k, v in m.to_dict(hello).items() if k != "clock"}
    assert m.from_dict(old).clock is None  # type: ignore[union-attr]


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -1.0, 1e308, "now", True])
def test_a_clock_that_is_not_a_time_is_refused(bad: object) -> None:
    d = {**m.to_dict(m.Hello("g1", 1, 3, 1, 0, 0, 0)), "clock": bad}
    with pytest.raises(RemoteProtocolError):
        m.from_dict(d)
