"""Benchmarks registry: local files in the shared layout with checksums, the hub path kept real, bad input named."""

from __future__ import annotations

import json

import pytest

from eval.benchmarks.loader import BenchmarkSpec, load_benchmark, resolve_source
from eval.records import DataError, sha256_file
from limo.cli.compose import compose

SIZES = {"math500": 500, "aime24": 30, "aime25": 30, "amc23": 40}


def _specs():
    cfg = compose("demo")
    return {name: BenchmarkSpec.from_dict(dict(spec)) for name, spec in cfg.benchmark_specs.items()}


@pytest.mark.shared_data
@pytest.mark.parametrize("name", sorted(SIZES))
def test_local_benchmarks_load_with_checksum(shared_data, name):
    spec = _specs()[name]
    bench = load_benchmark(spec, data_dir=str(shared_data))
    assert len(bench.problems) == SIZES[name]
    assert bench.checksum == sha256_file(shared_data / spec.local_files[0])
    assert bench.rejected == 0 and bench.read == SIZES[name]
    assert all(p.answer and p.problem for p in bench.problems)


@pytest.mark.shared_data
def test_math500_keeps_level_and_subject(shared_data):
    bench = load_benchmark(_specs()["math500"], data_dir=str(shared_data))
    assert {p.level for p in bench.problems} == {1, 2, 3, 4, 5}
    assert len({p.subject for p in bench.problems}) == 7


def test_hub_id_is_the_default_source():
    assert resolve_source(_specs()["math500"]) == "HuggingFaceH4/MATH-500"
    assert resolve_source(_specs()["aime24"], path="/x/a.jsonl") == "/x/a.jsonl"


def test_hub_unreachable_is_a_clear_error():
    """A set with no copy shipped with limo (those that have one: tests/test_shipped_benchmarks.py)."""
    with pytest.raises(DataError, match="math-ai/minervamath"):
        load_benchmark(_specs()["minerva"])


def test_malformed_benchmark_file_keeps_good_rows_and_counts_rejects(tmp_path):
    rows = [{"id": "a", "problem": "1+1?", "answer": "2"}, {"id": "b", "problem": "no answer"}]
    path = tmp_path / "bench.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n{oops\n")
    bench = load_benchmark(_specs()["math500"], path=str(path))
    assert [p.id for p in bench.problems] == ["a"]
    assert bench.read == 3 and bench.rejected == 2


def test_missing_local_file_names_it(tmp_path):
    with pytest.raises(DataError, match="math500.jsonl"):
        load_benchmark(_specs()["math500"], data_dir=str(tmp_path))


def test_unknown_spec_key_fails():
    with pytest.raises(ValueError, match="unknown keys"):
        BenchmarkSpec.from_dict({"name": "x", "hub": "typo"})


def test_champ_heldout_benchmark():
    bench = load_benchmark(_specs()["champ_heldout"])
    assert len(bench.problems) == 54 and len(bench.checksum) == 64
    assert all(p.source == "champ_heldout" for p in bench.problems)
