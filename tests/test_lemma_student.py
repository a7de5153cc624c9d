"""LEMMA on the student's own mistakes (recipes smol_lemma and smol_ablate_lemma): error-correction examples built
from real SmolLM2 wrong samples with the arithmetic locator, checked against the hand labels; their accounting; and
(slow) the ablation's arms end to end on the tiny model."""

from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from eval.answers.steps import step_spans
from eval.records import read_jsonl
from tests.launch import entry

ASSETS = Path(__file__).parent / "assets"
LABELS = {
    json.loads(line)["request_id"]: json.loads(line) for line in (ASSETS / "lemma_first_wrong_labels.jsonl").open()
}
# A wrong sample of a story in no phrasing the verifier reads: the locator must reject it with its reason.
ODD = {
    "request_id": "odd-0000#0",
    "problem_id": "odd-0000",
    "problem": "A train leaves at 3 pm and the trip takes 2 hours. At what hour does it arrive?",
    "sample_index": 0,
    "response": "Let's solve this step by step.\n3 + 2 = 6.\nThe answer is \\boxed{6}.",
    "correct": False,
    "gold": "5",
    "finish_reason": "stop",
    "level": 1,
    "subject": "travel",
}


def write_student_run(folder: Path) -> Path:
    """A smol_sample run folder: the 160 real samples of tests/assets and the odd one."""
    samples = folder / "eval" / "arith_train" / "samples.jsonl"
    samples.parent.mkdir(parents=True)
    samples.write_text((ASSETS / "smol_samples.jsonl").read_text() + json.dumps(ODD) + "\n")
    return folder


def write_limo_run(folder: Path, rows: int) -> Path:
    """A smol_limo run folder whose curate/messages.jsonl holds the careful chains of the authored pool's first
    ``rows`` problems (what smol_limo selects from)."""
    pool = [json.loads(line) for line in gzip.open("recipes/data/arithmetic/pool.jsonl.gz", "rt")]
    careful = [r for r in pool if r["generator"] == "tutor"][:rows]
    messages = folder / "curate" / "messages.jsonl"
    messages.parent.mkdir(parents=True)
    messages.write_text(
        "".join(
            json.dumps(
                {
                    "id": r["id"],
                    "messages": [
                        {"role": "user", "content": r["problem"]},
                        {"role": "assistant", "content": r["chain"]},
                    ],
                }
            )
            + "\n"
            for r in careful
        )
    )
    return folder


def run(module: str, *args: str, cwd: Path, timeout: int) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    return subprocess.run(entry(module, *args), cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def curated(tmp_path_factory, repo_root) -> Path:
    root = tmp_path_factory.mktemp("smol_lemma")
    student, limo = write_student_run(root / "student"), write_limo_run(root / "limo", 12)
    args = ("recipe=smol_lemma", f"output_dir={root / 'run'}", f"sample_dir={student}", f"limo_dir={limo}")
    done = run("limo.curate", *args, "curate.lemma.max_examples=10", cwd=repo_root, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return root / "run" / "curate"


def lemma_stages(curate: Path) -> dict[str, dict]:
    funnel = json.loads((curate / "funnel.json").read_text())
    return {s["stage"]: s for s in funnel["stages"]}


def test_every_wrong_chain_is_accounted_for_stage_by_stage(curated):
    stages = lemma_stages(curated)
    harvest = stages["harvest"]
    assert harvest["items_in"] == harvest["items_out"] + sum(harvest["dropped"].values()) + sum(
        harvest["notes"]["not_wrong"].values()
    )
    for name in ("locate", "cap", "connect", "verify"):
        stage = stages[name]
        assert stage["items_in"] == stage["items_out"] + sum(stage["dropped"].values()), name
    assert stages["locate"]["items_in"] == harvest["items_out"]  # the locator sees every harvested chain
    assert stages["cap"]["items_out"] == 10 and stages["cap"]["dropped"] == {
        "over max_examples (10)": stages["cap"]["items_in"] - 10
    }
    rejects = [r for r in read_jsonl(curated / "rejects.jsonl") if r["stage"] == "lemma"]
    stages_dropped = [
        n for name in ("harvest", "locate", "cap", "connect", "verify") for n in stages[name]["dropped"].values()
    ]
    assert len(rejects) == sum(stages_dropped) and all(r["reason"] for r in rejects)
    assert stages["mix"]["items_out"] == stages["verify"]["items_out"] + 12  # the limo run's 12 rows


def test_a_story_the_verifier_cannot_read_is_rejected_with_its_reason(curated):
    odd = [
        r for r in read_jsonl(curated / "rejects.jsonl") if r["id"].startswith("odd-0000/") and r["stage"] == "lemma"
    ]
    assert len(odd) == 1 and odd[0]["reason"].startswith("arithmetic locator: no_reference: no reference: the opening")


def test_examples_show_the_labelled_wrong_step_then_a_correction_then_a_right_solution(curated):
    """Against the hand labels where the wrong chain is one of the 50: the response shows the chain up to and including
    the labelled step, then a correction sentence, then a solution that ends on the gold."""
    rows = [r for r in read_jsonl(curated / "curated.jsonl") if r["kind"] == "error_correction"]
    golds = {
        json.loads(line)["problem_id"]: json.loads(line)["gold"] for line in (ASSETS / "smol_samples.jsonl").open()
    }
    assert len(rows) == 10 and Counter(r["connection"] for r in rows) == {"fix_and_continue": 5, "fresh_restart": 5}
    checked = 0
    for row in rows:
        example = row["wrong_chain"]
        response = example[: row["prefix_end"]].rstrip() + f"\n\n{row['reflection']}\n\n{row['continuation']}"
        assert row["reflection"].startswith("Wait, ") and row["provenance"]["located_by"] == "arithmetic"
        assert re.findall(r"\\boxed\{([^}]*)\}", response)[-1] == golds[row["problem_id"]]
        if row["connection"] == "fresh_restart":
            assert row["continuation"].startswith("Let's solve this step by step.")
        source = row["provenance"]["wrong_chain_source"]["row"]
        request = json.loads((ASSETS / "smol_samples.jsonl").read_text().splitlines()[source - 1])["request_id"]
        label = LABELS.get(request)
        if label is None:
            continue
        start, end = step_spans(example)[label["step"] - 1]
        assert (row["first_wrong_step"], row["prefix_end"], row["error_type"]) == (start, end, label["error_type"])
        if row["connection"] == "fix_and_continue":  # the corrected step quotes the same sentence first
            assert row["continuation"].split(":")[0] == example[start:end].split(":")[0]
        checked += 1
    assert checked >= 3


def test_the_plain_rows_are_the_limo_curations_rows_unchanged(curated):
    messages = read_jsonl(curated / "messages.jsonl")
    plain = [r for r in messages if "#fix_and_continue" not in r["id"] and "#fresh_restart" not in r["id"]]
    source = read_jsonl(curated.parent.parent / "limo" / "curate" / "messages.jsonl")
    assert [(r["id"], r["messages"]) for r in plain] == [(r["id"], r["messages"]) for r in source]
    assert len(messages) == len(plain) + 10
    manifest = json.loads((curated / "manifest.json").read_text())
    assert manifest["facts"]["plain_from"]["rows"] == 12


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("curate.lemma.locator=oracle", "curate.lemma.locator: 'oracle' is not one of judge, arithmetic"),
        ("curate.lemma.plain_ratio=0.5", "curate.lemma.plain_from: give plain_from or plain_ratio, not both"),
    ],
)
def test_a_wrong_lemma_option_is_one_line(override, message, repo_root, tmp_path):
    done = run("limo.curate", "recipe=smol_lemma", f"output_dir={tmp_path}", override, cwd=repo_root, timeout=300)
    assert done.returncode != 0 and message in done.stderr and "Traceback" not in done.stderr


@pytest.mark.slow
def test_the_ablation_runs_its_arms_on_the_tiny_model(repo_root, tmp_path):
    """smol_ablate_lemma's three arms at seed 0, two steps each (one for the matched arm), the first 4 problems of each
    yardstick: the curated arm trains on the limo rows alone, curated_lemma on them with the examples, the matched arm
    on curated_lemma's rows; every evaluation's summary carries the correction report."""
    student, limo = write_student_run(tmp_path / "student"), write_limo_run(tmp_path / "limo", 12)
    out = tmp_path / "out"
    done = run(
        "limo.ablate",
        "recipe=smol_ablate_lemma",
        f"output_dir={out}",
        "model=tiny",
        f"sample_dir={student}",
        f"limo_dir={limo}",
        "curate.lemma.max_examples=6",
        "ablate.seeds=[0]",
        "ablate.base=false",
        "ablate.pairs=[[curated_lemma,curated]]",
        "ablate.primary.part=dev",  # the first 4 problems of arith_unseen are all dev
        "ablate.compute.steps=2",
        "ablate.arms.2.steps=1",
        "ablate.limit=4",
        "train.global_batch_size=4",
        "train.args.per_device_train_batch_size=4",
        "evaluate.protocol.max_new_tokens=16",
        cwd=repo_root,
        timeout=1200,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    root = out / "ablate"
    curated = read_jsonl(root / "arms" / "curated" / "curate" / "messages.jsonl")
    mixed = read_jsonl(root / "arms" / "curated_lemma" / "curate" / "messages.jsonl")
    assert [r["messages"] for r in curated] == [r["messages"] for r in read_jsonl(limo / "curate" / "messages.jsonl")]
    assert len(mixed) == len(curated) + 6 and [r["messages"] for r in mixed[6:]] == [r["messages"] for r in curated]
    (tables,) = root.glob("**/results.json")  # a screen's (seeds on the command line): under ablate/subsets/
    results = json.loads(tables.read_text())
    assert sorted((r["arm"], r["steps"]) for r in results["runs"]) == [
        ("curated", 2),
        ("curated_lemma", 2),
        ("curated_lemma_tokens", 1),
    ]
    trained_on = json.loads((root / "runs" / "curated_lemma_tokens" / "seed0" / ".ablate" / "train.json").read_text())
    assert str(root / "arms" / "curated_lemma" / "curate" / "messages.jsonl") in json.dumps(trained_on)
    for run_folder in (root / "runs").glob("*/seed0"):
        for bench in ("arith_heldout", "arith_unseen"):
            samples = read_jsonl(run_folder / "eval" / bench / "samples.jsonl")
            report = json.loads((run_folder / "eval" / bench / "summary.json").read_text())["metrics"]["corrections"]
            assert report["samples"] == 4 and report["wrong"] == sum(not s["correct"] for s in samples)
            assert report["wrong"] == report["wrong_located"] + sum(report["wrong_unlocated"].values())
