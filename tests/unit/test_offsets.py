from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from pipeline.offsets import OffsetBook, PartitionOffsets
from pipeline.records import Source


def test_the_watermark_waits_for_the_oldest_unanswered_offset() -> None:
    partition = PartitionOffsets()
    for offset in range(10, 15):
        partition.consumed(offset)
    assert partition.committable() == 10
    partition.completed(12)
    partition.completed(11)
    assert partition.committable() == 10
    partition.completed(10)
    assert partition.committable() == 13
    partition.completed(13)
    partition.completed(14)
    assert partition.committable() == 15
    assert len(partition) == 0


@given(st.integers(1, 60), st.randoms(use_true_random=False))
def test_the_committable_offset_never_passes_an_unanswered_event(count: int, rnd: random.Random) -> None:
    partition = PartitionOffsets()
    for offset in range(count):
        partition.consumed(offset)
    order = list(range(count))
    rnd.shuffle(order)
    answered: set[int] = set()
    for offset in order:
        partition.completed(offset)
        answered.add(offset)
        committable = partition.committable()
        assert committable is not None
        assert all(o in answered for o in range(committable))  # everything below is answered...
        assert committable == count or committable not in answered  # ...and it stops at the first gap
    assert partition.committable() == count


def test_the_book_reports_only_moved_watermarks_and_forgets_revoked_partitions() -> None:
    book = OffsetBook()
    for offset in range(3):
        book.consumed(Source("t", 0, offset))
        book.consumed(Source("t", 1, offset))
    book.completed(Source("t", 0, 0))
    assert book.pending == 5
    assert book.to_commit() == {("t", 0): 1, ("t", 1): 0}
    book.committed({("t", 0): 1, ("t", 1): 0})
    assert book.to_commit() == {}
    book.completed(Source("t", 1, 0))
    assert book.to_commit([("t", 1)]) == {("t", 1): 1}
    assert book.pending_in([("t", 1)]) == 2
    book.revoke([("t", 1)])
    assert book.pending == 2
    book.completed(Source("t", 1, 1))  # a late answer for a partition given up: ignored
    assert book.pending == 2


def test_late_answers_of_an_earlier_ownership_leave_nothing_behind() -> None:
    book = OffsetBook()
    for offset in range(100, 106):
        book.consumed(Source("t", 0, offset))
    book.revoke([("t", 0)])
    # Another instance owned the partition meanwhile and committed up to 200; it comes back to this one.
    book.consumed(Source("t", 0, 200))
    for offset in (103, 104, 250):  # answers for the old copies arrive late; 250 was never read
        book.completed(Source("t", 0, offset))
    partition = book._partitions["t", 0]
    assert partition._done == set()
    assert book.pending == 1
    book.completed(Source("t", 0, 200))
    assert (book.pending, book.to_commit()) == (0, {("t", 0): 201})


def test_pending_bytes_follow_the_watermark_and_a_revoke() -> None:
    book = OffsetBook()
    for offset, size in ((0, 100), (1, 200), (2, 300)):
        book.consumed(Source("t", 0, offset), size)
    book.consumed(Source("t", 1, 0), 50)
    assert book.pending_bytes == 650
    book.completed(Source("t", 0, 1))
    assert book.pending_bytes == 650  # behind the oldest unanswered one, it still counts, as `pending` does
    book.completed(Source("t", 0, 0))
    assert book.pending_bytes == 350
    book.revoke([("t", 0)])
    assert (book.pending, book.pending_bytes) == (1, 50)
