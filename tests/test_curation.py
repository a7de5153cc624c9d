"""The `champ` recipe end to end: outputs, accounting, held-out exclusion, gold overrides, determinism.

One run through the real entry point (``python -m limo.curate``, a subprocess from the repo root) is shared
by the module; the determinism test adds one in-process run with the same recipe and seed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from curation.pool.champ import UNAIDED_SETTINGS
from eval.benchmarks.champ import champ_heldout_ids
from eval.options import OptionsError
from tests.funnel_schema import check_one_schema


@pytest.fixture(scope="module")
def champ_run(champ_curation) -> Path:
    """The champ curation every module reads (`tests.shared_runs.curate_champ`: data_dir=null, exit 0)."""
    run, stdout = champ_curation
    assert "selected" in stdout
    return run


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_every_output_is_written(champ_run):
    for name in (
        "curated.jsonl",
        "curated.parquet",
        "messages.jsonl",
        "funnel.json",
        "rejects.jsonl",
        "manifest.json",
        "report.md",
    ):
        assert (champ_run / name).stat().st_size > 0, name
    for plot in ("funnel.png", "pass_rate.png", "quality.png", "length.png", "domains.png"):
        assert (champ_run / plot).read_bytes()[:4] == b"\x89PNG", plot


def test_every_pool_chain_is_curated_or_dropped_with_a_reason(champ_run):
    curated = _jsonl(champ_run / "curated.jsonl")
    drops = _jsonl(champ_run / "rejects.jsonl")
    dropped_chains = [d for d in drops if d["kind"] == "chain"]
    assert all(d["reason"] and d["stage"] for d in drops)
    ids = [row["chain_id"] for row in curated] + [d["id"] for d in dropped_chains]
    assert len(ids) == len(set(ids)) == 19_710  # 19,440 conversations + 270 human solutions
    funnel = check_one_schema(champ_run, "limo")
    assert funnel["totals"] == {"read": 19_710, "selected": len(curated), "dropped": len(dropped_chains)}
    stages = funnel["stages"]
    for stage in stages:
        assert stage["items_in"] - stage["items_out"] == sum(stage["dropped"].values()), stage["stage"]
    assert [s["stage"] for s in stages][:3] == ["ingest", "validate", "answer_check"]
    assert stages[1]["dropped"] == {"setting_not_allowed": 16_200}  # 15 of 18 settings x 1,080


def test_selection_respects_recipe(champ_run):
    curated = _jsonl(champ_run / "curated.jsonl")
    assert len(curated) == 120
    assert len({row["id"] for row in curated}) == 120  # one chain per problem
    assert not {row["id"] for row in curated} & champ_heldout_ids()
    for row in curated:
        assert row["generator"] == "human" or row["prompt_setting"] in UNAIDED_SETTINGS
        assert row["verdict"]["correct"] or row["generator"] == "human"
        assert row["scores"]["quality"]["score"] >= 0 and row["pass_rates"]["attempts"]
    assert [row["rank"] for row in curated] == list(range(1, 121))


def test_messages_are_the_training_view(champ_run):
    rows = _jsonl(champ_run / "messages.jsonl")
    assert len(rows) == 120
    for row in rows:
        roles = [m["role"] for m in row["messages"]]
        assert roles == ["user", "assistant"]
        assert "\\boxed{" in row["messages"][-1]["content"]


def test_manifest_records_overrides_and_heldout(champ_run):
    manifest = json.loads((champ_run / "manifest.json").read_text())
    assert {o["problem_id"] for o in manifest["gold_overrides"]} == {
        "P_Sequence_30",
        "P_Sequence_33",
        "P_Sequence_10",
        "P_Number-Theory_65",
    }
    assert manifest["seed"] == 42 and manifest["input_checksums"]["gold_overrides"]
    assert manifest["benchmarks"]["champ_heldout"]["items"] == 54
    assert manifest["benchmarks"]["math500"]["fallback"]  # data_dir=null offline: the copy shipped with limo, said so
    assert manifest["benchmarks"]["math500"]["items"] == 500
    drops = _jsonl(champ_run / "rejects.jsonl")
    heldout_hits = {d["id"] for d in drops if d["kind"] == "problem" and d["reason"] == "contaminated:champ_heldout"}
    assert len(heldout_hits & champ_heldout_ids()) >= 50  # the rest left earlier (e.g. as duplicates)
    assert champ_heldout_ids() <= {d["id"] for d in drops if d["kind"] == "problem"}


def test_same_seed_gives_identical_curated_file(champ_run, tmp_path):
    from limo.cli.compose import compose
    from limo.setup.curate import build_curation

    build_curation(compose("champ", ["data_dir=null", f"output_dir={tmp_path}"])).run()
    for name in ("curated.jsonl", "messages.jsonl"):
        assert (tmp_path / "curate" / name).read_bytes() == (champ_run / name).read_bytes(), name


def test_unknown_curate_key_fails(repo_root):
    from limo.cli.compose import compose
    from limo.setup.curate import build_curation

    with pytest.raises(OptionsError, match=r"curate.stages.select.not_a_key: unknown key"):
        build_curation(compose("champ", ["+curate.stages.select.not_a_key=1"]))
    with pytest.raises(OptionsError, match=r"curate.select: unknown key; a curate: section holds method, stages"):
        build_curation(compose("champ", ["+curate.select.n=1"]))
    with pytest.raises(OptionsError, match=r"curate.stages.difficulty: method 'lemma' does not run this stage"):
        build_curation(compose("lemma", ["+curate.stages.difficulty.source=pool"]))
    with pytest.raises(OptionsError, match=r"curate.rise: unknown key \(options of method 'rise', but curate.method"):
        build_curation(compose("lemma", ["+curate.rise.turns=3"]))


@pytest.mark.parametrize("recipe", ["champ", "limo", "s1"])
def test_shipped_curate_sections_build(recipe):
    from limo.cli.compose import compose
    from limo.setup.curate import build_curation

    options = build_curation(compose(recipe)).stages
    assert options.select.n > 0
    if recipe == "limo":
        assert options.difficulty.strong_pass_rate == (0.03125, 0.09375) and options.select.n == 800
        assert options.difficulty.weak_rollouts.k == 4 and options.difficulty.strong_rollouts.k == 32
