"""Pure group-coordinator state machine."""

from __future__ import annotations

from kclient.testing.mock.codes import Err
from kclient.testing.mock.groups import Group, GroupState, JoinResult, Reply, SyncResult


def join(
    g: Group,
    token: str,
    member_id: str = "",
    now: int = 0,
    instance: str | None = None,
    protos: list[tuple[str, bytes]] | None = None,
) -> list[Reply]:
    return g.join(
        token,
        member_id=member_id,
        instance_id=instance,
        protocol_type="consumer",
        protocols=protos or [("range", b"m-" + token.encode())],
        session_timeout_ms=100,
        rebalance_timeout_ms=300,
        client_id="c",
        client_host="/127.0.0.1",
        require_known_member=True,
        now=now,
    )


def only(replies: list[Reply]) -> JoinResult:
    assert len(replies) == 1
    result = replies[0].result
    assert isinstance(result, JoinResult)
    return result


def join_new(g: Group, token: str, now: int = 0) -> tuple[str, list[Reply]]:
    first = only(join(g, token, now=now))
    assert first.error is Err.MEMBER_ID_REQUIRED
    return first.member_id, join(g, token, first.member_id, now)


def test_single_member_lifecycle() -> None:
    g = Group("g")
    mid, replies = join_new(g, "a")
    res = only(replies)
    assert (res.error, res.generation, res.leader, res.protocol_name) == (Err.NONE, 1, mid, "range")
    assert [m[0] for m in res.members] == [mid]
    assert g.state is GroupState.COMPLETING_REBALANCE
    sync = g.sync(
        "s", member_id=mid, instance_id=None, generation=1, assignments={mid: b"A"}, now=0
    )
    assert sync == [Reply("s", SyncResult(Err.NONE, "consumer", "range", b"A"))]
    assert g.state.value == "Stable"
    assert g.heartbeat(mid, None, 1, now=50) is Err.NONE
    assert g.heartbeat(mid, None, 0, now=50) is Err.ILLEGAL_GENERATION
    assert g.heartbeat("nobody", None, 1, now=50) is Err.UNKNOWN_MEMBER_ID
    err, _ = g.leave(mid, None, now=60)
    assert err is Err.NONE and g.state.value == "Empty"


def test_second_member_triggers_rebalance_and_waits_for_first() -> None:
    g = Group("g")
    a, replies = join_new(g, "a")
    g.sync("sa", member_id=a, instance_id=None, generation=1, assignments={a: b"all"}, now=0)
    b, replies = join_new(g, "b", now=10)
    assert replies == []  # b parked until a rejoins
    assert g.state is GroupState.PREPARING_REBALANCE
    assert g.heartbeat(a, None, 1, now=20) is Err.REBALANCE_IN_PROGRESS
    replies = join(g, "a2", a, now=30)
    results = {r.token: r.result for r in replies}
    assert set(results) == {"a2", "b"}
    ra, rb = results["a2"], results["b"]
    assert isinstance(ra, JoinResult) and isinstance(rb, JoinResult)
    assert ra.generation == rb.generation == 2 and ra.leader == a and rb.members == ()
    assert len(ra.members) == 2
    # follower syncs first and waits; the leader's sync releases both
    assert g.sync("sb", member_id=b, instance_id=None, generation=2, assignments={}, now=31) == []
    out = g.sync(
        "sa", member_id=a, instance_id=None, generation=2, assignments={a: b"p0", b: b"p1"}, now=32
    )
    assert {r.token: r.result.assignment for r in out if isinstance(r.result, SyncResult)} == {
        "sa": b"p0",
        "sb": b"p1",
    }


def test_rebalance_timeout_drops_members_that_do_not_rejoin() -> None:
    g = Group("g")
    a, _ = join_new(g, "a")
    g.sync("s", member_id=a, instance_id=None, generation=1, assignments={}, now=0)
    b, replies = join_new(g, "b", now=10)
    assert replies == []
    g.heartbeat(a, None, 1, now=50)  # a keeps its session but never rejoins
    replies = g.tick(now=10 + 300)
    assert [r.token for r in replies] == ["b"]
    res = replies[0].result
    assert isinstance(res, JoinResult) and res.leader == b and res.generation == 2
    assert list(g.members) == [b]


def test_session_timeout_expires_member() -> None:
    g = Group("g")
    a, _ = join_new(g, "a")
    g.sync("s", member_id=a, instance_id=None, generation=1, assignments={}, now=0)
    assert g.next_deadline() == 100
    g.tick(now=99)
    assert a in g.members
    g.tick(now=100)
    assert g.members == {} and g.state is GroupState.EMPTY and g.generation == 2


def test_pending_member_id_expires() -> None:
    g = Group("g")
    first = only(join(g, "a"))
    g.tick(now=500)
    assert only(join(g, "a", first.member_id, now=500)).error is Err.UNKNOWN_MEMBER_ID


def test_static_restart_in_stable_group_keeps_generation() -> None:
    g = Group("g")
    leader, _ = join_new(g, "l")
    protos = [("range", b"same")]
    res = join(g, "f", instance="i1", now=1, protos=protos)
    assert res == []
    out = join(g, "l2", leader, now=2)
    follower = next(r.result for r in out if r.token == "f")
    assert isinstance(follower, JoinResult)
    g.sync(
        "s1",
        member_id=leader,
        instance_id=None,
        generation=2,
        assignments={leader: b"L", follower.member_id: b"F"},
        now=3,
    )
    assert g.state is GroupState.STABLE
    # the static follower restarts: new member id, no rebalance, same assignment
    again = only(join(g, "f2", instance="i1", now=4, protos=protos))
    assert again.generation == 2 and again.member_id != follower.member_id
    assert g.state is GroupState.STABLE
    s = g.sync(
        "s2", member_id=again.member_id, instance_id="i1", generation=2, assignments={}, now=5
    )
    assert isinstance(s[0].result, SyncResult) and s[0].result.assignment == b"F"
    assert g.heartbeat(follower.member_id, "i1", 2, now=6) is Err.FENCED_INSTANCE_ID


def test_commit_rules() -> None:
    g = Group("g")
    assert g.check_commit("", None, -1) is Err.NONE  # empty group: simple commit
    a, _ = join_new(g, "a")
    assert g.check_commit(a, None, 1) is Err.REBALANCE_IN_PROGRESS  # completing
    g.sync("s", member_id=a, instance_id=None, generation=1, assignments={}, now=0)
    assert g.check_commit(a, None, 1) is Err.NONE
    assert g.check_commit(a, None, 0) is Err.ILLEGAL_GENERATION
    assert g.check_commit("", None, -1) is Err.ILLEGAL_GENERATION


def test_inconsistent_protocol() -> None:
    g = Group("g")
    join_new(g, "a")
    first = only(join(g, "b", protos=[("roundrobin", b"")]))
    assert first.error is Err.INCONSISTENT_GROUP_PROTOCOL
