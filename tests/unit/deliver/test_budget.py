"""The group's split of Marketo's limits, as the leader makes it and each member reads it."""

from __future__ import annotations

import pytest
from aiokafka.coordinator.protocol import ConsumerProtocol, ConsumerProtocolMemberMetadata
from hypothesis import given
from hypothesis import strategies as st

from pipeline.deliver.budget import BudgetAssignor, Share


class Cluster:
    def __init__(self, partitions: dict[str, int]) -> None:
        self._partitions = partitions

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        count = self._partitions.get(topic)
        return None if count is None else set(range(count))


def _assign(members: int, partitions: int, max_members: int = 10) -> dict[str, tuple[list[int], Share | None]]:
    """Each member's partitions and share, as the member reads them from the bytes the leader sends."""
    leader = BudgetAssignor(max_members)
    metadata = {f"member-{n:02d}": leader.metadata(["leads"]) for n in range(members)}
    # the metadata crosses the wire too
    metadata = {
        m: ConsumerProtocolMemberMetadata.decode(ConsumerProtocolMemberMetadata.encode(meta))
        for m, meta in metadata.items()
    }
    found = {}
    for member, assignment in leader.assign(Cluster({"leads": partitions}), metadata).items():
        received = ConsumerProtocol.ASSIGNMENT.decode(assignment.encode())
        reader = BudgetAssignor(max_members)
        reader.on_assignment(received)
        found[member] = ([tp.partition for tp in received.partitions()], reader.share)
    return found


@given(members=st.integers(1, 14), partitions=st.integers(1, 24), total=st.integers(1, 500))
def test_the_members_shares_sum_to_the_limit_and_every_partition_has_one_owner(
    members: int, partitions: int, total: int
) -> None:
    found = _assign(members, partitions)
    owned = sorted(p for parts, _ in found.values() for p in parts)
    assert owned == list(range(partitions))
    shares = [share for _, share in found.values()]
    assert all(share is not None for share in shares)
    assert sum(share.of(total) for share in shares if share is not None) == total
    # a member with work has a share of the concurrency (10); a member without partitions has none
    for parts, share in found.values():
        assert share is not None
        assert (share.of(10) > 0) == bool(parts)
    working = [parts for parts, _ in found.values() if parts]
    assert max(map(len, working)) - min(map(len, working)) <= 1  # round robin


def test_members_beyond_marketo_concurrency_wait_as_standbys() -> None:
    found = _assign(members=12, partitions=24, max_members=10)
    standbys = [member for member, (parts, _) in found.items() if not parts]
    assert standbys == ["member-10", "member-11"]
    assert all(share == Share(-1, 10) for member, (_, share) in found.items() if member in standbys)
    assert {share.of(100) for _, share in found.values() if share is not None} == {10, 0}


def test_three_members_share_one_hundred_calls_and_ten_concurrent_calls() -> None:
    shares = [share for _, share in _assign(members=3, partitions=6).values()]
    assert sorted(s.of(100) for s in shares if s is not None) == [33, 33, 34]
    assert sorted(s.of(10) for s in shares if s is not None) == [3, 3, 4]


@pytest.mark.parametrize("user_data", [b"", b"\x00", b"junk-of-another-assignor"])
def test_an_assignment_without_a_share_leaves_none(user_data: bytes) -> None:
    reader = BudgetAssignor(10)
    reader.share = Share(0, 1)
    reader.on_assignment(ConsumerProtocol.ASSIGNMENT(0, [("leads", [0])], user_data))
    assert reader.share is None
