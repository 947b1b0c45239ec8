"""The mode ladder: precedence of causes, latching emergency, every transition reported once."""
from __future__ import annotations

from gate_agent.modes import NEVER_SYNCED, Mode, ModeLadder


def test_gate_starts_offline_and_goes_online_when_connected() -> None:
    ladder = ModeLadder()
    t = ladder.update(hub_connected=True)
    assert t is not None and (t.old, t.new) == (Mode.OFFLINE, Mode.ONLINE)
    assert ladder.update(hub_connected=True) is None  # no change, no transition


def test_losing_the_hub_goes_offline_with_its_cause() -> None:
    ladder = ModeLadder()
    ladder.update(hub_connected=True)
    t = ladder.update(hub_connected=False)
    assert t is not None and t.new is Mode.OFFLINE and t.cause == "hub unreachable"


def test_untrusted_replica_goes_to_manifest_even_when_online() -> None:
    ladder = ModeLadder()
    ladder.update(hub_connected=True)
    t = ladder.update(replica_untrusted="schema_mismatch: replica 3, software 2")
    assert t is not None and t.new is Mode.MANIFEST and "schema" in t.cause
    t = ladder.update(replica_untrusted="")
    assert t is not None and t.new is Mode.ONLINE


def test_scanner_down_goes_to_manifest() -> None:
    ladder = ModeLadder()
    t = ladder.update(scanner_fault="no frames for 5 s")
    assert t is not None and t.new is Mode.MANIFEST and "scanner" in t.cause


def test_fire_alarm_latches_emergency_until_reset_after_the_contact_closes() -> None:
    ladder = ModeLadder()
    ladder.update(hub_connected=True)
    assert ladder.update(alarm=True).new is Mode.EMERGENCY  # type: ignore[union-attr]
    assert ladder.reset_emergency() is None  # contact still open: stays
    assert ladder.update(alarm=False) is None  # contact closed: still latched
    assert ladder.mode is Mode.EMERGENCY
    t = ladder.reset_emergency()
    assert t is not None and t.new is Mode.ONLINE


def test_emergency_outranks_closed_and_manifest() -> None:
    ladder = ModeLadder()
    ladder.update(closed="command", replica_untrusted="integrity")
    assert ladder.mode is Mode.CLOSED
    ladder.emergency("control room")
    assert ladder.mode is Mode.EMERGENCY and ladder.cause == "control room"


def test_replica_is_stale_only_when_offline_past_the_limit() -> None:
    ladder = ModeLadder()
    ladder.update(last_sync_at=1000.0)
    assert ladder.replica_stale(now=1000.0 + 3601, max_age_s=3600)
    ladder.update(hub_connected=True)
    assert not ladder.replica_stale(now=1000.0 + 3601, max_age_s=3600)


def test_a_new_gate_waiting_for_its_first_snapshot_is_not_a_warning() -> None:
    ladder = ModeLadder()
    t = ladder.update(replica_untrusted=NEVER_SYNCED)
    assert t is not None and t.new is Mode.MANIFEST and not t.warn
    t = ladder.update(replica_untrusted="", hub_connected=True)  # the snapshot, over a live link
    assert t is not None and (t.old, t.new) == (Mode.MANIFEST, Mode.ONLINE) and not t.warn


def test_a_real_degradation_warns_and_so_does_every_step_back_until_online() -> None:
    ladder = ModeLadder()
    ladder.update(hub_connected=True)
    steps = [ladder.update(hub_connected=False), ladder.update(scanner_fault="camera unplugged"),
             ladder.update(scanner_fault=""), ladder.update(hub_connected=True)]
    assert [(t.new, t.warn) for t in steps if t is not None] == [
        (Mode.OFFLINE, True), (Mode.MANIFEST, True), (Mode.OFFLINE, True), (Mode.ONLINE, True)]
    t = ladder.update(replica_untrusted=NEVER_SYNCED)  # expected: a rebuilt replica
    assert t is not None and not t.warn
    t = ladder.update(replica_untrusted="")
    assert t is not None and t.new is Mode.ONLINE and not t.warn  # the warned outage was closed before
