"""The benchmark files shipped with limo: read when the hub does not answer, checked against their sha256, said in one
line; the hub stays the default where it answers, ``data_dir`` wins over both, and sets without a copy fail as before.
"""

from __future__ import annotations

import gzip
import hashlib
import re
import shutil

import pytest

from eval.benchmarks import shipped
from eval.benchmarks.loader import BenchmarkSpec, announce_fallbacks, load_benchmark, resolve_source
from eval.records import DataError, HubOfflineError
from limo.cli.compose import compose

SIZES = {"math500": 500, "aime24": 30, "aime25": 30, "amc23": 40}


@pytest.fixture(scope="module")
def specs() -> dict[str, BenchmarkSpec]:
    cfg = compose("demo")
    return {name: BenchmarkSpec.from_dict(dict(spec)) for name, spec in cfg.benchmark_specs.items()}


@pytest.mark.parametrize("name", sorted(SIZES))
def test_offline_without_data_dir_each_set_loads_from_its_shipped_copy(specs, name):
    """HF_HUB_OFFLINE=1 (conftest) and no cached copy: the shipped file, its digest as the checksum, and why."""
    bench = load_benchmark(specs[name])
    assert len(bench.problems) == SIZES[name] and bench.rejected == 0
    assert bench.source == str(shipped.SHIPPED_DIR / specs[name].shipped)
    assert bench.checksum == shipped.SHIPPED[specs[name].shipped]
    assert bench.fallback == "HF_HUB_OFFLINE is set and the hub cache has no copy"
    assert all(p.problem and p.answer and p.source == name for p in bench.problems)


def test_an_unreachable_hub_falls_back_at_once_naming_why(specs, unreachable_hub):
    bench = load_benchmark(specs["aime25"])
    assert bench.fallback.startswith(f"the hub cannot be reached: {unreachable_hub} unreachable")
    assert resolve_source(specs["aime25"]) == "yentinglin/aime_2025"  # the hub stays the default where it answers


def test_data_dir_wins_over_the_shipped_copy(specs, tmp_path):
    row = '{"id": "mine-1", "problem": "What is 2+2?", "answer": "4", "url": "amc/2023/1"}'
    (tmp_path / "amc2023.jsonl").write_text(row + "\n")
    bench = load_benchmark(specs["amc23"], data_dir=str(tmp_path))
    assert [p.id for p in bench.problems] == ["mine-1"] and bench.fallback is None


def test_a_set_without_a_shipped_copy_still_fails_in_one_line_offline(specs, unreachable_hub):
    assert specs["minerva"].shipped is None and specs["gpqa"].shipped is None  # GPQA asks not to be redistributed
    with pytest.raises(HubOfflineError, match=r"benchmark 'minerva': offline .*data_dir="):
        load_benchmark(specs["minerva"])


def test_a_changed_copy_is_refused_naming_the_digest(specs, tmp_path, monkeypatch):
    folder = tmp_path / "files"
    shutil.copytree(shipped.SHIPPED_DIR, folder)
    rows = gzip.decompress((folder / "aime2024.jsonl.gz").read_bytes()).replace(b'"204"', b'"205"', 1)
    (folder / "aime2024.jsonl.gz").write_bytes(gzip.compress(rows))
    monkeypatch.setattr(shipped, "SHIPPED_DIR", folder)
    shipped.shipped_copy.cache_clear()
    try:
        with pytest.raises(DataError, match=r"aime2024.jsonl.gz: sha256 \w+\.\.\. is not 60c6cc65cc8c21e2"):
            load_benchmark(specs["aime24"])
    finally:
        shipped.shipped_copy.cache_clear()


def test_notice_names_every_shipped_file_with_its_source_licence_and_digest():
    notice = (shipped.SHIPPED_DIR / "NOTICE").read_text()
    for name, digest in shipped.SHIPPED.items():
        entry = notice.split(f"\n{name} ", 1)[1].split("\n\n", 1)[0]
        assert re.search(r"source: .+ at commit [0-9a-f]{7}", entry) and "licence:" in entry
        assert f"sha256:  {digest}" in entry
        assert hashlib.sha256(gzip.decompress((shipped.SHIPPED_DIR / name).read_bytes())).hexdigest() == digest
    assert "GPQA" in notice and "not shipped" in notice


@pytest.mark.shared_data
def test_each_shipped_copy_is_the_shared_data_file(shared_data):
    """The digests are those of the files whose provenance shared/data's README records."""
    for name, digest in shipped.SHIPPED.items():
        assert hashlib.sha256((shared_data / name.removesuffix(".gz")).read_bytes()).hexdigest() == digest


def test_the_fallback_is_said_in_one_line_naming_the_sets(specs, caplog):
    benches = [load_benchmark(specs[n]) for n in ("math500", "amc23")]
    with caplog.at_level("WARNING"):
        announce_fallbacks(benches, "decontam: screened against")
        announce_fallbacks([load_benchmark(specs["champ_heldout"])], "limo.evaluate: read")  # not shipped: silent
    [line] = [r.getMessage() for r in caplog.records]
    assert line.startswith("decontam: screened against the copies of math500, amc23 shipped with limo (")
    assert "NOTICE" in line and "data_dir=" in line


def test_limo_evaluate_names_the_shipped_sets_it_read_in_one_line(caplog):
    from limo.setup.evaluate import build_benchmarks, build_evaluate_options

    cfg = compose("demo", ["evaluate.benchmarks=[math500,champ_heldout,aime25]", "+limit=3"])
    with caplog.at_level("WARNING"):
        loaded = build_benchmarks(cfg, build_evaluate_options(cfg))
    assert [(b.name, len(b.problems), b.fallback is not None) for b in loaded] == [
        ("math500", 3, True), ("champ_heldout", 3, False), ("aime25", 3, True)
    ]  # fmt: skip
    [line] = [r.getMessage() for r in caplog.records if "shipped with limo" in r.getMessage()]
    assert line.startswith("limo.evaluate: read the copies of math500, aime25 shipped with limo (HF_HUB_OFFLINE")
