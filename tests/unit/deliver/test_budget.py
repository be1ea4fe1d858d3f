"""The group's split of Marketo's limits, as the leader makes it and each member reads it."""

from __future__ import annotations

import pytest
from aiokafka.coordinator.protocol import ConsumerProtocol, ConsumerProtocolMemberMetadata
from hypothesis import given
from hypothesis import strategies as st

from pipeline.deliver.budget import BudgetAssignor, Share, part


class Cluster:
    def __init__(self, partitions: dict[str, int]) -> None:
        self._partitions = partitions

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        count = self._partitions.get(topic)
        return None if count is None else set(range(count))


def _assign(
    members: int, partitions: int, max_members: int = 10, calls: int = 100
) -> dict[str, tuple[list[int], Share | None]]:
    """Each member's partitions and share, as the member reads them from the bytes the leader sends."""
    leader = BudgetAssignor(calls, max_members)
    metadata = {f"member-{n:02d}": leader.metadata(["leads"]) for n in range(members)}
    # the metadata crosses the wire too
    metadata = {
        m: ConsumerProtocolMemberMetadata.decode(ConsumerProtocolMemberMetadata.encode(meta))
        for m, meta in metadata.items()
    }
    found = {}
    for member, assignment in leader.assign(Cluster({"leads": partitions}), metadata).items():
        received = ConsumerProtocol.ASSIGNMENT.decode(assignment.encode())
        reader = BudgetAssignor(calls, max_members)
        reader.on_assignment(received)
        found[member] = ([tp.partition for tp in received.partitions()], reader.share)
    return found


@given(
    members=st.integers(1, 14), partitions=st.integers(1, 24), calls=st.integers(1, 500), concurrency=st.integers(1, 12)
)
def test_the_members_shares_sum_to_the_limits_and_every_partition_has_one_owner(
    members: int, partitions: int, calls: int, concurrency: int
) -> None:
    found = _assign(members, partitions, max_members=concurrency, calls=calls)
    owned = sorted(p for parts, _ in found.values() for p in parts)
    assert owned == list(range(partitions))
    shares = [share for _, share in found.values()]
    assert all(share is not None for share in shares)
    assert sum(share.calls for share in shares if share is not None) == calls
    assert sum(share.concurrency for share in shares if share is not None) == concurrency
    # a member with work has at least one call and one concurrent call; a member without partitions has none
    for parts, share in found.values():
        assert share is not None
        assert (share.calls > 0) == bool(parts)
        assert (share.concurrency > 0) == bool(parts)
    working = [parts for parts, _ in found.values() if parts]
    assert max(map(len, working)) - min(map(len, working)) <= 1  # round robin


def test_members_beyond_marketo_concurrency_wait_as_standbys() -> None:
    found = _assign(members=12, partitions=24, max_members=10)
    standbys = [member for member, (parts, _) in found.items() if not parts]
    assert standbys == ["member-10", "member-11"]
    assert all(share == Share(-1, 10, 0, 0) for member, (_, share) in found.items() if member in standbys)
    assert {share.calls for _, share in found.values() if share is not None} == {10, 0}


def test_three_members_share_one_hundred_calls_and_ten_concurrent_calls() -> None:
    shares = [share for _, share in _assign(members=3, partitions=6).values()]
    assert sorted(s.calls for s in shares if s is not None) == [33, 33, 34]
    assert sorted(s.concurrency for s in shares if s is not None) == [3, 3, 4]
    assert [part(10, rank, 3) for rank in range(3)] == [4, 3, 3]


def test_the_leader_splits_the_lowest_limits_any_member_has_set() -> None:
    """A change of settings rolls out member by member: meanwhile the group holds the lower of the two."""
    leader, lowered = BudgetAssignor(100, 10), BudgetAssignor(60, 4)
    metadata = {
        "member-a": leader.metadata(["leads"]),
        "member-b": lowered.metadata(["leads"]),
        "member-c": leader.metadata(["leads"]),
    }
    shares = []
    for assignment in leader.assign(Cluster({"leads": 6}), metadata).values():
        reader = BudgetAssignor(100, 10)
        reader.on_assignment(ConsumerProtocol.ASSIGNMENT.decode(assignment.encode()))
        shares.append(reader.share)
    assert sum(s.calls for s in shares if s is not None) == 60
    assert sum(s.concurrency for s in shares if s is not None) == 4
    assert all(s is not None and s.calls > 0 and s.concurrency > 0 for s in shares)


def test_no_member_gets_partitions_without_a_call_to_make() -> None:
    # five calls per 20 s among eight members: three would have nothing to call with, so they get no partition
    found = _assign(members=8, partitions=8, max_members=10, calls=5)
    working = [(parts, share) for parts, share in found.values() if parts]
    assert len(working) == 5
    assert all(share is not None and share.calls == 1 for _, share in working)


@pytest.mark.parametrize("user_data", [b"", b"\x00", b"junk-of-another-assignor"])
def test_an_assignment_without_a_share_leaves_none(user_data: bytes) -> None:
    reader = BudgetAssignor(100, 10)
    reader.share = Share(0, 1, 100, 10)
    reader.on_assignment(ConsumerProtocol.ASSIGNMENT(0, [("leads", [0])], user_data))
    assert reader.share is None


def test_partitions_are_dealt_so_that_each_member_gets_an_even_part_of_the_backlog() -> None:
    leader = BudgetAssignor(100, 10)
    old = BudgetAssignor(100, 10)
    # the old member held partitions 0-5; 0 and 1 are far behind, the rest nearly done; 6-11 belonged to a member
    # that is gone (nobody reports them): they count as the furthest behind
    old.backlog = {("leads", 0): 900, ("leads", 1): 900, **{("leads", p): 10 for p in range(2, 6)}}
    newcomer = BudgetAssignor(100, 10)
    metadata = {
        "member-a": ConsumerProtocolMemberMetadata.decode(old.metadata(["leads"]).encode()),
        "member-b": ConsumerProtocolMemberMetadata.decode(newcomer.metadata(["leads"]).encode()),
    }
    assignment = leader.assign(Cluster({"leads": 12}), metadata)
    owned = {m: {tp.partition for tp in a.partitions()} for m, a in assignment.items()}
    weight = {p: 900 if p < 2 or p >= 6 else 10 for p in range(12)}
    loads = sorted(sum(weight[p] for p in parts) for parts in owned.values())
    assert loads[1] - loads[0] <= 900  # within one partition of each other
    assert owned["member-a"] | owned["member-b"] == set(range(12))
    assert owned["member-a"] & owned["member-b"] == set()
    # a round robin would have given one member 0, 2, 4, ... and the other 1, 3, 5, ...: here the heavy ones split
    heavy = {0, 1, 6, 7, 8, 9, 10, 11}
    assert abs(len(owned["member-a"] & heavy) - len(owned["member-b"] & heavy)) <= 1


@pytest.mark.parametrize(
    "report", [b"not json", b"[1]", b'{"backlog": [["leads", "x", 3]]}', b'{"backlog": [[1]]}', b'{"calls": "x"}']
)
def test_a_report_that_cannot_be_read_is_ignored(report: bytes) -> None:
    leader = BudgetAssignor(100, 10)
    metadata = {
        "member-a": ConsumerProtocolMemberMetadata(0, ["leads"], report),
        "member-b": ConsumerProtocolMemberMetadata(0, ["leads"], b""),
    }
    assignment = leader.assign(Cluster({"leads": 4}), metadata)
    assert sorted(len(a.partitions()) for a in assignment.values()) == [2, 2]


def test_with_a_member_of_an_older_release_in_the_group_no_member_of_this_one_gets_a_share() -> None:
    """A rolling upgrade: the older member (round robin, which says nothing) keeps the limits its settings give it."""
    leader = BudgetAssignor(100, 10)
    metadata = {
        "member-new": leader.metadata(["leads"]),
        "member-old": ConsumerProtocolMemberMetadata(0, ["leads"], b""),
    }
    assert leader.name == "roundrobin"  # one protocol for both releases: one group through the upgrade
    shares = []
    for assignment in leader.assign(Cluster({"leads": 4}), metadata).values():
        reader = BudgetAssignor(100, 10)
        reader.on_assignment(ConsumerProtocol.ASSIGNMENT.decode(assignment.encode()))
        assert len(assignment.partitions()) == 2
        shares.append(reader.share)
    assert all(s is not None and (s.calls, s.concurrency) == (0, 0) for s in shares)
    # and a member of this release assigned by an older leader (no share in the assignment) knows none
    reader = BudgetAssignor(100, 10)
    reader.on_assignment(ConsumerProtocol.ASSIGNMENT(0, [("leads", [0, 1])], b""))
    assert reader.share is None
