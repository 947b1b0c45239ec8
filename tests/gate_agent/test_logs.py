"""Gate log lines name their gate (many gates in one process too) and carry no secret."""
from __future__ import annotations

import base64
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.frames import Frame, Opcode

from firmware_bridge.sim import SimTurnstile
from gate_agent.agent import GateAgent
from gate_agent.config import GateConfig
from gate_agent.logs import GateTagFilter, RedactFilter, redact, redacted, register_secret
from gate_agent.replica import Replica
from gatehouse.bench.testdata import make_event
from scanners.sim import SimScanner
from tests.conftest import eventually
from tickets.model import Scan

CREDENTIAL = "GH1:AEAFQ3YAAAAAOAAAAAAAAAAAAEAACALLBWC422YWZZOQAABIOAMQCT733DA4AWI3ECEHAYYGY4JC7552Y6TIFUFB"


class ListHandler(logging.Handler):
    """What a log file would get: the records after the gatehouse filters, formatted."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.addFilter(GateTagFilter())
        self.addFilter(RedactFilter())
        self.setFormatter(logging.Formatter("%(levelname)s %(gate)s%(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def lines(self) -> list[str]:
        return [self.format(r) for r in self.records]


@pytest.fixture
def captured() -> Iterator[ListHandler]:
    handler = ListHandler()
    root = logging.getLogger()
    old = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(old)


def emit(handler: ListHandler, msg: str, *args: object, exc: bool = False) -> str:
    logger = logging.getLogger("websockets.client")
    if exc:
        try:
            raise RuntimeError(msg % args)
        except RuntimeError:
            logger.exception("failed")
    else:
        logger.debug(msg, *args)
    return handler.lines()[-1]


def test_bearer_tokens_and_secret_fields_are_redacted(captured: ListHandler) -> None:
    assert emit(captured, "> %s: %s", "Authorization", "Bearer abc.DEF-123") == \
        "DEBUG websockets.client: > Authorization: [redacted]"
    assert "abc" not in emit(captured, "connect(headers=%r)", {"authorization": "Bearer abc.DEF-123"})
    line = emit(captured, "%s", '{"gate_id": "g1", "token": "tok-123456789", "pin": "2468", "barcode": "4006381333931"}')
    assert "tok-123456789" not in line and "2468" not in line and "4006381333931" not in line
    assert '"gate_id": "g1"' in line
    assert "s3cr3t" not in emit(captured, "GET /api/feed?token=s3cr3t&x=1 200")


def test_a_registered_secret_never_appears_even_inside_a_traceback(captured: ListHandler) -> None:
    register_secret("Zq9-not-a-pattern-at-all-77")
    line = emit(captured, "lost %s", "Zq9-not-a-pattern-at-all-77", exc=True)
    assert "Zq9-not-a-pattern-at-all-77" not in line and "[redacted]" in line
    assert "RuntimeError" in line  # the traceback itself is kept


def test_scanned_credentials_are_shown_as_prefix_length_and_hash(captured: ListHandler) -> None:
    scan = Scan(CREDENTIAL.encode(), "qrcode", "sim", 0.0)
    as_repr = emit(captured, "scanner events not consumed; dropped %r", scan)
    as_text = emit(captured, "decoded %s", CREDENTIAL)
    as_wire = emit(captured, "%s", '{"seq": 3, "raw": "' + base64.b64encode(CREDENTIAL.encode()).decode() + '"}')
    for line in (as_repr, as_text, as_wire):
        assert CREDENTIAL[4:30] not in line and base64.b64encode(CREDENTIAL.encode()).decode()[:30] not in line
    assert redacted(CREDENTIAL) in as_text and redacted(CREDENTIAL.encode()) in as_repr
    assert redacted(CREDENTIAL).startswith("GH1:…[") and f"{len(CREDENTIAL)}B #" in redacted(CREDENTIAL)
    assert redacted(CREDENTIAL) == redacted(CREDENTIAL) != redacted(CREDENTIAL + "A")  # matchable, distinct


def test_websocket_frames_are_logged_without_their_payload(captured: ListHandler) -> None:
    body = ('{"type": "journal", "entries": [{"raw": "' + base64.b64encode(CREDENTIAL.encode()).decode()
            + '", "rotating_secret": "c2VjcmV0"}]}').encode()
    line = emit(captured, "> %s", Frame(Opcode.TEXT, body))
    assert line == f"DEBUG websockets.client: > TEXT journal [{len(body)} bytes, payload not logged]"


def test_redact_leaves_ordinary_lines_alone() -> None:
    line = "mode OFFLINE → ONLINE (connected); scan 12 → ADMIT; ticket N0005 at gate north-1"
    assert redact(line) == line


async def start_gate(tmp_path: Path, gate_id: str) -> tuple[GateAgent, SimScanner]:
    event = make_event(50, time.time())
    cfg = GateConfig(gate_id=gate_id, data_dir=tmp_path / gate_id, passage_timeout_s=0.5)
    replica = await Replica.open(cfg.replica_path)
    await replica.set_event(event_id=event.event_id, keyring=event.keyring, zones=event.zones, policies=event.policies)
    await replica.bulk_load(event.rows())
    await replica.apply_tickets([], cursor=1)
    await replica.close()
    scanner = SimScanner()
    agent = GateAgent(cfg, scanner=scanner, turnstile=SimTurnstile(), serve_status=False)
    await agent.start()
    return agent, scanner


async def test_many_gates_in_one_process_each_name_their_own_lines(tmp_path: Path, captured: ListHandler) -> None:
    """As in the demo: every gate's tasks run in one event loop, and each line names its gate."""
    gates = [await start_gate(tmp_path, name) for name in ("north-1", "south-2")]
    try:
        for _agent, scanner in gates:
            await scanner.feed(b"no such ticket")
        await eventually(lambda: sum("scan " in r.getMessage() for r in captured.records) >= 2, what="two scans")
        scans = {r.gate_id: r.getMessage() for r in captured.records if r.getMessage().startswith("scan ")}  # type: ignore[attr-defined]
        assert set(scans) == {"north-1", "south-2"}
    finally:
        for agent, _ in gates:
            await agent.stop()
    mine = [r for r in captured.records if r.name.startswith(("gate_agent", "scanners", "firmware_bridge"))]
    assert mine and all(r.gate_id in ("north-1", "south-2") for r in mine), [  # type: ignore[attr-defined]
        (r.name, r.getMessage()) for r in mine if not r.gate_id]  # type: ignore[attr-defined]
