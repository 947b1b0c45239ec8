"""Serial scanners over a real pty pair: framing, bad input, unplug and reconnect."""
from __future__ import annotations

import os
import tty

import pytest

from scanners.serial import LineFramer, SerialScanner
from tests.scanners.conftest import is_fault, is_ok, next_event, next_matching, no_delay
from tickets.credential import read
from tickets.errors import MalformedCredential
from tickets.keys import KeyRing
from tickets.model import Scan


class Pty:
    """A pty pair; the scanner opens the slave through a symlink we can repoint (re-plug)."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        self.path = os.ttyname(self.slave)

    def write(self, data: bytes) -> None:
        os.write(self.master, data)

    def unplug(self) -> None:
        os.close(self.master)
        os.close(self.slave)


@pytest.fixture
def pty():
    p = Pty()
    yield p
    try:
        p.unplug()
    except OSError:
        pass


async def test_codes_terminated_by_cr_arrive_as_scans_with_raw_bytes(pty):
    scanner = SerialScanner(pty.path, terminator="CR", symbology="code128", reconnect_delays=no_delay)
    async with scanner:
        await next_matching(scanner, is_ok)
        pty.write(b"TK-2026-000001\rGH1:ABC")
        pty.write(b"DEF\r\xff\xfe\x00bin\r")
        first = await next_event(scanner)
        second = await next_event(scanner)
        third = await next_event(scanner)
    assert [e.payload for e in (first, second, third)] == [b"TK-2026-000001", b"GH1:ABCDEF", b"\xff\xfe\x00bin"]
    assert isinstance(first, Scan) and first.symbology == "code128"
    assert first.source == f"serial:{pty.path}"


async def test_prefix_and_suffix_are_stripped_and_crlf_is_one_terminator(pty):
    scanner = SerialScanner(pty.path, terminator="CRLF", prefix=b"]Q1", suffix=b"#", reconnect_delays=no_delay)
    async with scanner:
        await next_matching(scanner, is_ok)
        pty.write(b"]Q1TK-7#\r\n]Q1TK-8#\r\n")
        a, b = await next_event(scanner), await next_event(scanner)
    assert (a.payload, b.payload) == (b"TK-7", b"TK-8")


async def test_unplugged_scanner_faults_and_reconnects_when_the_port_returns(tmp_path):
    link = tmp_path / "ttyScanner"
    first = Pty()
    link.symlink_to(first.path)
    scanner = SerialScanner(str(link), reconnect_delays=no_delay)
    async with scanner:
        await next_matching(scanner, is_ok)
        first.write(b"ONE\r")
        assert (await next_event(scanner)).payload == b"ONE"
        first.unplug()
        fault, _ = await next_matching(scanner, is_fault)
        assert str(link) in fault.detail
        second = Pty()
        try:
            link.unlink()
            link.symlink_to(second.path)
            await next_matching(scanner, is_ok)
            second.write(b"TWO\r")
            scan, _skipped = await next_matching(scanner, lambda e: isinstance(e, Scan))
        finally:
            second.unplug()
    assert scan.payload == b"TWO"


async def test_garbage_on_the_line_becomes_malformed_scans_or_nothing_never_a_crash(pty):
    scanner = SerialScanner(pty.path, max_len=64, reconnect_delays=no_delay)
    async with scanner:
        await next_matching(scanner, is_ok)
        pty.write(os.urandom(500).replace(b"\r", b"") + b"\r")  # over-long: dropped
        pty.write(b"\x80\x81GH1:\xc3(\rGH1:!!!\r\rEND\r")
        events = [await next_event(scanner) for _ in range(3)]
    payloads = [e.payload for e in events]
    assert payloads == [b"\x80\x81GH1:\xc3(", b"GH1:!!!", b"END"]
    for bad in payloads[:2]:
        with pytest.raises(MalformedCredential):
            read(bad, KeyRing())


def test_framer_drops_an_over_long_line_whole_and_resynchronises_at_the_terminator():
    framer = LineFramer("LF", max_len=8)
    assert framer.feed(b"0123456789abcdef") == []
    assert framer.feed(b"still going\nOK\n") == [b"OK"]
    assert framer.dropped == 1


def test_framer_joins_partial_frames():
    framer = LineFramer("CR")
    assert framer.feed(b"TK-") == []
    assert framer.feed(b"12") == []
    assert framer.feed(b"3\rTK") == [b"TK-123"]


def test_framer_tolerates_lf_after_cr_when_set_to_cr():
    assert LineFramer("CR").feed(b"A\r\nB\r\n") == [b"A", b"B"]


def test_framer_refuses_an_unknown_terminator():
    with pytest.raises(ValueError):
        LineFramer("NUL")
