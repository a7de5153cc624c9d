"""Preference training on the student's own samples (`smol_pairs`, `smol_ablate_pref`): pairs of a model's samples,
right against wrong, beside its correct samples as SFT rows; the arms that share one set of samples a seed; and
(slow) the recipe's four arms end to end on the tiny model taught three of the pool's problems
(`tests.test_ablate_rise`).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
from omegaconf import OmegaConf

from eval.records import read_jsonl, write_json
from tests.test_ablate_rise import TOY, ablate, answer, toy_benchmark


def test_pairs_of_the_model_s_own_samples_and_its_correct_samples_as_sft_rows(tmp_path):
    """smol_pairs on the pool's first three problems with the samples replayed from a file: problem 0 always right,
    problem 1 always wrong, problem 2 right twice and wrong twice (one answer unreadable)."""
    from limo.cli.compose import compose
    from limo.setup.curate import build_curation

    said = {
        "arith-0000": [answer(100), answer(100), "So 78 + 22 = 100. " + answer(100), answer(100)],
        "arith-0001": [answer(7)] * 4,
        "arith-0002": [answer(60), "So 61. " + answer(61), "I am not sure.", answer(60)],
    }
    replay = tmp_path / "samples.jsonl"
    rows = [{"request_id": f"{p}#{i}", "text": t} for p, texts in said.items() for i, t in enumerate(texts)]
    replay.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = compose(
        "smol_pairs",
        [
            f"output_dir={tmp_path / 'run'}",
            "curate.stages.ingest.problem_limit=3",
            "curate.pairs.rollouts.k=4",
            "curate.pairs.rollouts.generator.backend=replay",
            f"curate.pairs.rollouts.generator.backend_args={{path: {replay}}}",
            "++curate.stages.report.plots=false",
        ],
    )
    build_curation(cfg).run()
    curate = tmp_path / "run" / "curate"
    pairs = [json.loads(line) for line in (curate / "pairs.jsonl").open()]
    assert [(p["chosen"], p["rejected"]) for p in pairs] == [(answer(60), "So 61. " + answer(61))]
    assert pairs[0]["prompt"] == TOY[2]["problem"]
    writers = {pairs[0]["provenance"][k] for k in ("chosen_generator", "rejected_generator")}
    assert writers == {"rollout:outputs/smol_limo/train/model"}  # the policy (model.path's trained model) wrote both
    correct = [json.loads(line) for line in (curate / "correct.jsonl").open()]
    assert [r["messages"][-1]["content"] for r in correct] == [
        answer(100),
        "So 78 + 22 = 100. " + answer(100),
        answer(60),
    ]
    assert all(r["messages"][0] == {"role": "user", "content": TOY[int(r["id"][9])]["problem"]} for r in correct)
    funnel = {s["stage"]: s for s in json.loads((curate / "funnel.json").read_text())["stages"]}
    assert funnel["rollouts"]["items_in"] == 12 and funnel["rollouts"]["notes"]["no_answer"] == 1


def study(tmp_path: Path):
    from limo.ablation.study import Command, build_study, compose_command

    command = Command("smol_ablate_pref", 1, (), ("recipe=smol_ablate_pref", f"output_dir={tmp_path}"))
    return build_study(compose_command(command), command)[0]


def test_rft_dpo_and_lrml_train_on_one_set_of_samples_a_seed(tmp_path):
    from limo.ablation.plan import run_items
    from limo.ablation.steps import Step

    found = study(tmp_path)
    planned = run_items(found, dict.fromkeys(("curated", "rft", "dpo", "lrml"), 50))
    items = {i["label"]: [Step.from_dict(s) for s in i["steps"]] for i in planned}
    curations = {items[f"{arm} seed 2"][1] for arm in ("rft", "dpo", "lrml")}
    assert len(curations) == 1  # one step: the samples run once a seed
    (samples,) = curations
    assert samples.folder.endswith("runs/dpo/seed2") and "recipe=smol_pairs" in samples.own
    dpo_run = found.root / "runs" / "dpo" / "seed2" / "curate"
    rft, lrml = items["rft seed 2"][2], items["lrml seed 2"][2]
    assert f"train.data={dpo_run / 'correct.jsonl'}" in rft.own and "recipe=smol_limo" in rft.own
    assert f"train.data={dpo_run / 'pairs.jsonl'}" in lrml.own and "train.args.loss_type=discopop" in lrml.own
    assert not any(o.startswith("train.data=") for o in items["dpo seed 2"][2].own)  # its own curation's pairs
    assert found.options.primary is not None and found.options.primary.pair == ("lrml", "dpo")


@pytest.mark.slow
def test_the_preference_ablation_runs_its_four_arms_on_the_model_s_own_samples(repo_root, tmp_path, taught_model_dir):
    """smol_ablate_pref at seed 0 in a few steps: curated from the taught model, its 16 samples of each of the three
    problems it was taught, and rft, dpo and lrml trained on them."""
    out = tmp_path / "out"
    args = [
        "recipe=smol_ablate_pref",
        f"output_dir={out}",
        f"model.path={taught_model_dir}",
        "ablate.seeds=[0]",
        "ablate.limit=2",
        "ablate.compute.steps=1",
        *(f"ablate.arms.{i}.steps=2" for i in (1, 2, 3)),
        "curate.stages.ingest.problem_limit=3",
        "train.args.learning_rate=1e-5",
        "evaluate.protocol.max_new_tokens=24",
        toy_benchmark(tmp_path),
        "--jobs",
        "2",
    ]
    done = ablate(args, repo_root)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    runs = out / "ablate" / "runs"
    samples = runs / "dpo" / "seed0" / "curate"
    events = [json.loads(line) for line in (out / "ablate" / "events.jsonl").open()]
    sampled = [e["event"] for e in events if e["stage"] == "curate" and e["folder"] == str(runs / "dpo" / "seed0")]
    assert sorted(sampled) == ["ran", "reused", "reused"]  # sampled once, for three arms
    pairs = [json.loads(line) for line in (samples / "pairs.jsonl").open()]
    # only problem 2 is answered both ways; the pairs are the model's own answers, right against wrong
    assert pairs and {(p["chosen"], p["rejected"]) for p in pairs} == {(answer(60), answer(61))}
    correct = {json.loads(line)["messages"][-1]["content"] for line in (samples / "correct.jsonl").open()}
    assert correct == {answer(100), answer(60)}
    config = {
        arm: OmegaConf.load(runs / arm / "seed0" / "train" / "config.yaml").train for arm in ("rft", "dpo", "lrml")
    }
    assert config["rft"].trainer == "sft" and config["rft"].data == str(samples / "correct.jsonl")
    assert config["dpo"].trainer == "dpo" and config["dpo"].args.loss_type == "sigmoid"
    assert config["lrml"].args.loss_type == "discopop" and config["lrml"].data == str(samples / "pairs.jsonl")

    results = json.loads((out / "ablate" / "subsets" / "curated+rft+dpo+lrml_seeds0" / "results.json").read_text())
    assert [(r["arm"], r["steps"]) for r in results["runs"]] == [("curated", 1), ("rft", 2), ("dpo", 2), ("lrml", 2)]
    assert all(r["tokens"] > 0 for r in results["runs"])
    assert "multiturn" not in results  # no arm asks for it here
    primary = [(p["a"], p["b"], p["benchmark"], p["part"]) for p in results["pairs"] if p["primary"]]
    assert primary == [("lrml", "dpo", "arith_unseen", "untouched")]
    kinds = {a["name"]: a["kind"] for a in results["arms"]}
    assert (
        kinds["lrml"] == "after curated (smol_pairs), dpo's pairs.jsonl"
        and kinds["dpo"] == "after curated (smol_pairs)"
    )
    assert kinds["rft"] == "after curated (smol_limo), dpo's correct.jsonl"


def pairs_step(root: Path, replay: Path, *extra: str):
    """The preference arms' curation (smol_pairs on the pool's first three problems, 4 samples each, replayed from
    ``replay``) in ablation folder ``root``, as `limo.ablation.plan` lays a run's curation out."""
    from limo.ablation.steps import Step

    repo = Path(__file__).resolve().parents[1]
    own = (
        "recipe=smol_pairs",
        f"model.path={root / 'runs' / 'curated' / 'seed0'}",
        f"curate.stages.ingest.source={repo / 'recipes/data/arithmetic/pool.jsonl.gz'}",
        "curate.stages.ingest.problem_limit=3",
        "curate.pairs.rollouts.k=4",
        "curate.pairs.rollouts.generator.backend=replay",
        f"curate.pairs.rollouts.generator.backend_args={{path: {replay}}}",
        "++curate.stages.report.plots=false",
        *extra,
    )
    return Step("curate", str(root / "runs" / "dpo" / "seed0"), own)


def replayed(path: Path, said: dict[str, list[str]]) -> Path:
    rows = [{"request_id": f"{p}#{i}", "text": t} for p, texts in said.items() for i, t in enumerate(texts)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_a_curation_s_samples_are_kept_and_a_clone_elsewhere_goes_on_from_them(tmp_path, caplog):
    """Sampling is the hours of an after arm's curation on a CPU: its caches go into the kept runs, finished or cut
    (`Store.keep_samples`), and a clone in another folder, with nothing of the first one's outputs, restores them
    into the file its curation reads (paths under the working directory hashed as relative ones) and generates
    nothing they hold; samples kept under another key are not used, and that is said."""
    from limo.ablation.markers import Content
    from limo.ablation.steps import run_step
    from limo.ablation.store import ORIGIN, Store
    from limo.ablation.study import keep_samples

    said = {
        "arith-0000": [answer(100)] * 4,
        "arith-0001": [answer(7)] * 4,
        "arith-0002": [answer(60), answer(61), answer(61), answer(60)],
    }
    here, there = tmp_path / "here", tmp_path / "there"
    results = tmp_path / "results"
    root = here / "outputs" / "x" / "ablate"
    step = pairs_step(root, replayed(tmp_path / "said.jsonl", said))
    run_step(step, str(tmp_path / "here.log"), str(root / "events.jsonl"), str(here), store=Store(results, root))
    pairs = [(p["chosen"], p["rejected"]) for p in read_jsonl(Path(step.folder) / "curate" / "pairs.jsonl")]
    assert pairs == [(answer(60), answer(61))]
    kept = json.loads((results / "runs" / "dpo" / "seed0" / "curate" / "samples.json").read_text())
    assert kept["key"] == json.loads(step.marker.read_text())["key"]
    assert list(kept["files"].values()) == [12]

    # another clone, another folder: the replay now says only wrong answers, so pairs mean the samples came back
    wrong = replayed(tmp_path / "said.jsonl", {p: [answer(1)] * 4 for p in said})
    root_there = there / "outputs" / "x" / "ablate"
    moved = pairs_step(root_there, wrong)
    caplog.set_level("INFO")
    events = str(root_there / "events.jsonl")
    run_step(moved, str(tmp_path / "there.log"), events, str(there), store=Store(results, root_there))
    assert [(p["chosen"], p["rejected"]) for p in read_jsonl(Path(moved.folder) / "curate" / "pairs.jsonl")] == pairs
    assert "runs/dpo/seed0: 12 samples restored from" in caplog.text

    # cut half-way (a started marker, five whole rows and a torn one): the five are kept, and come back
    cut = there / "outputs" / "y" / "ablate"
    started = pairs_step(cut, wrong)
    (cache,) = (Path(moved.folder) / "curate" / "rollouts").glob("*.jsonl")
    lines = cache.read_text().splitlines(keepends=True)
    target = Path(started.folder) / "curate" / "rollouts" / cache.name
    target.parent.mkdir(parents=True)
    target.write_text("".join(lines[:5]) + lines[5][:20])
    then = json.loads(moved.marker.read_text())
    model = "<ablate>/runs/curated/seed0/train/model"  # the sampled model, as a marker names it
    made = Content(then["config"], {**then["inputs"], model: "a" * 64})
    marker = made.marker(started, "started", {})
    write_json(started.marker, marker)
    store = Store(tmp_path / "results_y", cut)
    with caplog.at_level("INFO"):
        keep_samples(SimpleNamespace(root=cut, results=store.root))
    assert "its curation was cut; its 5 samples so far are kept" in caplog.text
    shutil.rmtree(Path(started.folder) / "curate")
    assert store.restore_samples(started.folder, made) == (5, None)
    assert target.read_text() == "".join(lines[:5])
    assert not (Path(started.folder) / "curate" / ORIGIN).exists()

    # the sampled model retrained elsewhere (another checksum, the same settings): used, said, and recorded
    shutil.rmtree(Path(started.folder) / "curate")
    retrained = Content(made.config, {**made.inputs, model: "b" * 64})
    rows, said_why = store.restore_samples(started.folder, retrained)
    assert rows == 5 and f"though {model} changed since they were made" in str(said_why)
    write_json(started.marker, retrained.marker(started, "started", {}))
    store.keep_samples(started.folder)
    record = json.loads((store.folder(started.folder) / "curate" / "samples.json").read_text())
    assert record["key"] == retrained.key and record["restored_from"]["key"] == made.key
    # other data (the pool's checksum) or other settings: nothing
    pool = next(iter(then["inputs"]))
    for other in (
        Content(made.config, {**retrained.inputs, pool: "0" * 64}),
        Content({**made.config, "seed": -1}, retrained.inputs),
    ):
        shutil.rmtree(Path(started.folder) / "curate", ignore_errors=True)
        assert store.restore_samples(started.folder, other)[0] == 0
        assert not target.exists()

    # a reply holding U+2028 is one row (splitlines would cut it in two), and a torn last line is left out
    from limo.ablation.store import whole_lines

    odd = tmp_path / "odd.jsonl"
    odd.write_text(json.dumps({"text": "a\u2028b"}, ensure_ascii=False) + "\n" + '{"text": "to', encoding="utf-8")
    assert [json.loads(line) for line in whole_lines(odd)] == [{"text": "a\u2028b"}]
