"""Memory that stays flat whatever the pool's shape: the whole-pool steps on the driver decide as before.

`curation.pool.store.later_equal` (exact-duplicate chain ids at ingest, exact-duplicate chains in dedup) sorts a
sixteenth of the rows at a time; it must find what one sort of every row finds (`first_of_equal`), in pool order.
"""

from __future__ import annotations

import numpy as np

from curation.pool.store import first_of_equal, later_equal


def test_later_equal_finds_what_one_sort_of_every_row_finds():
    rng = np.random.default_rng(0)
    distinct = rng.integers(0, 2**63, size=(500, 3), dtype=np.uint64) * np.uint64(2)  # top bits vary too
    keys = distinct[rng.integers(0, len(distinct), size=5000)]  # about ten copies of each, in random order
    keys[::7, 0] = np.uint64(11)  # rows equal but for the first column are not equal
    first, kept = first_of_equal(keys)
    later, first_rows = later_equal(keys, split_column=1)
    assert later.tolist() == np.flatnonzero(~first).tolist()
    assert first_rows.tolist() == kept[~first].tolist()
    assert (first_rows < later).all()  # the first in pool order stays


def test_later_equal_on_no_rows_and_on_distinct_rows():
    empty = np.zeros((0, 2), dtype=np.uint64)
    assert [a.tolist() for a in later_equal(empty, 0)] == [[], []]
    distinct = np.arange(40, dtype=np.uint64).reshape(20, 2) << np.uint64(58)
    assert [a.tolist() for a in later_equal(distinct, 0)] == [[], []]
