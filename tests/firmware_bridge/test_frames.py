"""The frame codec shared by the bridge and the controller firmware."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from firmware_bridge import frames
from tickets.errors import GatehouseError

PKG = Path(frames.__file__).resolve().parent

frame_st = st.tuples(st.integers(0, 255), st.integers(0, 255),
                     st.binary(max_size=frames.MAX_PAYLOAD))


def test_crc_is_crc16_ccitt_false() -> None:
    assert frames.crc16(b"123456789") == 0x29B1  # the catalogue check value


def test_frame_layout_is_start_len_seq_type_payload_crc() -> None:
    data = frames.encode(7, frames.UNLOCK, b"\x00\x00\x32")
    assert data[:5] == bytes([0xA5, 3, 7, frames.UNLOCK, 0])
    assert int.from_bytes(data[-2:], "big") == frames.crc16(data[1:-2])
    assert len(data) == frames.OVERHEAD + 3


@pytest.mark.parametrize(("seq", "ftype", "payload"), [
    (256, 1, b""), (-1, 1, b""), (1, 300, b""), (1, 1, bytes(frames.MAX_PAYLOAD + 1))])
def test_building_an_invalid_frame_is_a_local_error(seq: int, ftype: int, payload: bytes) -> None:
    with pytest.raises(frames.FrameError) as info:
        frames.encode(seq, ftype, payload)
    assert isinstance(info.value, GatehouseError) and isinstance(info.value, ValueError)


@given(st.lists(frame_st, max_size=8), st.data())
def test_frames_survive_any_chunking(items: list[tuple[int, int, bytes]], data: st.DataObject) -> None:
    stream = b"".join(frames.encode(*f) for f in items)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    dec = frames.Decoder()
    got = []
    for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        got += dec.feed(stream[a:b])
    assert [(s, t, bytes(p)) for s, t, p in got] == items
    assert dec.bad_crc == 0 and dec.pending() == 0


@given(st.binary(max_size=600))
def test_random_bytes_never_raise(noise: bytes) -> None:
    dec = frames.Decoder()
    dec.feed(noise)
    dec.feed(frames.encode(1, frames.HEARTBEAT))  # must not raise, whatever came before


@given(frame_st, frame_st, st.integers(1, 200))
def test_a_lost_byte_costs_only_its_own_frame(a: tuple[int, int, bytes], b: tuple[int, int, bytes],
                                                where: int) -> None:
    first = frames.encode(*a)
    lost = where % (len(first) - 1) + 1  # any byte after START
    damaged = first[:lost] + first[lost + 1:]
    stream = damaged + frames.encode(*b) + b"".join(frames.encode(*b) for _ in range(12))
    # Losing a frame's last byte when it equals the next frame's first (START) leaves the
    # first frame whole on the wire: nothing was lost, so nothing must be refused.
    assume(not stream.startswith(first))
    dec = frames.Decoder()
    # the following frames arrive; enough of them to fill any length the damage implied
    got = dec.feed(stream)
    assert (b[0], b[1], b[2]) in [(s, t, bytes(p)) for s, t, p in got]
    assert (a[0], a[1], a[2]) not in [(s, t, bytes(p)) for s, t, p in got] or a == b


def test_a_flipped_bit_is_counted_and_the_next_frame_still_decodes() -> None:
    bad = bytearray(frames.encode(3, frames.PASSAGE, b"\x00\x01"))
    bad[4] ^= 0x01
    dec = frames.Decoder()
    got = dec.feed(bytes(bad) + frames.encode(4, frames.PASSAGE, b"\x01\x00"))
    assert [(s, t, bytes(p)) for s, t, p in got] == [(4, frames.PASSAGE, b"\x01\x00")]
    assert dec.bad_crc == 1


def test_an_impossible_length_is_counted() -> None:
    dec = frames.Decoder()
    assert dec.feed(bytes([0xA5, 200, 0, 0, 0, 0, 0])) == []
    assert dec.bad_length == 1


def test_text_is_cut_on_a_character_boundary() -> None:
    assert frames.text_payload("Zoë", 3) == b"Zo"
    assert frames.decode_text(b"\xff\xfeok") == "??ok"


def test_duplicate_window_remembers_recent_sequence_numbers() -> None:
    w = frames.SeqWindow(size=2)
    assert not w.seen(1) and w.seen(1)
    assert not w.seen(2) and not w.seen(3)
    assert not w.seen(1), "forgotten once it slid out of the window"


@pytest.mark.parametrize("path", [PKG / "frames.py", PKG / "firmware" / "main.py"])
def test_board_files_use_nothing_micropython_lacks(path: Path) -> None:
    """frames.py and the firmware run on MicroPython: no annotations, dataclasses, typing or
    __future__ imports (at module level or in any function)."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        assert not isinstance(node, ast.AnnAssign), f"{path.name}:{node.lineno}: annotation"
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            assert node.returns is None, f"{path.name}:{node.lineno}: return annotation"
            args = node.args.args + node.args.kwonlyargs + node.args.posonlyargs
            assert all(a.annotation is None for a in args), f"{path.name}:{node.lineno}"
        assert not isinstance(node, ast.AsyncFunctionDef)
        if isinstance(node, ast.ImportFrom):
            assert node.module not in ("__future__", "dataclasses", "typing"), path.name
        if isinstance(node, ast.Import):
            assert not {a.name for a in node.names} & {"dataclasses", "typing"}, path.name


def test_codec_and_controller_import_as_flat_board_files(tmp_path: Path) -> None:
    """On the board the files sit side by side without the project: copy them like that
    and drive a controller from a clean interpreter that cannot see gatehouse."""
    (tmp_path / "frames.py").write_text((PKG / "frames.py").read_text())
    (tmp_path / "main.py").write_text((PKG / "firmware" / "main.py").read_text())
    script = (
        "import sys\n"
        "sys.path.insert(0, '.')\n"
        "import frames, main\n"
        "assert frames.FrameError.__mro__[1] is ValueError, frames.FrameError.__mro__\n"
        "class M(main.Mechanism):\n"
        "    def __init__(self): self.log = []\n"
        "    def release(self, d): self.log.append(('release', d))\n"
        "ctl = main.Controller(M(), 0x1234, 0)\n"
        "ctl.take_output()\n"
        "ctl.receive(frames.encode(9, frames.UNLOCK, bytes([0, 0, 0])), 1)\n"
        "got = frames.Decoder().feed(ctl.take_output())\n"
        "assert [(t, bytes(p)) for _, t, p in got] == [(frames.ACK, bytes([9, 0]))], got\n"
        "assert ctl.mech.log == [('release', 0)]\n"
        "print('ok')\n"
    )
    # -S: no site-packages, so not even an installed copy of the project is importable
    out = subprocess.run([sys.executable, "-I", "-S", "-c", script], cwd=tmp_path, capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
