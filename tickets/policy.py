"""Entry policies: whether a ticket may pass again, given where its holder is.

A policy is a *kind* (how many entries) plus an *anti-passback* rule (what to do with a
ticket whose holder is recorded inside):

============== ======================= ===============================================
preset         kind / passback          a second entry …
============== ======================= ===============================================
single         single / —               is refused: ALREADY_USED
reentry        reentry / hard           needs a recorded exit first, else ALREADY_INSIDE;
                                        ``max_entries`` caps the total if set
unlimited      unlimited / none         is always admitted (ADMIT_REENTRY)
passback_hard  unlimited / hard         is refused while inside: ALREADY_INSIDE
passback_soft  unlimited / soft         is admitted while inside, flagged ``passback_soft``
passback_timed unlimited / timed        is refused for ``passback_wait_s`` after the last
                                        entry (ANTI_PASSBACK_WAIT), then admitted
============== ======================= ===============================================
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from tickets.model import Direction, EntryState
from tickets.reasons import Reason


class EntryRule(StrEnum):
    """How often a ticket may enter (the entry policy's rule; not a journal entry's kind)."""

    SINGLE = "single"
    REENTRY = "reentry"
    UNLIMITED = "unlimited"


class Passback(StrEnum):
    NONE = "none"
    HARD = "hard"
    SOFT = "soft"
    TIMED = "timed"


@dataclass(frozen=True, slots=True)
class EntryPolicy:
    policy_id: int
    name: str
    kind: EntryRule = EntryRule.SINGLE
    passback: Passback = Passback.NONE
    passback_wait_s: float = 0.0
    max_entries: int | None = None

    @classmethod
    def preset(cls, policy_id: int, name: str, *, wait_s: float = 600.0, max_entries: int | None = None) -> EntryPolicy:
        """Build one of the named presets in the module table."""
        presets: dict[str, tuple[EntryRule, Passback]] = {
            "single": (EntryRule.SINGLE, Passback.NONE),
            "reentry": (EntryRule.REENTRY, Passback.HARD),
            "unlimited": (EntryRule.UNLIMITED, Passback.NONE),
            "passback_hard": (EntryRule.UNLIMITED, Passback.HARD),
            "passback_soft": (EntryRule.UNLIMITED, Passback.SOFT),
            "passback_timed": (EntryRule.UNLIMITED, Passback.TIMED),
        }
        if name not in presets:
            raise ValueError(f"unknown entry policy {name!r}; known: {', '.join(presets)}")
        kind, passback = presets[name]
        return cls(
            policy_id=policy_id,
            name=name,
            kind=kind,
            passback=passback,
            passback_wait_s=wait_s if passback is Passback.TIMED else 0.0,
            max_entries=max_entries,
        )


#: The policy used when a ticket names a policy id this gate does not know: the strictest.
STRICTEST = EntryPolicy(policy_id=0, name="single")


def evaluate_entry(policy: EntryPolicy, state: EntryState, now: float) -> tuple[Reason, tuple[str, ...]]:
    """Decide an entry attempt for a ticket already known to be valid here.

    Returns the reason and any supervisor flags. Pure: state is not changed here; the gate
    applies :func:`record_passage` once the turnstile confirms the fan went through.
    """
    if state.entries == 0:
        return Reason.ADMIT, ()
    if policy.kind is EntryRule.SINGLE:
        return Reason.ALREADY_USED, ()
    if policy.max_entries is not None and state.entries >= policy.max_entries:
        return Reason.ALREADY_USED, ()
    if policy.kind is EntryRule.REENTRY:
        if state.inside:
            return Reason.ALREADY_INSIDE, ()
        return Reason.ADMIT_REENTRY, ()
    # unlimited, with an anti-passback rule
    if policy.passback is Passback.HARD and state.inside:
        return Reason.ALREADY_INSIDE, ()
    if policy.passback is Passback.SOFT and state.inside:
        return Reason.ADMIT_REENTRY, ("passback_soft",)
    if policy.passback is Passback.TIMED and state.last_entry_at is not None:
        if now - state.last_entry_at < policy.passback_wait_s:
            return Reason.ANTI_PASSBACK_WAIT, ()
    return Reason.ADMIT_REENTRY, ()


def record_passage(state: EntryState, direction: Direction, at: float) -> EntryState:
    """The entry state after a confirmed passage through the turnstile."""
    if direction is Direction.OUT:
        return replace(state, inside=False, last_exit_at=at)
    return replace(state, entries=state.entries + 1, inside=True, last_entry_at=at)
