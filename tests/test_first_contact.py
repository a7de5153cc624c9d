"""A newcomer's first contact, without a hub: README's three commands on a pool of their own, as written.

The pool is 30 problems in GAIR/LIMO's layout (`question`, `solution`, `answer`), 5 of them with a chain whose
answer is wrong; the hub is off (``HF_HUB_OFFLINE=1``, conftest) and no ``data_dir`` is given, so decontamination
screens the benchmark copies shipped with limo and says which. The commands are read from README.md's first code
block and run as they stand, in a fresh folder, with only what scales them to the demo's tiny model appended
(the model group, two training steps, four evaluation problems of 16 tokens).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from limo.cli.compose import compose
from limo.setup.curate import build_curation
from tests.shared_data import REPO_ROOT

NAMES = ("Ana", "Ben", "Chloe", "Dev", "Ema", "Femi", "Gus", "Hana", "Ivo", "Jun")
THINGS = ("apples", "stamps", "marbles", "pencils", "shells", "coins")
WRONG = {3, 9, 14, 21, 27}  # rows whose chain ends on a wrong answer
SCALE = {  # appended to README's commands: the tiny model, and as little work as the commands need to run through
    "limo.curate": [],
    "limo.train": ["model=tiny", "train.args.max_steps=2", "train.global_batch_size=4",
                   "train.args.per_device_train_batch_size=4"],
    "limo.evaluate": ["model=tiny", "limit=4", "evaluate.protocol.max_new_tokens=16", "evaluate.batch_size=4"],
}  # fmt: skip


def user_pool(path: Path) -> Path:
    """Thirty word problems with a worked chain each, five of them ending on a wrong answer."""
    rows = []
    for i in range(30):
        name, thing = NAMES[i % len(NAMES)], THINGS[i % len(THINGS)]
        a, b, c = 7 + 3 * i, 2 + i % 5, 1 + (i * 7) % 9
        answer = a * b - c
        said = answer + 10 if i in WRONG else answer
        problem = (
            f"{name} packs {b} boxes with {a} {thing} in each box, then gives {c} {thing} to a friend on day {i + 1}. "
            f"How many {thing} does {name} keep?"
        )
        chain = f"{b} boxes of {a} make {b} x {a} = {a * b} {thing}. Giving away {c} leaves {said}. \\boxed{{{said}}}"
        rows.append({"question": problem, "solution": chain, "answer": str(answer)})
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def readme_commands() -> list[list[str]]:
    """The commands of README.md's first code block, as a user would type them (comments dropped)."""
    block = re.search(r"```bash\n(.*?)```", (REPO_ROOT / "README.md").read_text(), re.DOTALL)
    assert block, "README.md has no bash block"
    return [shlex.split(line, comments=True) for line in block.group(1).splitlines() if line.strip()]


def run(folder: Path, argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    assert argv[:2] == ["python", "-m"], argv
    command = [sys.executable, *argv[1:], *SCALE[argv[2]]]
    return subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_readmes_three_commands_run_offline_on_a_users_pool(tmp_path, tiny_model_dir):
    commands = readme_commands()
    assert [c[2] for c in commands] == ["limo.curate", "limo.train", "limo.evaluate"]
    user_pool(tmp_path / "my_pool.jsonl")
    cache = tmp_path / "cache"  # the tiny model group's folder: the session's tiny model, so nothing is built
    cache.mkdir()
    (cache / "tiny-qwen2-seed0").symlink_to(tiny_model_dir)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "LIMO_CACHE": str(cache)}
    env.pop("HF_DATASETS_OFFLINE", None)
    run_dir = tmp_path / "outputs" / "mine"
    curated = run(tmp_path, commands[0], env)
    assert curated.returncode == 0, curated.stderr[-3000:]
    said = curated.stdout + curated.stderr
    screened = [line for line in said.splitlines() if "shipped with limo" in line]
    assert len(screened) == 1, said[-3000:]
    assert "decontam: screened against the copies of math500, aime24, aime25, amc23 shipped with limo" in screened[0]
    manifest = json.loads((run_dir / "curate" / "manifest.json").read_text())
    assert {n: b["items"] for n, b in manifest["benchmarks"].items()} == {
        "math500": 500, "aime24": 30, "aime25": 30, "amc23": 40
    }  # fmt: skip
    rejects = [json.loads(line) for line in (run_dir / "curate" / "rejects.jsonl").read_text().splitlines()]
    wrong = {r["id"] for r in rejects if r["kind"] == "chain" and r["stage"] == "answer_check"}
    assert len(wrong) == len(WRONG)
    selected = (run_dir / "curate" / "messages.jsonl").read_text().splitlines()
    assert len(selected) == 30 - len(WRONG)
    trained = run(tmp_path, commands[1], env)
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert (run_dir / "train" / "model" / "config.json").is_file()
    evaluated = run(tmp_path, commands[2], env)
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    summary = json.loads((run_dir / "eval" / "arith_heldout" / "summary.json").read_text())
    assert summary["model"] == "outputs/mine/train/model" and summary["metrics"]  # the model the second command wrote
    assert (run_dir / "eval" / "arith_heldout" / "report.md").is_file()


def test_decontam_warn_with_every_benchmark_missing_runs_on_and_says_none_was_checked(tmp_path, caplog):
    """``missing=warn`` with nothing to screen against: every problem passes, in one line; no crash."""
    pool = user_pool(tmp_path / "my_pool.jsonl")
    overrides = [
        f"curate.stages.ingest.source={pool}",
        f"output_dir={tmp_path / 'run'}",
        f"data_dir={tmp_path / 'no_benchmarks_here'}",
        "curate.stages.decontam.missing=warn",
        "++curate.stages.report.plots=false",
    ]
    with caplog.at_level("WARNING", logger="curation.stages.decontam"):
        build_curation(compose("pool_gair_limo", overrides)).run()
    lines = [r.getMessage() for r in caplog.records]
    assert (
        "decontam: no benchmark was checked (math500, aime24, aime25, amc23 skipped): no problem was screened" in lines
    )
    funnel = json.loads((tmp_path / "run" / "curate" / "funnel.json").read_text())
    [stage] = [s for s in funnel["stages"] if s["stage"] == "decontam"]
    assert stage["notes"]["unchecked"] is True and stage["notes"]["index_items"] == 0
    manifest = json.loads((tmp_path / "run" / "curate" / "manifest.json").read_text())
    assert all("skipped" in entry for entry in manifest["benchmarks"].values())
    assert len((tmp_path / "run" / "curate" / "messages.jsonl").read_text().splitlines()) == 30 - len(WRONG)


def test_curated_files_are_written_with_the_users_umask(tmp_path):
    from eval import records

    before = os.umask(0o027)
    records._umask.cache_clear()
    try:
        records.write_text_atomic(tmp_path / "shared.jsonl", "{}\n")
        records.write_bytes_atomic(tmp_path / "plot.png", b"\x89PNG")
    finally:
        os.umask(before)
        records._umask.cache_clear()
    assert {(tmp_path / n).stat().st_mode & 0o777 for n in ("shared.jsonl", "plot.png")} == {0o640}


@pytest.fixture(scope="module")
def user_run(tmp_path_factory) -> Path:
    """The user's pool curated as README's first command does (offline: the shipped benchmark copies)."""
    folder = tmp_path_factory.mktemp("first_contact")
    pool = user_pool(folder / "my_pool.jsonl")
    build_curation(compose("pool_gair_limo", [f"curate.stages.ingest.source={pool}", f"output_dir={folder}"])).run()
    return folder / "curate"


def test_curated_rows_carry_the_chains_final_answer_the_grader_read(user_run):
    rows = [json.loads(line) for line in (user_run / "curated.jsonl").read_text().splitlines()]
    assert rows and all(r["chain_final_answer"] == r["verdict"]["extracted"] == r["gold_answer"] for r in rows)


def test_report_names_its_two_scores_apart(browser, user_run):
    """The list's score is selection's combined score, the chart's the quality stage's: they carry other names."""
    tab = browser.open((user_run / "report.html").resolve().as_uri())
    titles = tab.evaluate("[...document.querySelectorAll('.chart h3')].map(e => e.textContent)")
    badges = tab.evaluate("[...document.querySelectorAll('summary .badge')].map(e => e.textContent)")
    scores = [b for b in badges if "score" in b]
    assert "Quality score" in titles and scores and all(b.startswith("selection score ") for b in scores)
    assert tab.evaluate("document.querySelector('.filters span').textContent") == "selection score"
    assert tab.problems() == []


def test_every_axis_label_of_a_chart_is_drawn_whole(browser, tmp_path):
    """A histogram whose last edge has a wide label (0.0153, as quality scores of short chains read) keeps it inside
    the chart's box: the drawing clipped its right half."""
    from curation.funnel import HISTOGRAM, Chart, StageCount, Survivors
    from curation.outputs.report_html import write_report_html
    from curation.outputs.writer import RunOutputs

    values = [0.0101 + 0.0052 * i / 24 for i in range(25)]
    chart = Chart(
        "quality", "Quality score", HISTOGRAM, {"candidates": values, "curated": values[5:]}, "quality score"
    )
    state = Survivors(
        {}, {}, funnel=[StageCount("ingest", items_in=25, items_out=25, problems_in=25, problems_out=25)]
    )
    run = RunOutputs("limo", {"curated.jsonl": []}, state, {"read": 25}, {}, {"name": "wide"}, "", plots=[chart])
    tab = browser.open(write_report_html(tmp_path, run, run.manifest).as_uri())
    labels = tab.evaluate(
        """[...document.querySelectorAll('.chart svg')].flatMap(svg => {
             const box = svg.viewBox.baseVal;
             const inside = (b) => b.x >= box.x - 0.5 && b.x + b.width <= box.x + box.width + 0.5;
             return [...svg.querySelectorAll('text')].map(t => [t.textContent, t.getBBox()])
               .filter(([_, b]) => b.width).map(([text, b]) => [text, inside(b)]);
           })"""
    )
    assert ["0.0153", True] in labels and all(inside for _, inside in labels), labels
    assert tab.problems() == []


def test_the_meaning_check_with_no_benchmark_item_confirms_nothing():
    """The library entry as the stage's: no benchmark item (all skipped) screens nothing, where it crashed in a matmul
    over zero rows."""
    from curation.meaning.contamination import find_semantic_contamination
    from curation.meaning.index import cosines
    from curation.options import SemanticDecontamOptions

    verdicts = find_semantic_contamination({"a": "What is 2+3?"}, [], SemanticDecontamOptions())
    assert verdicts.matches == {} and verdicts.screened == {}
    assert cosines(np.ones((2, 256), np.float32) / 16, np.zeros(0, np.float32)).shape == (2, 0)
