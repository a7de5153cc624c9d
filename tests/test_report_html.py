"""``report.html`` as a person uses it: opened in headless Chromium (`tests.browser`), for the champ run, a user's
pool in MATH's layout (`tests.pool_builder`), a MAmmoTH2 run and an evaluation run.

Each page must draw with no console error, no exception and no network request (the page's CSP turns any attempt
into a logged violation, and the harness sees requests too); hold one ``data-item-id`` element per row of the run's
data file, with the same ids; filter its list when a word is typed into the search box, to exactly the rows holding
that word; show each reject group's count and tag every reject it draws with ``data-reject-reason``. Hostile text
(``</script>``, an ``<img onerror>``) planted in a pool and in model responses must show as text and never run.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from curation.outputs.report_html import sample_rejects
from eval.reports.html_page import render_page, safe_json
from eval.reports.samples_page import within_budget
from tests.browser import Browser, Tab

SCRIPT_CLOSE = "</script><script>alert(1)</script>"
IMG_ONERROR = "<img src=x onerror=alert(2)>"
HOSTILE_PROBLEM = f"Compute 2 + 3 {SCRIPT_CLOSE} and say nothing else."
HOSTILE_CHAIN = f"{IMG_ONERROR} Since 2 + 3 = 5 & 5 > 4 < 6, therefore the answer is $\\boxed{{5}}$."
SELECT_ALL = ["++curate.stages.select.n=100000", "++curate.stages.diversity.enabled=false"]


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


# ------------------------------------------------------------------------------------------------ no browser


def test_embedded_json_cannot_close_its_block_and_reads_back_equal():
    payload = {"chain": HOSTILE_CHAIN, "problem": HOSTILE_PROBLEM, "comment": "<!-- & -->", "score": float("nan")}
    text = safe_json(payload)
    assert not set("<>&") & set(text)
    assert json.loads(text) == {**payload, "score": "nan"}  # NaN, which JSON lacks, becomes text
    page = render_page({"title": "<b>t</b>", "items": {"rows": [payload]}})
    assert page.count("<script") == 2 and "<b>t</b>" not in page  # the page's own two blocks, and nothing else
    assert "default-src 'none'" in page


def _rejects_file(path: Path, sizes: dict[str, int]) -> Path:
    lines = []
    for reason, size in sizes.items():
        lines += [{"kind": "chain", "id": f"{reason}-{i}", "problem_id": f"p{i}", "stage": "s", "reason": reason,
                   "detail": {"n": i, "pad": "x" * 100}} for i in range(size)]  # fmt: skip
    lines.append({"reason": "odd:order", "stage": "s", "kind": "row", "id": "r", "detail": {}})  # parsed whole
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in lines), encoding="utf-8")
    return path


def test_reject_groups_count_every_row_and_sample_big_groups_evenly(tmp_path):
    path = _rejects_file(tmp_path / "rejects.jsonl", {"big": 30_000, "small": 7})
    page = sample_rejects(path, per_group=200)
    assert page["total"] == 30_008
    assert [(g["reason"], g["count"], g["shown"]) for g in page["groups"]] == [
        ("big", 30_000, 200),
        ("small", 7, 7),
        ("odd:order", 1, 1),
    ]
    big = [row["detail"]["n"] for row in page["rows"] if row["reason"] == "big"]
    assert big == sorted(big) and len(set(big)) == 200  # distinct rows, in file order
    assert big[0] < 1_500 and big[-1] > 28_500 and 12_000 < sum(big) / len(big) < 18_000  # spread over the file
    assert sample_rejects(path, per_group=200) == page  # seeded: the same run writes the same page


def test_reject_rows_stay_within_the_byte_budget(tmp_path):
    path = _rejects_file(tmp_path / "rejects.jsonl", {"a": 5_000, "b": 5_000})
    line = len(path.read_text().splitlines()[0]) + 1
    page = sample_rejects(path, per_group=200, budget=80 * line)  # room for 40 rows of each group
    shown = {g["reason"]: g["shown"] for g in page["groups"]}
    assert shown["a"] == shown["b"] == 25 and shown["odd:order"] == 1  # halved until it fits
    assert sum(len(json.dumps(r)) + 1 for r in page["rows"]) <= 80 * line
    assert "sample of 25" in page["note"]


def test_long_responses_are_cut_in_the_middle_only_past_the_budget():
    rows = [{"request_id": f"q{i}", "response": "a" * 5_000 + "MIDDLE" + "z" * 5_000} for i in range(4)]
    kept, cut = within_budget(rows, budget=10**6)
    assert cut == 0 and kept == rows
    kept, cut = within_budget(rows, budget=16_000)
    assert cut == 4 and all(r["response"].startswith("aaa") and r["response"].endswith("zzz") for r in kept)
    assert all("MIDDLE" not in r["response"] and "characters cut here" in r["response"] for r in kept)


# ------------------------------------------------------------------------------------------------ the browser


def open_page(browser: Browser, path: Path) -> Tab:
    tab = browser.open(path.resolve().as_uri())
    assert tab.problems() == []
    return tab


def test_the_harness_sees_console_errors_requests_and_dialogs(browser, tmp_path):
    """The checks below can fail: a page that logs an error, fetches an image and alerts is caught on all three."""
    page = tmp_path / "bad.html"
    page.write_text(
        "<html><body><img src='http://127.0.0.1:9/x.png'><script>console.error('boom'); alert('hi');"
        "document.body.dataset.ready = '1';</script></body></html>"
    )
    tab = browser.open(page.as_uri())
    browser.pump(0.3)
    found = "\n".join(tab.problems())
    assert "console.error: ['boom']" in found and "network request: http://127.0.0.1:9/x.png" in found
    assert "dialog alert: hi" in found
    tab.close()


def test_a_run_that_selected_and_rejected_nothing_still_draws(browser, tmp_path):
    from curation.funnel import StageCount, Survivors
    from curation.outputs.report_html import write_report_html
    from curation.outputs.writer import RunOutputs

    state = Survivors({}, {}, funnel=[StageCount("ingest", items_in=0, items_out=0, problems_in=0, problems_out=0)])
    run = RunOutputs("limo", {"curated.jsonl": []}, state, {"read": 0}, {}, {"name": "empty"}, "")
    tab = open_page(browser, write_report_html(tmp_path, run, run.manifest))
    assert tab.evaluate("document.querySelectorAll('[data-item-id]').length") == 0
    assert "nothing was rejected" in tab.evaluate("document.getElementById('rejects').innerText")


def haystack(row: Any) -> str:
    """The text the page searches in a row: every string and number in it (as the page's `strings` walks it)."""
    if isinstance(row, dict):
        return "\n".join(haystack(v) for v in row.values())
    if isinstance(row, list):
        return "\n".join(haystack(v) for v in row)
    return "" if row is None else str(row).lower()


def search_word(rows: list[dict[str, Any]], field: str) -> tuple[str, int]:
    """A word from the rows' ``field`` that some rows hold and others do not, and how many rows hold it."""
    words = Counter(w.lower() for row in rows for w in set(re.findall(r"[A-Za-z]{6,}", str(row.get(field, "")))))
    for word, _ in sorted(words.items(), key=lambda item: (-item[1], item[0])):
        holding = sum(word in haystack(row) for row in rows)
        if 0 < holding < len(rows) // 2 + 1 and holding < len(rows):
            return word, holding
    raise AssertionError(f"no word of {field} tells the rows apart")


def check_page(browser: Browser, run: Path, data_file: str, id_field: str, text_field: str) -> Tab:
    """The contract every report.html keeps (see the module docstring); returns the open tab."""
    rows = _jsonl(run / data_file)
    tab = open_page(browser, run / "report.html")
    ids = tab.evaluate("[...document.querySelectorAll('[data-item-id]')].map(e => e.dataset.itemId)")
    assert len(ids) == len(rows) and sorted(ids) == sorted(str(row[id_field]) for row in rows)
    word, holding = search_word(rows, text_field)
    tab.type_into("#item-search", word)
    visible = "[...document.querySelectorAll('[data-item-id]')].filter(e => !e.hidden).length"
    assert tab.wait_for(f"{visible} !== {len(rows)} && {visible}") == holding, word
    check_rejects(tab, run)
    assert tab.problems() == []
    return tab


def check_rejects(tab: Tab, run: Path) -> None:
    """Every (stage, reason) of rejects.jsonl is a group with its exact count; a group's rows carry its reason."""
    counts = Counter((row["stage"], row["reason"]) for row in _jsonl(run / "rejects.jsonl"))
    labels = {key: f"{key[0]} › {key[1]} ({count:,})" for key, count in counts.items()}
    options = tab.evaluate("[...document.querySelectorAll('#reject-reason option')].slice(1).map(o => o.textContent)")
    assert sorted(options) == sorted(labels.values())
    (stage, reason), count = counts.most_common(1)[0]
    pick = "(s => { s.value = '%d'; s.dispatchEvent(new Event('input')); })(document.getElementById('reject-reason'))"
    tab.evaluate(pick % options.index(labels[(stage, reason)]))
    shown = "[...document.querySelectorAll('.reject')].filter(e => e.offsetParent).map(e => e.dataset.rejectReason)"
    drawn = tab.wait_for(shown)
    assert set(drawn) == {reason} and len(drawn) == min(25, count)  # the first page of the group


@pytest.fixture(scope="module")
def champ_run(champ_curation) -> tuple[Path, str]:
    """The champ curation every module reads (`tests.shared_runs.curate_champ`: exit 0), and its stdout."""
    return champ_curation


@pytest.mark.slow
def test_champ_report_passes_in_the_browser(browser, champ_run):
    run, stdout = champ_run
    assert stdout.strip().splitlines()[-1] == f"[curate] report: {run / 'report.html'}"
    tab = check_page(browser, run, "curated.jsonl", "id", "chain")
    funnel = json.loads((run / "funnel.json").read_text())["stages"]
    tips = tab.evaluate("[...document.querySelectorAll('[data-tip]')].map(e => e.dataset.tip)")
    assert all(f"{s['stage']} · items: {s['items_out']:,}" in tips for s in funnel)  # the funnel's numbers on hover
    titles = tab.evaluate("[...document.querySelectorAll('.chart h3')].map(e => e.textContent)")
    assert len(titles) == 5 and "Quality score" in titles and "Pass rate" in titles
    footer = tab.evaluate("document.getElementById('provenance').innerText")
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["input_checksums"]["pool"] in footer and "python -m limo.curate recipe=champ" in footer
    first = json.loads((run / "curated.jsonl").read_text().splitlines()[0])
    tab.evaluate(f"document.querySelector('[data-item-id=\"{first['id']}\"]').open = true")
    marks = tab.wait_for(
        f"[...document.querySelectorAll('[data-item-id=\"{first['id']}\"] .text mark')].map(m => m.title)"
    )
    assert set(marks) <= {"verification", "exploration", "granularity"} and marks  # the quality cues, highlighted
    assert tab.problems() == []


@pytest.fixture(scope="module")
def user_pool_run(tmp_path_factory, shared_data) -> Path:
    """A MATH-layout pool from `tests.pool_builder` (small) with two hostile rows, curated as a user would."""
    from limo.cli.compose import compose
    from limo.setup.curate import build_curation
    from tests.pool_builder import Sizes, build_pool

    folder = tmp_path_factory.mktemp("user_pool")
    sizes = Sizes(clean=40, wrong=8, contaminated_per_benchmark=2, near_duplicate_groups=4)
    pool, _ = build_pool("math", shared_data, folder / "pool", seed=3, sizes=sizes)
    hostile = {"id": "hostile/1", "problem": HOSTILE_PROBLEM, "answer": "5", "solution": HOSTILE_CHAIN,
               "level": "Level 5", "subject": "Prealgebra"}  # fmt: skip
    with pool.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(hostile) + "\n")
    overrides = [f"curate.stages.ingest.source={pool}", f"output_dir={folder / 'run'}", f"data_dir={shared_data}"]
    build_curation(compose("pool_math", [*overrides, "++curate.stages.report.plots=false", *SELECT_ALL])).run()
    return folder / "run" / "curate"


@pytest.mark.slow
@pytest.mark.shared_data
def test_user_pool_report_passes_and_shows_hostile_text_as_text(browser, user_pool_run):
    tab = check_page(browser, user_pool_run, "curated.jsonl", "id", "chain")
    raw = (user_pool_run / "report.html").read_text(encoding="utf-8")
    assert raw.count("<script") == 2 and SCRIPT_CLOSE not in raw and IMG_ONERROR not in raw
    tab.evaluate("document.querySelectorAll('details.item').forEach(d => d.open = true)")
    text = tab.wait_for("document.querySelector('[data-item-id=\"hostile/1\"]').innerText")
    assert HOSTILE_PROBLEM in text and HOSTILE_CHAIN.replace("$", "") in text.replace("$", "")
    assert tab.evaluate("document.querySelectorAll('img').length + document.querySelectorAll('script').length") == 2
    browser.pump(0.3)
    assert tab.problems() == []  # no alert, no request for "x"


@pytest.fixture(scope="module")
def mammoth2_run(tmp_path_factory) -> Path:
    from limo.cli.compose import compose
    from limo.setup.curate import build_curation

    out = tmp_path_factory.mktemp("mammoth2")
    smaller = ["curate.mammoth2.classifier.epoch=2", "curate.mammoth2.corpus.forum_pages_per_problem=1"]
    overrides = [f"output_dir={out}", "curate.stages.decontam.benchmarks=[champ_heldout]", *smaller]
    build_curation(compose("mammoth2", overrides)).run()
    return out / "curate"


@pytest.mark.slow
def test_mammoth2_report_passes_in_the_browser(browser, mammoth2_run):
    tab = check_page(browser, mammoth2_run, "curated.jsonl", "id", "solution")
    stages = tab.evaluate("document.querySelectorAll('#funnel tr').length - 1")
    assert stages == len(json.loads((mammoth2_run / "funnel.json").read_text())["stages"])


def test_evaluation_report_lists_every_sample_and_runs_none_of_them(browser, tmp_path):
    from eval.records import write_jsonl
    from limo.cli.compose import compose
    from limo.evaluate import evaluate, runtime_argv

    problems = [{"id": f"q{i}", "problem": f"{i} + 0 = ?", "answer": str(i), "subject": "Algebra"} for i in range(4)]
    write_jsonl(tmp_path / "data" / "math500.jsonl", problems)
    texts = [f"So \\boxed{{0}}. {SCRIPT_CLOSE}", f"{IMG_ONERROR} \\boxed{{1}}", "No idea", "x & y < z \\boxed{7}"]
    replies = [{"problem_id": f"q{i}", "sample_index": 0, "text": text} for i, text in enumerate(texts)]
    write_jsonl(tmp_path / "replay.jsonl", replies)
    backend = ["evaluate.backend=replay", f"evaluate.backend_options={{path: '{tmp_path / 'replay.jsonl'}'}}"]
    run = [*backend, "benchmarks=[math500]", f"data_dir={tmp_path / 'data'}", f"output_dir={tmp_path / 'run'}"]
    evaluate(compose("demo", runtime_argv(run)))
    folder = tmp_path / "run" / "eval" / "math500"
    rows = _jsonl(folder / "samples.jsonl")
    tab = open_page(browser, folder / "report.html")
    ids = tab.evaluate("[...document.querySelectorAll('[data-item-id]')].map(e => e.dataset.itemId)")
    assert sorted(ids) == sorted(row["request_id"] for row in rows)
    tab.evaluate("document.querySelectorAll('details.item').forEach(d => d.open = true)")
    text = tab.wait_for("document.getElementById('items').innerText")
    assert SCRIPT_CLOSE in text and IMG_ONERROR in text  # as text, literally
    assert all(row["status"] in text and row["reason"] in text for row in rows)  # every verdict and its reason
    tab.type_into("#item-search", "idea")
    assert tab.wait_for("document.getElementById('item-count').textContent.startsWith('1 of') && 1")
    assert tab.evaluate("document.querySelectorAll('img').length") == 0
    browser.pump(0.3)
    assert tab.problems() == []
