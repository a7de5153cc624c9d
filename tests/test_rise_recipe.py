"""The rise recipe end to end through the entry points: curate on CHAMP (replay policy), weighted SFT on CPU
(one process with accumulation, and two processes under DeepSpeed ZeRO-2: same losses), and the multi-turn
evaluation mode.

The multi-turn evaluation runs on champ_heldout with a replay file whose first answer is wrong and whose
second is the gold, so the per-turn accuracy is known: 0 after turn 1, 1 after turn 2 with an oracle.
"""

from __future__ import annotations

import itertools
import json
import subprocess
from pathlib import Path

import pytest

from tests.funnel_schema import check_one_schema
from tests.launch import run_module

LIMIT = 6  # problems kept from the pool (curate.stages.ingest.problem_limit) before the pool stages


def _run(repo_root: Path, module: str, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return run_module(repo_root, module, *args, timeout=timeout)


@pytest.fixture(scope="module")
def rise_run(repo_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("rise")
    args = ("recipe=rise", f"output_dir={out}", f"curate.stages.ingest.problem_limit={LIMIT}", "curate.rise.turns=3")
    _run(repo_root, "limo.curate", *args)
    return out, args


def test_rise_curation_writes_weighted_last_turn_examples_with_accounting(rise_run):
    out, _ = rise_run
    curate = out / "curate"
    rows = [json.loads(line) for line in (curate / "messages.jsonl").read_text().splitlines()]
    funnel = check_one_schema(curate, "rise")
    stages = {s["stage"]: s for s in funnel["stages"]}
    rollouts = stages["rollouts"]["notes"]
    assert rollouts["episodes"] == stages["problems"]["problems_out"] == stages["rollouts"]["items_out"] > 0
    assert (
        len(rows) + sum(stages["examples"]["dropped"].values())
        == rollouts["improvements"]
        == sum(rollouts["policy_answers_per_turn"])
    ), "one improvement per policy answer; each becomes an example or a reject"
    assert all(r["loss_turns"] == "last" and r["messages"][-1]["role"] == "assistant" for r in rows)
    assert sum(r.get("weight", 1.0) for r in rows) / len(rows) == pytest.approx(1.0)
    correct = {r["provenance"]["reward"] for r in rows}
    assert correct == {0.0, 1.0}, "the CHAMP stand-in policy gives both outcomes"
    assert all("\\boxed{" in r["messages"][-1]["content"] for r in rows)
    manifest = json.loads((curate / "manifest.json").read_text())
    assert manifest["facts"]["rise"]["policy"] == {"backend": "replay", "model": "recorded pool chains"}
    assert "messages.jsonl" in manifest["outputs_sha256"]
    assert "RISE curation" in (curate / "report.md").read_text()


@pytest.mark.slow
def test_rise_recipe_trains_weighted_on_cpu(rise_run, repo_root, tiny_model_dir):
    out, _ = rise_run
    done = _run(
        repo_root,
        "limo.train",
        "recipe=rise",
        f"output_dir={out}",
        f"model.path={tiny_model_dir}",
        "model.build_tiny=false",
        "train.args.max_steps=2",
    )
    assert "[train] done: 2 steps" in done.stdout
    assert (out / "train" / "model" / "config.json").is_file()
    card = (out / "train" / "model" / "README.md").read_text()
    assert "Weighted per example (`train.trainer: weighted_sft`)" in card
    history = json.loads((out / "train" / "log_history.json").read_text())
    assert all(row["loss"] > 0 for row in history if "loss" in row)


@pytest.mark.slow
def test_weighted_loss_is_the_same_under_accumulation_and_under_two_process_zero2(
    rise_run, repo_root, tiny_model_dir, tmp_path
):
    """Global batch 4: one process with 2 x 2 accumulation vs two ZeRO-2 processes with 2 each: the weighted
    loss is a mean over the global batch, so both must log the same losses."""
    out, _ = rise_run
    # Exactly 8 rows = 2 steps x global batch 4, built on purpose: the curated set's size follows the grader and
    # the pool stages (6 rows since the grader/decontamination merges, 8 before). With a short last global batch
    # the two runs train on different examples, whatever the loss: one process takes a partial accumulation (the
    # 2 rows left), while under two processes accelerate's even_batches pads the idle rank with the epoch's first
    # micro-batch again. Cycling the curated rows keeps real RISE examples (mixed weights, several turns); a
    # repeat gets its own id, as training refuses duplicate ids.
    rows = [json.loads(line) for line in (out / "curate" / "messages.jsonl").read_text().splitlines()]
    subset = [
        {**row, "id": f"{row['id']}#repeat{i // len(rows)}"} if i >= len(rows) else row
        for i, row in enumerate(itertools.islice(itertools.cycle(rows), 8))
    ]
    assert len({row.get("weight") for row in subset}) > 1, "the subset mixes weights"
    data = tmp_path / "messages.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in subset))
    common = [
        "recipe=rise",
        f"train.data={data}",
        f"model.path={tiny_model_dir}",
        "model.build_tiny=false",
        "train.args.max_steps=2",
    ]
    one = _run(repo_root, "limo.train", f"output_dir={tmp_path / 'one'}", *common)
    assert "global batch 4 = 2 per device x 2 accumulation x 1 processes; 8 examples, 2 steps/epoch" in one.stdout
    two = run_module(
        repo_root, "limo.train", f"output_dir={tmp_path / 'zero2'}", *common, "deepspeed=zero2", two_processes=True
    )
    assert "global batch 4 = 2 per device x 1 accumulation x 2 processes; 8 examples, 2 steps/epoch" in two.stdout
    losses = {}
    for name in ("one", "zero2"):
        history = json.loads((tmp_path / name / "train" / "log_history.json").read_text())
        losses[name] = [row["loss"] for row in history if "loss" in row]
    assert len(losses["one"]) == 2
    assert losses["zero2"] == pytest.approx(losses["one"], rel=1e-5)


def test_multiturn_evaluation_reports_accuracy_per_turn(repo_root, tmp_path):
    from eval.benchmarks.champ import champ_heldout_ids, load_champ_problems

    ids = champ_heldout_ids()
    golds = {p.id: p.answer for p in load_champ_problems() if p.id in ids}
    first = [pid for pid in golds][:3]  # champ_heldout keeps file order; limit=3 takes the first three
    replay = tmp_path / "replay.jsonl"
    rows = []
    for pid in first:
        rows.append({"request_id": f"{pid}#t1", "text": "I think the answer is \\boxed{-12345}."})
        rows.append({"request_id": f"{pid}#t2", "text": f"Corrected: \\boxed{{{golds[pid]}}}."})
        rows.append({"request_id": f"{pid}#t3", "text": "Still \\boxed{-12345}."})
    replay.write_text("".join(json.dumps(r) + "\n" for r in rows))
    common = (
        "recipe=rise",
        f"output_dir={tmp_path}",
        "mode=multiturn",
        "limit=3",
        "turns=3",
        "evaluate.backend=replay",
        f"+evaluate.backend_options={{path:{replay}}}",
    )
    done = _run(repo_root, "limo.evaluate", *common)
    assert "t1=0.000, t2=1.000, t3=1.000" in done.stdout
    oracle = json.loads((tmp_path / "eval" / "champ_heldout" / "multiturn_oracle" / "summary.json").read_text())
    assert oracle["accuracy_after_turn"] == [0.0, 1.0, 1.0] and oracle["mean_turns_used"] == 2.0
    _run(repo_root, "limo.evaluate", *common, "oracle=false")
    majority = json.loads((tmp_path / "eval" / "champ_heldout" / "multiturn_no_oracle" / "summary.json").read_text())
    # turns 1..2: tie between the wrong and the right answer -> the earlier (wrong); turn 3: wrong twice
    assert majority["accuracy_after_turn"] == [0.0, 0.0, 0.0]
    assert majority["last_turn_accuracy"] == [0.0, 1.0, 0.0]
    assert (
        "| 2 | 0.0000 | 1.0000 |"
        in (tmp_path / "eval" / "champ_heldout" / "multiturn_no_oracle" / "report.md").read_text()
    )


@pytest.mark.slow  # two evaluations of the tiny model (about 18 s)
def test_turn_1_is_the_single_turn_answer_and_asking_again_gives_the_same_episodes(
    repo_root, tmp_path, tiny_model_dir
):
    """``mode=[generate,multiturn]``: turn 1 of both variants is the single-turn request, answered from the samples
    beside it (the tiny model on the hf backend, one request a batch, so asking again gives the same text); with
    ``evaluate.multiturn.reuse_answers=false`` every turn is generated, and the episodes are the same but for the
    records' ``reused``."""
    runs = {}
    for name, extra in (("reused", ()), ("asked", ("evaluate.multiturn.reuse_answers=false",))):
        out = tmp_path / name
        common = ("recipe=rise", f"output_dir={out}", f"model.path={tiny_model_dir}", "limit=3", "turns=2")
        done = _run(
            repo_root,
            "limo.evaluate",
            *common,
            "mode=[generate,multiturn]",
            "oracle=[true,false]",
            "evaluate.batch_size=1",
            "evaluate.protocol.max_new_tokens=12",
            *extra,
        )
        runs[name] = (out / "eval" / "champ_heldout", done.stdout)
    folder, stdout = runs["reused"]
    texts = {r["problem_id"]: r["response"] for r in map(json.loads, (folder / "samples.jsonl").open())}
    assert len(texts) == 3
    for variant in ("oracle", "no_oracle"):
        episodes = {
            name: [json.loads(x) for x in (f / f"multiturn_{variant}" / "episodes.jsonl").open()]
            for name, (f, _) in runs.items()
        }
        assert all(
            e["turns"][0]["reused"] and e["turns"][0]["text"] == texts[e["problem_id"]] for e in episodes["reused"]
        )
        assert not any(t.get("reused") for e in episodes["reused"] for t in e["turns"][1:])
        for row in episodes["reused"]:
            del row["turns"][0]["reused"]
        assert episodes["reused"] == episodes["asked"]
        summaries = {
            name: json.loads((f / f"multiturn_{variant}" / "summary.json").read_text())
            for name, (f, _) in runs.items()
        }
        assert (summaries["reused"]["reused_answers"], summaries["asked"]["reused_answers"]) == (3, 0)
        assert "answers reused: 3" in (folder / f"multiturn_{variant}" / "report.md").read_text()
    assert stdout.count("; 3 answers reused, their requests asked before") == 2 and "reused" not in runs["asked"][1]
