"""Pure transaction-coordinator state and its effects on the cluster state."""

from __future__ import annotations

from kclient.testing.mock.codes import Err
from kclient.testing.mock.state import ClusterState
from kclient.testing.mock.txn import TransactionState, TxnCoordinator

from .helpers import batch


def test_init_bumps_epoch_and_fences_old_instance() -> None:
    txn = TxnCoordinator()
    err, pid, epoch, _ = txn.init_producer_id("tx", 60_000, -1, -1, now=0)
    assert (err, epoch) == (Err.NONE, 0)
    err, pid2, epoch2, _ = txn.init_producer_id("tx", 60_000, -1, -1, now=1)
    assert (pid2, epoch2) == (pid, 1)
    assert txn.check("tx", pid, 0) is Err.PRODUCER_FENCED
    assert txn.check("tx", pid, 2) is Err.INVALID_PRODUCER_EPOCH
    assert txn.check("tx", pid + 1, 1) is Err.INVALID_PRODUCER_ID_MAPPING
    assert txn.init_producer_id("tx", 0, -1, -1, now=2)[0] is Err.INVALID_TRANSACTION_TIMEOUT


def test_idempotent_init_and_kip360_bump() -> None:
    txn = TxnCoordinator()
    _, pid, epoch, _ = txn.init_producer_id(None, 0, -1, -1, now=0)
    assert txn.init_producer_id(None, 0, pid, epoch, now=0)[1:3] == (pid, epoch + 1)


def test_end_txn_states_and_retry() -> None:
    txn = TxnCoordinator()
    _, pid, epoch, _ = txn.init_producer_id("tx", 60_000, -1, -1, now=0)
    assert txn.end("tx", pid, epoch, commit=True)[0] is Err.INVALID_TXN_STATE
    txn.add("tx", partitions=(("t", 0),), now=0)
    assert txn.partition_in_txn(pid, "t", 0)
    err, effect = txn.end("tx", pid, epoch, commit=True)
    assert err is Err.NONE and effect is not None and effect.partitions == (("t", 0),)
    assert txn.entries["tx"].state is TransactionState.COMPLETE_COMMIT
    assert txn.end("tx", pid, epoch, commit=True) == (Err.NONE, None)  # retried commit
    assert txn.end("tx", pid, epoch, commit=False)[0] is Err.INVALID_TXN_STATE


def test_timeout_aborts_and_fences() -> None:
    txn = TxnCoordinator()
    _, pid, epoch, _ = txn.init_producer_id("tx", 1000, -1, -1, now=0)
    txn.add("tx", partitions=(("t", 0),), now=0)
    assert txn.expired(now=999) == []
    [effect] = txn.expired(now=1000)
    assert not effect.commit
    assert txn.check("tx", pid, epoch) is Err.PRODUCER_FENCED


def test_cluster_applies_markers_and_txn_offsets() -> None:
    state = ClusterState([1])
    state.create_topic("t")
    part = state.partition("t", 0)
    assert part is not None
    _, pid, epoch, _ = state.txn.init_producer_id("tx", 60_000, -1, -1, now=0)
    state.txn.add("tx", partitions=(("t", 0),), group="g", now=0)
    part.log.append(
        batch([b"x"], producer_id=pid, epoch=epoch, base_sequence=0, transactional=True)
    )
    from kclient.testing.mock.groups import CommittedOffset

    state.txn_offset_commit("g", pid, {("t", 0): CommittedOffset(1, -1, "")})
    group = state.groups["g"]
    assert state.has_pending_txn_offset(group, "t", 0) and group.offsets == {}
    _, effect = state.txn.end("tx", pid, epoch, commit=False)
    assert effect is not None
    state.apply_end_txn(effect, now=5)
    assert part.log.aborted and part.log.last_stable_offset == 2
    assert group.offsets == {} and not state.has_pending_txn_offset(group, "t", 0)
