"""Memory that stays flat whatever the pool's shape: the whole-pool steps on the driver decide as before.

`curation.pool.store.later_equal` (exact-duplicate chain ids at ingest, exact-duplicate chains in dedup) sorts a
sixteenth of the rows at a time; it must find what one sort of every row finds (`first_of_equal`), in pool order.
Majority gold's vote task takes its problems in runs of a bounded number of voters: the votes must not change.
Between stages the run hands the C heap's free pages back (`release_free_memory`): it must, where glibc runs.
"""

from __future__ import annotations

import os
from array import array

import numpy as np
import pytest

from curation.pool.store import first_of_equal, later_equal
from curation.runner import PassCounts, _malloc_trim, key_run, release_free_memory
from curation.stages import majority_gold
from curation.stages.dedup import NEAR_KINDS, PairMatches, compacted, first_kept, lsh_buckets
from tests.curation_outputs import assert_same_outputs


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


def test_lsh_buckets_are_every_band_key_shared_by_two_problems_or_more():
    rng = np.random.default_rng(1)
    bands = rng.integers(0, 30, size=(200, 4)).astype(np.uint32)
    expected = []  # by band, then by key; members in pool order
    for band in range(bands.shape[1]):
        by_key: dict[int, list[int]] = {}
        for position, key in enumerate(bands[:, band].tolist()):
            by_key.setdefault(key, []).append(position)
        expected += [(band, members) for _, members in sorted(by_key.items()) if len(members) > 1]
    members, starts, band_of = lsh_buckets(bands)
    found = [(int(b), members[a:z].tolist()) for b, a, z in zip(band_of, starts[:-1], starts[1:], strict=True)]
    assert found == expected and members.dtype == np.int32
    assert [len(a) for a in lsh_buckets(bands[:0])] == [0, 1, 0]


def test_band_keys_compacted_in_place_are_the_rows_kept():
    rng = np.random.default_rng(2)
    bands = rng.integers(0, 2**32, size=(1000, 8), dtype=np.uint64).astype(np.uint32)
    keep = rng.random(1000) < 0.8
    expected = bands[keep].copy()
    kept = compacted(bands, keep, chunk=7)
    assert np.shares_memory(kept, bands) and np.array_equal(kept, expected)


def test_verified_pairs_held_as_arrays_decide_as_a_dict_of_matches():
    rng = np.random.default_rng(3)
    rows = [(int(e), int(e + d), round(float(rng.random()), 4), NEAR_KINDS[int(rng.integers(2))])
            for e, d in zip(rng.integers(0, 300, 400), rng.integers(1, 30, 400), strict=True)]  # fmt: skip
    matches: dict[int, dict[int, dict]] = {}
    columns = [array("q"), array("q"), array("d"), array("b")]
    for earlier, later, similarity, kind in rows:
        matches.setdefault(later, {})[earlier] = {"match": kind, "similarity": similarity}
        for column, value in zip(columns, (later, earlier, similarity, NEAR_KINDS.index(kind)), strict=True):
            column.append(value)
    pairs = PairMatches(*columns)
    assert dict(pairs) == matches and 9999 not in pairs
    problems = list(range(340))
    assert first_kept(problems, pairs, "near") == first_kept(problems, matches, "near")


def test_key_run_is_the_slice_of_a_key_in_sorted_keys_of_either_width():
    rng = np.random.default_rng(3)
    values = np.sort(rng.integers(0, 60, size=400))
    for keys in (values.astype(np.int32), values.astype(np.int64)):
        for key in range(-1, 62):  # absent keys too, below, inside and above the range
            where = np.flatnonzero(values == key).tolist()
            low, high = key_run(keys, key)
            assert list(range(low, high)) == where
            assert low == int(np.sum(values < key))  # an absent key's empty slice sits where it would go


def test_pass_counts_keep_the_pairs_that_tried_and_read_per_problem():
    rng = np.random.default_rng(4)
    names = [f"model-{g}" for g in range(50)]
    dense_tries = rng.integers(0, 3, size=(50, 400)) * (rng.random((50, 400)) < 0.1)  # generator x problem
    dense_right = np.minimum(dense_tries, rng.integers(0, 3, size=(50, 400)))
    parts = [(np.arange(400), np.full(400, g), dense_right[g], dense_tries[g]) for g in range(50)]
    counts = PassCounts.of_pairs(names, parts)
    assert len(counts.problem) == int((dense_tries > 0).sum())
    for problem in range(400):
        tried = np.flatnonzero(dense_tries[:, problem]).tolist()
        expected = {names[g]: [int(dense_right[g, problem]), int(dense_tries[g, problem])] for g in tried}
        assert counts.of(problem) == expected and list(counts.of(problem)) == [names[g] for g in tried]


@pytest.mark.shared_data
def test_votes_taken_a_few_voters_at_a_time_are_the_votes_taken_at_once(shared_data, tmp_path, monkeypatch):
    """A vote task holds the answers of `VOTERS_AT_ONCE` chains at most (a run of problems; all of one problem's):
    cut into runs of one problem each, the golds, drops and outputs are those of one run over every problem."""
    from tests.test_majority_gold import curate, stages, write_pool

    pool, truth = write_pool(shared_data, tmp_path, with_gold=2)
    curate(stages(pool), tmp_path / "at_once")
    runs: list[list[int]] = []
    cut = majority_gold._runs

    def recorded(item, problems):
        for run in cut(item, problems):
            runs.append(run)
            yield run

    monkeypatch.setattr(majority_gold, "VOTERS_AT_ONCE", 2)  # fewer than a problem's chains: one problem a run
    monkeypatch.setattr(majority_gold, "_runs", recorded)  # the local executor runs the tasks in this process
    curate(stages(pool), tmp_path / "in_runs")
    assert len(runs) == len(truth) and all(len(run) == 1 for run in runs)
    assert_same_outputs(tmp_path / "at_once" / "curate", tmp_path / "in_runs" / "curate", ("local", "local"))


def _resident_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.mark.skipif(_malloc_trim() is None, reason="the C library has no malloc_trim (not glibc)")
def test_free_heap_pages_go_back_to_the_system_between_stages():
    blocks = [bytes(2000) + bytes([i % 251]) for i in range(60_000)]  # 120 MB in glibc's heap (over pymalloc's size)
    pinned = bytes(2000) + b"top"  # allocated after them: the heap's top is in use, so free() alone keeps the pages
    before = _resident_mb()
    del blocks
    kept = _resident_mb()
    release_free_memory()
    after = _resident_mb()
    assert kept > before - 30 and after < kept - 80, (before, kept, after)
    assert pinned.endswith(b"top")
