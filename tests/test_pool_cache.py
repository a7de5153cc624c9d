"""The machine's shared pool stores (`curation.pool.store.shared_pools`): a second run of the same pool in another
folder links the finished store instead of ingesting again; another pool, another version of the code, a hub
dataset without a revision or ``LIMO_POOL_CACHE=0`` ingest for themselves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from curation.options import IngestOptions, StageOptions
from curation.pool import store as pool_store


def write_pool(path: Path, problems: int = 3) -> Path:
    rows = [
        {
            "id": f"p{i}",
            "problem": f"What is {i} + {i}?",
            "answer": str(2 * i),
            "chain": f"{i} + {i} = \\boxed{{{2 * i}}}",
        }
        for i in range(problems)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def ingests(tmp_path, monkeypatch) -> list[Path]:
    """Every folder ingest fills, this test's cache folder standing for the machine's."""
    monkeypatch.setenv("LIMO_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv(pool_store.SHARED_ENV, raising=False)
    filled: list[Path] = []
    real = pool_store.ingest_to

    def counted(folder, stages, rows_per_part):
        filled.append(folder)
        real(folder, stages, rows_per_part)

    monkeypatch.setattr(pool_store, "ingest_to", counted)
    return filled


def files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_second_run_in_another_folder_links_the_finished_store(tmp_path, ingests):
    stages = StageOptions(ingest=IngestOptions(source=str(write_pool(tmp_path / "pool.jsonl"))))
    first = pool_store.open_or_ingest(stages, tmp_path / "run1")
    second = pool_store.open_or_ingest(stages, tmp_path / "run2")
    assert len(ingests) == 1 and ingests[0].parent == tmp_path / "run1"  # ingested in the run's folder, then shared
    assert first.problem_ids() == second.problem_ids() == ["p0", "p1", "p2"]
    assert files(first.folder) == files(second.folder) and files(first.folder)
    assert first.folder.parent == tmp_path / "run1" and second.folder.parent == tmp_path / "run2"
    assert [p.name for p in (tmp_path / "cache" / "pools").iterdir()] == [
        f"{first.folder.name}-{pool_store.code_digest()}"
    ]  # no temporary folder left
    another = StageOptions(ingest=IngestOptions(source=str(write_pool(tmp_path / "other.jsonl", problems=4))))
    assert pool_store.open_or_ingest(another, tmp_path / "run3").problem_ids() == ["p0", "p1", "p2", "p3"]
    assert len(ingests) == 2


def test_another_code_version_the_switch_and_an_unpinned_hub_dataset_ingest_for_themselves(
    tmp_path, ingests, monkeypatch
):
    stages = StageOptions(ingest=IngestOptions(source=str(write_pool(tmp_path / "pool.jsonl"))))
    pool_store.open_or_ingest(stages, tmp_path / "run1")
    monkeypatch.setattr(pool_store, "code_digest", lambda: "another")
    pool_store.open_or_ingest(stages, tmp_path / "run2")
    assert len(ingests) == 2
    monkeypatch.setenv(pool_store.SHARED_ENV, "0")
    pool_store.open_or_ingest(stages, tmp_path / "run3")
    assert len(ingests) == 3 and ingests[-1].parent == tmp_path / "run3"
    monkeypatch.delenv(pool_store.SHARED_ENV)
    assert pool_store.shared_pools("hub:org/data@default:train") is None
    assert pool_store.shared_pools("hub:org/data@v1.0:train") == tmp_path / "cache" / "pools"


def test_a_store_another_process_finished_first_is_used_and_the_late_one_removed(tmp_path):
    target = tmp_path / "pools" / "pool-x"

    def fill_while_another_finishes(partial: Path) -> None:
        (partial / "mine").write_text("late")
        target.mkdir(parents=True)
        (target / "theirs").write_text("first")

    assert pool_store.write_shared(target, fill_while_another_finishes) == target
    assert [p.name for p in target.iterdir()] == ["theirs"]
    assert [p.name for p in target.parent.iterdir()] == ["pool-x"]


def test_stores_of_other_code_versions_and_left_partials_go_once_stale(tmp_path, ingests):
    import os
    import time

    pools = tmp_path / "cache" / "pools"
    old_version, fresh_version = pools / "pool-aaa-0123456789ab", pools / "pool-bbb-0123456789ab"
    left, writing = pools / ".pool-ccc.x.partial", pools / ".pool-eee.y.partial"
    half_pruned = pools / ".pool-fff-0123456789ab.7.pruned"
    ours = pools / f"pool-ddd-{pool_store.code_digest()}"
    for folder in (old_version, fresh_version, left, writing, ours, half_pruned):
        folder.mkdir(parents=True)
    hour_ago = time.time() - pool_store.STALE_SECONDS - 60
    week_ago = time.time() - pool_store.PARTIAL_STALE_SECONDS - 60
    for folder, when in ((old_version, hour_ago), (ours, hour_ago), (writing, hour_ago), (left, week_ago)):
        os.utime(folder, (when, when))
    stages = StageOptions(ingest=IngestOptions(source=str(write_pool(tmp_path / "pool.jsonl"))))
    pool_store.open_or_ingest(stages, tmp_path / "run")
    assert not old_version.exists() and not left.exists()  # stale: another version's, a killed ingest's
    assert not half_pruned.exists()  # a prune that stopped half way
    assert fresh_version.is_dir() and ours.is_dir()  # another version's but recent, and this version's
    assert writing.is_dir()  # an hour old: a long ingest may still be writing it
    assert len(list(pools.iterdir())) == 4  # and the store just written


def test_a_store_pruned_while_linked_leaves_the_run_to_ingest_its_own(tmp_path, ingests, monkeypatch):
    stages = StageOptions(ingest=IngestOptions(source=str(write_pool(tmp_path / "pool.jsonl"))))
    pool_store.open_or_ingest(stages, tmp_path / "run1")
    real = pool_store.linked_copy

    def pruned_meanwhile(source, folder):
        if source.parent.name == "pools":  # another version's process prunes it as this one links it
            pool_store.shutil.rmtree(source)
        real(source, folder)

    monkeypatch.setattr(pool_store, "linked_copy", pruned_meanwhile)
    store = pool_store.open_or_ingest(stages, tmp_path / "run2")
    assert store.problem_ids() == ["p0", "p1", "p2"] and ingests[-1].parent == tmp_path / "run2"
    monkeypatch.setattr(pool_store, "linked_copy", real)
    pool_store.open_or_ingest(stages, tmp_path / "run3")  # shared again (run2's own store was)
    shared = next((tmp_path / "cache" / "pools").glob("pool-*"))
    linked: list[str] = []
    link = pool_store.os.link

    def renamed_away_after_the_first(source, target):
        if linked:  # prune_shared renames a store away whole before removing it
            shared.rename(shared.with_name(f".{shared.name}.1.pruned"))
        linked.append(str(target))
        link(source, target)

    monkeypatch.setattr(pool_store.os, "link", renamed_away_after_the_first)
    store = pool_store.open_or_ingest(stages, tmp_path / "run4")
    assert len(linked) == 2 and ingests[-1].parent == tmp_path / "run4"  # half linked: its own ingest instead
    assert store.problem_ids() == ["p0", "p1", "p2"]


def test_on_another_file_system_nothing_is_copied_and_each_run_ingests(tmp_path, ingests, monkeypatch):
    """The cache holds hard links only: where the run's folder and the cache are on different file systems (a home
    quota, a scratch disk) no store is copied there, and each run ingests its own, as without the cache."""
    import errno

    def cross_device(source, target):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(pool_store.os, "link", cross_device)
    stages = StageOptions(ingest=IngestOptions(source=str(write_pool(tmp_path / "pool.jsonl"))))
    for run in ("run1", "run2"):
        assert pool_store.open_or_ingest(stages, tmp_path / run).problem_ids() == ["p0", "p1", "p2"]
    assert [p.parent.name for p in ingests] == ["run1", "run2"]
    assert not list((tmp_path / "cache" / "pools").iterdir())
