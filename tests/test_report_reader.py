"""report.md and report.html as a newcomer reads them after curating their own pool (issue 45, item 2).

The newcomer's case: a pool of model chains converted by hand to the Alpaca layout (``instruction``, ``input``,
``output``, ``answer``; no ``id``, no subject column), some chains wrong, a few benchmark problems in it, curated
through a recipe in the user's own folder (``--config-dir``) with difficulty off. Each decision on the page must be
judgeable there: a reject shows its problem and gold beside its evidence; a chart with nothing to show is left out
with the reason; the cards count chains and problems apart; a chain-length percentile is not called difficulty;
grouping and columns are reported as ingest did them; report.md has tables, not Python dicts, and a summary of the
decontamination hits with the full list in a file beside it.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from curation.funnel import StageCount
from curation.options import IngestOptions
from curation.outputs.report import charts_left_out, records_table
from curation.pool.identity import identity_facts
from curation.pool.rows import RowSpec, columns_in
from tests.browser import Tab
from tests.pool_builder import math_sources, read_jsonl, replace_last_box

PLANTED = 7  # MATH500 problems planted verbatim: more than report.md lists
RECIPE = """# @package _global_
curate:
  method: limo
  stages:
    ingest:
      source: {pool}
    decontam:
      benchmarks: [math500]
      semantic: {{enabled: false}}
    difficulty:
      enabled: false
    select:
      n: 30
"""


def alpaca_pool(data_dir: Path, path: Path) -> dict[str, dict[str, str]]:
    """The newcomer's pool (see the module docstring); returns each problem's text and gold by its text."""
    rows, truth = [], {}
    for number, source in enumerate(math_sources(data_dir)[:60]):
        rows.append({"instruction": source.problem, "input": "", "output": source.solution, "answer": source.answer})
        if number % 3 == 0:
            wrong = replace_last_box(source.solution, f"{source.answer}1")
            rows.append({"instruction": source.problem, "input": "", "output": wrong, "answer": source.answer})
    for item in [r for r in read_jsonl(data_dir / "math500.jsonl") if r.get("solution")][:PLANTED]:
        rows.append(
            {"instruction": item["problem"], "input": "", "output": item["solution"], "answer": item["answer"]}
        )
    for row in rows:
        truth[row["instruction"]] = {"problem": row["instruction"], "gold": row["answer"]}
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return truth


@pytest.fixture(scope="module")
def newcomer_run(tmp_path_factory, shared_data) -> tuple[Path, dict[str, dict[str, str]]]:
    from limo.cli.compose import compose
    from limo.setup.curate import build_curation

    folder = tmp_path_factory.mktemp("newcomer")
    truth = alpaca_pool(shared_data, folder / "pool.jsonl")
    (folder / "conf" / "recipe").mkdir(parents=True)
    (folder / "conf" / "recipe" / "mypool.yaml").write_text(RECIPE.format(pool=folder / "pool.jsonl"))
    overrides = [f"output_dir={folder / 'run'}", f"data_dir={shared_data}"]
    build_curation(compose("mypool", overrides, config_dirs=[folder / "conf"])).run()
    return folder / "run" / "curate", truth


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _section(report: str, title: str) -> str:
    return report.split(f"## {title}\n\n", 1)[1].split("\n## ", 1)[0]


@pytest.fixture(scope="module")
def page(browser, newcomer_run) -> Tab:
    tab = browser.open((newcomer_run[0] / "report.html").resolve().as_uri())
    assert tab.problems() == []
    return tab


# ------------------------------------------------------------------------------------------------ report.html


@pytest.mark.shared_data
def test_a_wrong_answer_reject_shows_its_problem_and_gold_beside_the_chains_answer(page, newcomer_run):
    run, truth = newcomer_run
    wrong = [r for r in _jsonl(run / "rejects.jsonl") if r["reason"] == "answer_incorrect"]
    assert wrong  # the planted wrong chains
    groups = page.evaluate("[...document.querySelectorAll('#reject-reason option')].map(o => o.textContent)")
    pick = "(s => { s.value = '%d'; s.dispatchEvent(new Event('input')); })(document.getElementById('reject-reason'))"
    page.evaluate(pick % (groups.index(f"answer_check › answer_incorrect ({len(wrong):,})") - 1))
    drawn = page.wait_for(
        "[...document.querySelectorAll('.reject')].filter(e => e.offsetParent).map(e => "
        "[e.querySelector('.reject-gold') && e.querySelector('.reject-gold').innerText, "
        "e.querySelector('.reject-problem') && e.querySelector('.reject-problem').textContent])"
    )
    assert len(drawn) == len(wrong)
    by_text = {(t["problem"], t["gold"]) for t in truth.values()}
    for (answers, problem), row in zip(drawn, wrong, strict=True):
        gold = next(g for p, g in by_text if p == problem)  # the row's own problem, whole
        assert answers == f"gold: {gold}\nchain's answer: {row['detail']['extracted']}"
        assert row["detail"]["extracted"] != gold  # the decision can be judged: the two differ on the page


@pytest.mark.shared_data
def test_charts_with_nothing_to_show_are_left_out_with_the_reason(page, newcomer_run):
    titles = page.evaluate("[...document.querySelectorAll('.chart h3')].map(e => e.textContent)")
    assert "Pass rate" not in titles and not any(t.startswith("Domains") for t in titles) and "Quality score" in titles
    notes = page.evaluate("[...document.querySelectorAll('#charts .left-out')].map(e => e.textContent)")
    assert len(notes) == 2 and "difficulty is off" in notes[0] and "every problem's domain is `unknown`" in notes[1]
    run = newcomer_run[0]
    plots = _section((run / "report.md").read_text(encoding="utf-8"), "Plots")
    assert notes[0] in plots and notes[1] in plots and "pass_rate.png" not in plots and "domains.png" not in plots
    assert (
        not (run / "pass_rate.png").exists() and not (run / "domains.png").exists() and (run / "quality.png").exists()
    )


def test_a_chart_is_left_out_only_when_it_has_nothing_to_show():
    from types import SimpleNamespace

    import numpy as np

    from curation.funnel import domain_chart
    from curation.stages import difficulty

    def pass_rate(enabled: bool, rates: list[float] | None) -> list:  # the difficulty stage's declared chart
        kept = SimpleNamespace(state=SimpleNamespace(funnel=[StageCount("difficulty", enabled=enabled)]))
        found = None if rates is None else np.array(rates)
        output = (
            None
            if found is None
            else SimpleNamespace(strong_rate=found, student_rate=None, noted=np.full(len(found), True))
        )
        return difficulty.STAGE.charts(output, kept)

    assert charts_left_out([*pass_rate(True, [0.5]), domain_chart({"pool": Counter(Algebra=3, unknown=1)})]) == []
    lines = charts_left_out([*pass_rate(False, None), domain_chart({"pool": Counter(unknown=4)})])
    assert len(lines) == 2 and "difficulty is off" in lines[0] and "domain is `unknown`" in lines[1]
    assert "not strong-model attempts" in charts_left_out(pass_rate(True, []))[0]
    assert charts_left_out([domain_chart({"pool": Counter()})]) == []  # nothing declared to say


@pytest.mark.shared_data
def test_the_cards_count_the_reject_rows_as_chains_and_problems(page, newcomer_run):
    run = newcomer_run[0]
    kinds = Counter(row["kind"] for row in _jsonl(run / "rejects.jsonl"))
    assert kinds["chain"] and kinds["problem"]
    cards = dict(page.evaluate("[...document.querySelectorAll('.headline div')].map(d => [d.lastChild.textContent, "
                               "d.firstChild.textContent])"))  # fmt: skip
    label = f"rows in rejects.jsonl: {kinds['chain']:,} chains, {kinds['problem']:,} problems"
    assert cards[label] == f"{sum(kinds.values()):,}"
    totals = json.loads((run / "funnel.json").read_text())["totals"]
    assert cards["dropped (chains)"] == f"{totals['dropped']:,}" == f"{kinds['chain']:,}"


@pytest.mark.shared_data
def test_a_chain_length_percentile_is_not_called_difficulty(page, newcomer_run):
    run = newcomer_run[0]
    select = json.loads((run / "funnel.json").read_text())["stages"][-1]
    assert select["notes"]["difficulty_term"] == "chain_length"
    page.evaluate("document.getElementById('item-0').open = true")
    names = page.wait_for("[...document.querySelectorAll('#item-0 dt')].map(e => e.textContent)")
    assert "difficulty" not in names and any(n.startswith("chain-length percentile") for n in names)


# ------------------------------------------------------------------------------------------------ report.md, manifest


@pytest.mark.shared_data
def test_grouping_and_columns_are_reported_as_ingest_did_them(newcomer_run):
    run = newcomer_run[0]
    ingest = json.loads((run / "manifest.json").read_text())["pool"]["provenance"]["ingest"]
    assert ingest["identity"]["problems_by"] == "text" and ingest["identity"]["id_column"] is None
    assert ingest["columns"] == {"problem": ["instruction", "input"], "answer": ["answer"], "chain": ["output"]}
    trust = _section((run / "report.md").read_text(encoding="utf-8"), "What the pool was trusted with")
    assert "- problems grouped by: text (no row has an id column" in trust


def test_a_pool_with_an_id_column_is_reported_grouped_by_it():
    spec = RowSpec.from_options(IngestOptions(source="pool.jsonl"))
    present = {"id", "problem", "chain", "answer"}
    assert identity_facts(spec, None, present)["problems_by"] == "id"
    assert identity_facts(spec, None, present - {"id"}) == {
        "problems_by": "text",
        "id_column": None,
        "chain_ids": "problem/generator/text digest",
    }
    assert set(columns_in(spec, present)) == {"id", "problem", "chain", "answer"}


@pytest.mark.shared_data
def test_report_md_has_tables_not_dicts_and_summarises_the_hits_with_all_of_them_in_a_file(newcomer_run):
    run, truth = newcomer_run
    report = (run / "report.md").read_text(encoding="utf-8")
    assert "{'" not in report and "- chains by generator: model: " in report  # no Python dict anywhere
    benchmarks = _section(report, "Benchmarks checked").splitlines()
    assert benchmarks[0] == "| benchmark | source | checksum | items |" and benchmarks[2].startswith("| math500 | ")
    contaminated = {
        r["id"] for r in _jsonl(run / "rejects.jsonl") if r["kind"] == "problem" and r["stage"] == "decontam"
    }
    hits = _jsonl(run / "decontamination_hits.jsonl")
    assert len(contaminated) == PLANTED and {h["problem_id"] for h in hits} == contaminated
    assert all(h["problem"] in truth for h in hits)  # each hit with its problem, whole
    section = _section(report, "Decontamination hits")
    assert section.startswith(f"{PLANTED} problems dropped as contaminated (by benchmark: math500: {PLANTED};")
    assert "[decontamination_hits.jsonl](decontamination_hits.jsonl)" in section
    listed = [line for line in section.splitlines() if line.startswith("- `")]
    assert [line.split("`")[1] for line in listed] == [h["problem_id"] for h in hits[:5]]


def test_records_become_a_table_with_a_column_per_field():
    table = records_table("benchmark", {"a": {"items": 3, "source": "x|y"}, "b": {"skipped": "no file"}, "c": 7})
    assert table.splitlines() == [
        "| benchmark | items | source | skipped | value |",
        "|---|---|---|---|---|",
        "| a | 3 | x/y | - | - |",
        "| b | - | - | no file | - |",
        "| c | - | - | - | 7 |",
    ]
