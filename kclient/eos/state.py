"""The pure half of the consume-transform-produce session: what one transaction holds
and whether it may commit.

:class:`SessionState` never awaits and never touches a client. The driver
(``session.py``) tells it what happened (a transaction began, records were handed out
under a group identity, an end was tried) and asks it what to do:

* :meth:`SessionState.decide_end` returns an :class:`EndDecision`: commit these offsets,
  or abort for this reason. It aborts when the transaction was doomed earlier (an
  abortable error, the application asked) or when the group moved under it: the
  generation or member id differs from the one the first records were handed out
  under (a rebalance completed, or membership was lost), or a partition the
  transaction consumed is no longer assigned.
* after an abort, :meth:`SessionState.rewind_plan` says where each consumed partition
  must go back to when the group has no committed offset for it (the first offset
  handed out in the transaction); a committed offset, when there is one, wins.

Why the generation and not a rebalance listener: the consumer runs revocations inside
the application's next poll, so in the usual loop (poll, produce, commit) a rebalance
cannot complete before the commit; a generation change seen at commit time therefore
means the transaction really straddled a rebalance (records before and after it, or a
lost membership), and its offsets must not be committed.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

from kclient.errors import IllegalStateError
from kclient.structs import TopicPartition

__all__ = ["EndDecision", "GroupIdentity", "Phase", "SessionState"]

#: (generation id, member id) of the consumer when records were handed out.
GroupIdentity = tuple[int, str]


class Phase(enum.Enum):
    IDLE = "idle"  # no transaction open
    OPEN = "open"  # a transaction is open (maybe empty)
    ENDING = "ending"  # an end was decided and is under way (or failed and must be retried)
    FAILED = "failed"  # a fatal error: every call raises it


@dataclass(slots=True)
class _Span:
    first: int  # offset of the first record handed out in this transaction
    next: int  # offset after the last one: what the commit stores


@dataclass(frozen=True, slots=True)
class EndDecision:
    """``commit`` with ``offsets`` (next offset to read per partition), or abort with
    ``reason`` (why the transaction cannot commit)."""

    commit: bool
    offsets: Mapping[TopicPartition, int]
    reason: str = ""


class SessionState:
    """One session's bookkeeping; see the module docstring."""

    def __init__(self) -> None:
        self.phase = Phase.IDLE
        self.identity: GroupIdentity | None = None
        self._spans: dict[TopicPartition, _Span] = {}
        self.doomed: str | None = None
        self.decision: EndDecision | None = None
        self.offsets_sent = False  # TxnOffsetCommit confirmed for this transaction
        self.commit_started = False  # commit_transaction() was called
        # After an abort: partition -> offset to fall back to; None when nothing waits.
        self._rewind: dict[TopicPartition, int] | None = None
        self.fatal: BaseException | None = None

    # -- facts reported by the driver ------------------------------------------------------

    def begun(self) -> None:
        self._check_usable()
        if self.phase is not Phase.IDLE:
            raise IllegalStateError(f"cannot begin a transaction while {self.phase.value}")
        self.phase = Phase.OPEN
        self.identity = None
        self._spans = {}
        self.doomed = None
        self.decision = None
        self.offsets_sent = False
        self.commit_started = False

    def handed_out(
        self, offsets: Mapping[TopicPartition, Collection[int]], identity: GroupIdentity
    ) -> None:
        """Records (their offsets, ascending per partition) went to the application
        while the consumer had ``identity``."""
        if self.phase is not Phase.OPEN:
            raise IllegalStateError("records handed out with no open transaction")
        if not any(offsets.values()):
            return
        if self.identity is None:
            self.identity = identity
        elif identity != self.identity:
            self.doom(_moved(self.identity, identity))
        for tp, got in offsets.items():
            if not got:
                continue
            first, last = min(got), max(got)
            span = self._spans.get(tp)
            if span is None:
                self._spans[tp] = _Span(first, last + 1)
            else:
                span.first = min(span.first, first)
                span.next = max(span.next, last + 1)

    def doom(self, reason: str) -> None:
        """The open transaction can only abort (the first reason is kept)."""
        if self.phase in (Phase.OPEN, Phase.ENDING) and self.doomed is None:
            self.doomed = reason

    def failed(self, error: BaseException) -> None:
        self.phase = Phase.FAILED
        self.fatal = error
        self._rewind = None

    # -- decisions -------------------------------------------------------------------------

    @property
    def consumed(self) -> frozenset[TopicPartition]:
        return frozenset(self._spans)

    def decide_end(
        self, identity: GroupIdentity, assignment: Collection[TopicPartition], *, commit: bool
    ) -> EndDecision:
        """What ending the open transaction must do now. An abort decision stands until
        the end is reported. A commit decision is made afresh by every call (a retried
        ``commit()`` after a timeout checks the group again) until the driver has asked
        the producer to commit (``commit_started``); from then on it stands unless the
        commit failed in a way that dooms the transaction."""
        self._check_usable()
        if self.phase is Phase.IDLE:
            raise IllegalStateError("no transaction is open")
        if not commit:
            self.doom("the application aborted")
        previous = self.decision
        if previous is not None:
            if not previous.commit:
                return previous
            if self.commit_started and self.doomed is None:
                return previous  # EndTxn(commit) may be under way: it cannot be withdrawn
        reason = self.doomed or ""
        if not reason and self._spans:
            assert self.identity is not None
            if identity != self.identity:
                reason = _moved(self.identity, identity)
            else:
                gone = sorted(set(self._spans) - set(assignment))
                if gone:
                    reason = f"partitions {_names(gone)} are no longer assigned"
        if reason:
            self.doom(reason)
            decision = EndDecision(False, {}, reason)
        else:
            decision = EndDecision(True, {tp: s.next for tp, s in self._spans.items()})
        self.phase = Phase.ENDING
        self.decision = decision
        return decision

    def ended(self, *, committed: bool) -> None:
        """The transaction is over. After an abort the consumed partitions must be
        rewound before anything else is handed out."""
        if not committed and self._spans:
            self._rewind = {tp: s.first for tp, s in self._spans.items()}
        self.phase = Phase.IDLE
        self.identity = None
        self._spans = {}
        self.doomed = None
        self.decision = None
        self.offsets_sent = False
        self.commit_started = False

    def rewind_plan(self) -> dict[TopicPartition, int] | None:
        """Fallback offsets of the partitions still to rewind, or None."""
        return None if self._rewind is None else dict(self._rewind)

    def rewound(self, partitions: Iterable[TopicPartition]) -> None:
        if self._rewind is None:
            return
        for tp in partitions:
            self._rewind.pop(tp, None)
        if not self._rewind:
            self._rewind = None

    def _check_usable(self) -> None:
        if self.fatal is not None:
            raise self.fatal


def _moved(before: GroupIdentity, now: GroupIdentity) -> str:
    return (
        f"the consumer group moved during the transaction (generation {before[0]} member "
        f"{before[1]!r} -> generation {now[0]} member {now[1]!r})"
    )


def _names(tps: Iterable[TopicPartition]) -> str:
    return ", ".join(f"{tp.topic}-{tp.partition}" for tp in tps)
