"""The transports for real: uvicorn on 127.0.0.1, real websockets gate clients."""
from __future__ import annotations

import asyncio
import datetime
import ipaddress
import itertools
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve

from sync import messages as m
from sync import session as s
from sync.gate_client import backoff
from tests.sync.harness import make_backend
from tests.sync.realhub import TIMEOUT_S, AsyncGate, Changes, NotifyingBackend, RealHub
from tickets.entry import EntryKind, JournalEntry, Passage
from tickets.model import TicketStatus

pytestmark = pytest.mark.timed

CFG = s.SessionConfig(batch_size=50, max_in_flight=4, ack_timeout_s=2.0, heartbeat_interval_s=1.0,
                      heartbeat_timeout_s=3.0)


def backend_with(changes: Changes, n: int = 50) -> NotifyingBackend:
    b = NotifyingBackend(changes)
    template = make_backend(n, ("g1", "g2"))
    b.s, b.tokens = template.s, template.tokens
    return b


@pytest.fixture
async def world() -> AsyncIterator[tuple[Changes, NotifyingBackend, RealHub, list[AsyncGate]]]:
    changes = Changes()
    backend = backend_with(changes)
    hub = RealHub(backend, CFG)
    await hub.start()
    gates = [AsyncGate(g, hub.url, f"token-{g}", changes, config=CFG) for g in ("g1", "g2")]
    for g in gates:
        g.start()
    await changes.until(lambda: all(g.state == "online" for g in gates), what="both gates online")
    yield changes, backend, hub, gates
    for g in gates:
        await g.stop()
    await hub.kill()


async def test_revocation_pushed_at_the_hub_reaches_every_gate(world) -> None:  # type: ignore[no-untyped-def]
    changes, backend, hub, gates = world
    assert hub.registry.connected() == ["g1", "g2"]
    assert hub.registry.push_changes([backend.revoke(7, "refund")]) == 2
    await changes.until(lambda: all(g.mg.replica[7].status is TicketStatus.REVOKED for g in gates),
                        what="revocation at both gates")
    assert all(g.mg.cursor == backend.s.seq for g in gates)


async def test_admit_at_one_gate_is_refused_at_the_other_within_a_second(world) -> None:  # type: ignore[no-untyped-def]
    changes, backend, _hub, gates = world
    g1, g2 = gates
    t0 = time.time()
    assert g1.scan(3).reason == "ADMIT"
    await changes.until(lambda: 3 in g2.remote_admit_at, within=1.0, what="fan-out of the admit")
    assert g2.remote_admit_at[3] - t0 < 1.0
    assert g2.scan(3).reason == "ALREADY_USED"
    await changes.until(lambda: g1.mg.acked == 1 and g2.mg.acked == 1, what="both journals acked")
    assert backend.conflicts == []


async def test_hub_killed_mid_burst_then_restarted_gates_drain_with_exact_counts(world) -> None:  # type: ignore[no-untyped-def]
    changes, backend, hub, gates = world
    g1, g2 = gates
    for i in range(60):
        g1.scan(1 + i % 50)
    await changes.until(lambda: g1.mg.acked >= 1, what="upload under way")
    backend.stalled.set()  # from here the hub takes batches and dies before storing them
    for i in range(60, 120):
        g1.scan(1 + i % 50)
    await changes.until(lambda: backend.stalled_batches >= 1, what="a batch in flight")
    await hub.kill()  # mid-burst: batches in flight are lost with the connection
    backend.stalled.clear()
    assert g1.mg.acked < 120
    for i in range(120, 200):
        g1.scan(1 + i % 50)
    await changes.until(lambda: g1.state == "offline", what="gate notices the hub is gone")
    for i in range(100):
        g2.scan(1 + i % 50)
    await hub.start()
    await changes.until(lambda: g1.mg.acked == 200 and g2.mg.acked == 100, what="drain after restart")
    assert sorted(backend.stored("g1")) == list(range(1, 201))
    assert sorted(backend.stored("g2")) == list(range(1, 101))
    assert backend.s.inserted == 300
    assert g1.client.connections >= 2


async def test_wrong_token_is_refused_with_a_reason(world) -> None:  # type: ignore[no-untyped-def]
    changes, _backend, hub, _gates = world
    intruder = AsyncGate("g1", hub.url, "stolen-token", changes, config=CFG)
    intruder.start()
    await changes.until(lambda: intruder.state == "refused", what="refusal")
    assert intruder.client.last_refusal == "unknown or revoked gate token"
    await intruder.stop()
    assert hub.registry.connected() == ["g1", "g2"]


async def test_revoked_gate_is_disconnected_and_refused_on_reconnect(world) -> None:  # type: ignore[no-untyped-def]
    changes, backend, hub, gates = world
    backend.revoke_gate("g2")
    assert await hub.registry.disconnect("g2", "gate revoked")
    await changes.until(lambda: gates[1].state == "refused", what="revoked gate refused")
    assert hub.registry.connected() == ["g1"]


async def test_commands_reach_the_gate(world) -> None:  # type: ignore[no-untyped-def]
    changes, _backend, hub, gates = world
    assert hub.registry.send_command(m.Command("emergency_on", "fire alarm")) == 2
    await changes.until(lambda: all(g.commands == ["emergency_on"] for g in gates), what="command")


async def test_a_silent_hub_is_detected_by_heartbeat_and_the_gate_reconnects() -> None:
    """A hub whose TCP connection stays up but which never answers: only heartbeats notice."""
    changes = Changes()
    accepted: list[int] = []

    async def silent(ws: ServerConnection) -> None:
        accepted.append(1)
        changes.notify()
        await ws.wait_closed()  # never reads a message, never answers one

    cfg = s.SessionConfig(heartbeat_interval_s=0.1, heartbeat_timeout_s=0.3, reply_timeout_s=10.0)
    async with serve(silent, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        gate = AsyncGate("g1", f"ws://127.0.0.1:{port}/ws/gate", "token-g1", changes, config=cfg)
        gate.start()
        try:
            await changes.until(lambda: len(accepted) >= 3, what="two heartbeat timeouts and reconnects")
            assert gate.client.connections >= 2
            assert ("offline", "") in gate.states
        finally:
            await gate.stop()
        server.close()


async def test_incompatible_gate_stays_offline_and_keeps_admitting() -> None:
    changes = Changes()
    backend = backend_with(changes)
    hub = RealHub(backend, s.SessionConfig(min_version=2, max_version=2))
    await hub.start()
    backoff_used: list[float] = []

    def recording_delays() -> Iterator[float]:
        while True:
            backoff_used.append(0.01)
            yield 0.01

    old = AsyncGate("g1", hub.url, "token-g1", changes, config=s.SessionConfig(min_version=1, max_version=1),
                    delays=recording_delays)
    old.client.incompatible_delay_s = 0.05
    old.start()
    try:
        await changes.until(lambda: sum(st == "incompatible" for st, _ in old.states) >= 2, what="retried later")
        assert "v1..v1" in dict(old.states)["incompatible"]
        assert backoff_used == []  # retries wait incompatible_delay_s, not the fast reconnect backoff
        assert old.scan(1).reason == "UNKNOWN"  # empty replica, but the decision is not blocked
    finally:
        await old.stop()
        await hub.kill()


def test_backoff_is_exponential_with_full_jitter() -> None:
    top = list(itertools.islice(backoff(1.0, 2.0, 10.0, rng=lambda: 1.0), 6))
    assert top == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    low = list(itertools.islice(backoff(1.0, 2.0, 10.0, rng=lambda: 0.0), 3))
    assert low == [0.0, 0.0, 0.0]


# ----------------------------------------------------------------------------- TLS
def _make_ca_and_server_cert(tmp: Path) -> tuple[str, str, str]:
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gatehouse test venue CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hub")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=1)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    ca_file, cert_file, key_file = tmp / "ca.pem", tmp / "hub.pem", tmp / "hub.key"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(ca_file), str(cert_file), str(key_file)


async def test_gate_connects_over_wss_trusting_the_venue_ca(tmp_path: Path) -> None:
    ca_file, cert_file, key_file = _make_ca_and_server_cert(tmp_path)
    changes = Changes()
    backend = backend_with(changes)
    hub = RealHub(backend, CFG, ssl_files=(cert_file, key_file))
    await hub.start()
    good = AsyncGate("g1", hub.url, "token-g1", changes, config=CFG, ca_file=ca_file)
    untrusting = AsyncGate("g2", hub.url, "token-g2", changes, config=CFG)  # system CAs only
    good.start()
    untrusting.start()
    try:
        await changes.until(lambda: good.state == "online", what="wss gate online")
        good.scan(1)
        await changes.until(lambda: good.mg.acked == 1, what="ack over TLS")
        await changes.until(lambda: ("offline", "") in untrusting.states, what="untrusting gate fails")
        assert untrusting.client.connections == 0 and untrusting.state != "online"
    finally:
        await good.stop()
        await untrusting.stop()
        await hub.kill()


async def test_hub_restored_from_an_old_backup_gets_every_entry_back_unasked(world) -> None:  # type: ignore[no-untyped-def]
    changes, backend, hub, gates = world
    g1, g2 = gates
    backup = backend.backup()
    for i in range(1, 31):
        g1.scan(i)
    hub.registry.push_changes([backend.revoke(40)])
    await changes.until(lambda: g1.mg.acked == 30 and g2.mg.replica[40].status is TicketStatus.REVOKED,
                        what="acked and revoked before the crash")
    await hub.kill()
    backend.restore(backup)  # the hub comes back from a backup taken before all of that
    await hub.start()
    await changes.until(lambda: sorted(backend.stored("g1")) == list(range(1, 31)) and g2.state == "online",
                        what="entries re-sent after restore")
    assert any(st == "rolled_back" and "had acked 30" in why for st, why in g1.states)  # told to the owner
    assert g2.mg.replica[40].status is TicketStatus.REVOKED  # never un-revoked by the old snapshot
    assert backend.s.inserted == 30


async def test_a_failing_hub_store_drops_the_link_and_the_gate_resends_nothing_lost(world) -> None:  # type: ignore[no-untyped-def]
    changes, backend, _hub, gates = world
    g1 = gates[0]
    failures = [OSError("disk full")]
    real_ingest = backend.ingest_now

    def flaky(gate_id, entries):  # type: ignore[no-untyped-def]
        if failures:
            raise failures.pop()
        return real_ingest(gate_id, entries)

    backend.ingest_now = flaky  # type: ignore[method-assign]
    before = g1.client.connections
    for i in range(1, 11):
        g1.scan(i)
    await changes.until(lambda: g1.mg.acked == 10, what="drain after the store recovered")
    assert g1.client.connections > before
    assert sorted(backend.stored("g1")) == list(range(1, 11)) and backend.s.inserted == 10


async def test_a_failing_gate_owner_reconnects_and_catches_up(world) -> None:  # type: ignore[no-untyped-def]
    changes, backend, hub, gates = world
    g2 = gates[1]
    real_apply = g2.apply_deltas
    failures = [RuntimeError("replica locked")]

    async def flaky(changes_, cursor):  # type: ignore[no-untyped-def]
        if failures:
            raise failures.pop()
        await real_apply(changes_, cursor)

    g2.apply_deltas = flaky  # type: ignore[method-assign]
    before = g2.client.connections
    hub.registry.push_changes([backend.revoke(9)])
    await changes.until(lambda: g2.mg.replica[9].status is TicketStatus.REVOKED, what="revocation after retry")
    assert g2.client.connections > before and g2.mg.cursor == backend.s.seq


async def test_gates_learn_what_a_completed_hub_backup_holds_and_only_that(world) -> None:  # type: ignore[no-untyped-def]
    changes, backend, _hub, gates = world
    g1 = gates[0]
    for i in range(1, 6):
        g1.scan(i)
    await changes.until(lambda: g1.mg.acked == 5, what="acked")
    assert g1.mg.backed_up == 0  # acked is not enough to prune
    backend.backup()
    g1.scan(6)
    await changes.until(lambda: g1.mg.acked == 6, what="next ack")
    assert g1.mg.backed_up == 5  # entries 1..5 are inside a completed backup; 6 is not


async def test_v1_gate_syncs_with_a_v2_hub_over_real_websockets(world) -> None:  # type: ignore[no-untyped-def]
    changes, backend, hub, _gates = world
    backend.add_gate("old", "token-old")
    old = AsyncGate("old", hub.url, "token-old", changes, config=s.SessionConfig(max_version=1))
    old.start()
    try:
        await changes.until(lambda: old.state == "online", what="v1 gate online")
        assert hub.registry.connections["old"].session.version == 1
        assert len(old.mg.replica) == 50
        assert old.scan(2).reason == "ADMIT"
        await changes.until(lambda: old.mg.acked == 1, what="v1 upload acked")
    finally:
        await old.stop()


async def test_client_status_reports_backlog_cursor_and_state_for_the_staff_screen(world) -> None:  # type: ignore[no-untyped-def]
    changes, backend, hub, gates = world
    g1 = gates[0]
    await hub.kill()
    await changes.until(lambda: g1.state == "offline", what="offline")
    for i in range(1, 4):
        g1.scan(i)
    st = g1.client.status()
    assert st["state"] == "offline" and st["backlog"] == 3 and st["cursor"] == backend.s.seq
    assert st["protocol_version"] == 3 and st["last_message_at"] is not None
    await hub.start()
    await changes.until(lambda: g1.client.status()["backlog"] == 0, what="backlog drained")
    assert g1.client.status()["state"] == "online"


async def test_an_admit_that_did_not_pass_is_undone_at_the_other_gates(world) -> None:  # type: ignore[no-untyped-def]
    changes, _backend, _hub, gates = world
    g1, g2 = gates
    admit = g1.scan(4)
    await changes.until(lambda: g2.mg.entries.get(4) == 1, what="admit fanned out")
    # The turnstile timed out: the fan never passed, the ticket stays valid.
    g1.mg.journal.append(JournalEntry("g1", len(g1.mg.journal) + 1, time.time(), EntryKind.PASSAGE, ticket_id=4,
                                      passage=Passage.NOT_PASSED, ref_seq=admit.seq))
    g1.client.journal_appended(len(g1.mg.journal))
    await changes.until(lambda: g2.mg.entries.get(4) == 0, what="undo fanned out")
    assert g2.scan(4).reason == "ADMIT"


async def test_garbage_from_a_gate_gets_a_reasoned_error_and_the_link_survives(world) -> None:  # type: ignore[no-untyped-def]
    _changes, _backend, hub, _gates = world
    async with connect(hub.url, additional_headers={"Authorization": "Bearer token-g1"}) as ws:
        await ws.send("{not json")
        err = m.decode(await asyncio.wait_for(ws.recv(), TIMEOUT_S))
        assert isinstance(err, m.Error) and err.code == "malformed" and not err.fatal
        await ws.send('{"type": "teleport"}')
        err = m.decode(await asyncio.wait_for(ws.recv(), TIMEOUT_S))
        assert isinstance(err, m.Error) and err.code == "unknown_type"
        await ws.send(m.encode(m.Hello("g1", 1, 1, 1, 0, 0, 0)))
        rep = m.decode(await asyncio.wait_for(ws.recv(), TIMEOUT_S))
        assert isinstance(rep, m.HelloReply) and rep.version == 1
