from __future__ import annotations

from journeys.events_queue import chunks


def test_chunks_respect_sqs_batch_limits_and_order() -> None:
    assert [len(c) for c in chunks([f"m{i}" for i in range(25)])] == [10, 10, 5]
    big = ["x" * 100_000] * 4  # 256 KiB per batch: two fit, a third does not
    assert [len(c) for c in chunks(big)] == [2, 2]
    assert [m for chunk in chunks(big) for m in chunk] == big
    assert list(chunks([])) == []
