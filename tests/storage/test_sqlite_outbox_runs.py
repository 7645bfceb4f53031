"""Done outbox messages are deleted by runs of consecutive ids: the runs must cover exactly
the ids given, whatever their order and repeats."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from sinergia.storage.sqlite import id_runs


@given(st.lists(st.integers(min_value=1, max_value=200)))
def test_runs_cover_exactly_the_ids(ids: list[int]) -> None:
    runs = id_runs(ids)
    covered = [i for first, last in runs for i in range(first, last + 1)]
    assert covered == sorted(set(ids))
    # as few runs as there can be: no two of them touch
    assert all(b[0] > a[1] + 1 for a, b in itertools.pairwise(runs))


def test_the_messages_of_a_change_make_one_run() -> None:
    assert id_runs([12, 10, 11, 14, 13]) == [(10, 14)]
    assert id_runs([1, 2, 4]) == [(1, 2), (4, 4)]
    assert id_runs([]) == []
