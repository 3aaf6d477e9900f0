"""Unit tests of the core's small value types."""

from __future__ import annotations

import pytest

from django_websocket.events import Fifo


def test_fifo_is_first_in_first_out_across_appends_and_pops():
    fifo: Fifo[int] = Fifo()
    assert not fifo and len(fifo) == 0
    expected = []
    for round_ in range(50):
        fifo.extend(list(range(round_ * 10, round_ * 10 + 7)))
        fifo.append(round_ * 10 + 7)
        expected.extend(range(round_ * 10, round_ * 10 + 8))
        for _ in range(5):
            assert fifo.popleft() == expected.pop(0)
        assert len(fifo) == len(expected)
    assert [fifo.popleft() for _ in range(len(fifo))] == expected
    assert not fifo
    with pytest.raises(IndexError):
        fifo.popleft()


def test_fifo_drops_what_it_handed_out():
    fifo: Fifo[object] = Fifo()
    fifo.extend([object() for _ in range(10_000)])  # ten thousand tiny frames in one read
    for _ in range(9_999):
        fifo.popleft()
    assert len(fifo._items) < 10_000  # compacted as it goes, not kept whole
    assert sum(item is not None for item in fifo._items) == 1
    fifo.clear()
    assert len(fifo) == 0 and fifo._items == []
