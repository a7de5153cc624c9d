"""A finished ablation step is reused only when what made it is what the step has now (`limo.ablation.markers`): its
composed config (``model.path``, the backend, every override its entry reads) and its inputs' checksums (the training
data, the model a training starts from or an evaluation evaluates). A resume after a change reruns the steps it
changes, saying why; output whose origin nothing records is refused unless ``--accept-old-markers`` takes it.

The fast tests judge steps of a composed recipe on folders laid out as the entries leave them; the slow ones run
``python -m limo.ablate`` on the tiny model (an arm trained after another, one step each) and resume it."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from eval.records import sha256_file, write_json
from limo.ablation import plan
from limo.ablation.markers import CHECKSUMS, Checksums, checkable, read_marker
from limo.ablation.steps import Step, StepError, composed, is_done, to_do
from limo.ablation.study import build_study, compose_command, parse_command
from tests.launch import entry, run_group

REPO = Path(__file__).resolve().parents[1]


def study_of(out: Path, *extra: str) -> plan.Study:
    command = parse_command(["recipe=ablate_demo", f"output_dir={out}", *extra])
    return build_study(compose_command(command), command)[0]


def finish(step: Step, root: Path) -> None:
    """What a step leaves once its entry exited 0: its output folder and its ``done`` marker."""
    step.output.mkdir(parents=True, exist_ok=True)
    _, now = composed(step, str(root), str(REPO), Checksums(root / CHECKSUMS))
    write_json(step.marker, now.marker(step, "done", now.benchmarks))


def judged(step: Step, root: Path, accept_old: bool = False):
    """What the step needs, judged as run_step judges it."""
    _, now = composed(step, str(root), str(REPO), Checksums(root / CHECKSUMS))
    return to_do(step, checkable(now, read_marker(step.marker)), accept_old)


def training(study: plan.Study) -> Step:
    data = study.data_file(study.options.arm("curated"), None)
    data.parent.mkdir(parents=True, exist_ok=True)
    if not data.exists():
        data.write_text('{"id": "a", "messages": []}\n')
    return plan.train_step(study, study.options.arm("curated"), 0, None, 2)


def test_a_training_reruns_when_its_base_model_or_data_changed_and_not_for_an_evaluation_setting(tmp_path):
    study = study_of(tmp_path)
    step = training(study)
    assert not is_done(step, str(study.root))  # nothing there yet
    finish(step, study.root)
    assert is_done(step, str(study.root))

    moved = training(study_of(tmp_path, "model.path=/models/other"))
    todo = judged(moved, study.root)
    assert not todo.done and todo.stale == (step.output,)
    assert 'model.path: "' in todo.why and '-> "/models/other"' in todo.why
    assert is_done(training(study_of(tmp_path, "evaluate.backend=replay")), str(study.root))  # train never reads it

    study.data_file(study.options.arm("curated"), None).write_text('{"id": "b", "messages": []}\n')
    todo = judged(step, study.root)
    assert not todo.done and todo.why == "<ablate>/arms/curated/curate/messages.jsonl changed"


def fake_model(folder: Path, weights: bytes) -> None:
    """A trained run's model folder as the evaluation reads it (a config and a weights file)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(weights)


def evaluated(study: plan.Study, names: tuple[str, ...]) -> Step:
    folder = study.run_folder("curated", 0, None)
    for name in names:
        (folder / "eval" / name).mkdir(parents=True, exist_ok=True)
        (folder / "eval" / name / "summary.json").write_text("{}")
    return plan.evaluate_step(study, folder)


def test_an_evaluation_reruns_when_its_model_changed_and_a_benchmark_alone_when_only_its_spec_did(tmp_path):
    study = study_of(tmp_path)
    model = study.run_folder("curated", 0, None) / "train" / "model"
    fake_model(model, b"first training")
    step = evaluated(study, ("arith_heldout", "arith_unseen"))
    finish(step, study.root)
    assert is_done(step, str(study.root))

    fake_model(model, b"trained again")  # the run was retrained: every benchmark is evaluated again
    todo = judged(step, study.root)
    assert not todo.done and todo.stale == (step.output,)
    assert todo.why == "<ablate>/runs/curated/seed0/train/model changed"
    fake_model(model, b"first training")

    respec = evaluated(study_of(tmp_path, "benchmark_specs.arith_heldout.protocol.max_new_tokens=7"), ())
    todo = judged(respec, study.root)
    assert not todo.done and todo.benchmarks == ("arith_heldout",)
    assert todo.why == "benchmark_specs.arith_heldout changed"
    assert todo.stale == (step.output / "arith_heldout",) and set(todo.kept) == {"arith_unseen"}

    toy = tmp_path / "toy.jsonl"
    toy.write_text('{"id": "t0", "problem": "1 + 1?", "answer": "2"}\n')
    added = evaluated(study_of(tmp_path, f"benchmark_specs.toy={{source: {toy}}}"), ())
    todo = judged(added, study.root)
    assert (todo.done, todo.benchmarks, todo.why, todo.stale) == (False, ("toy",), None, ())  # evaluated alone
    assert "benchmarks=[toy]" in added.command(["toy"]) and "benchmarks=[arith_heldout" not in str(
        added.command(["toy"])
    )

    fewer = evaluated(study_of(tmp_path, "ablate.limit=3"), ())  # fewer problems than it was evaluated on
    todo = judged(fewer, study.root)
    assert not todo.done and todo.why == "limit: 8 -> 3" and todo.stale == (step.output,)


def test_output_an_older_limo_marked_or_left_unmarked_is_refused_unless_accepted(tmp_path):
    study = study_of(tmp_path)
    step = training(study)
    step.output.mkdir(parents=True)
    (step.output / "log_history.json").write_text("[]")
    fake_model(step.output / "model", b"w")
    with pytest.raises(StepError, match=r"train holds output without ablate's marker .* --accept-old-markers"):
        is_done(step, str(study.root))
    assert is_done(step, str(study.root), accept_old=True)

    data = step.inputs[0]
    step.marker.parent.mkdir(parents=True, exist_ok=True)
    step.marker.write_text(json.dumps({"own": list(step.own), "inputs": {data: sha256_file(data)}}))  # format 1
    with pytest.raises(StepError, match=r"an older limo's marker: it recorded only the arguments ablate chose"):
        is_done(step, str(study.root))
    todo = judged(step, study.root, accept_old=True)
    assert todo.done and todo.mark  # kept, and marked with the settings of now
    longer = plan.train_step(study, study.options.arm("curated"), 0, None, 5)
    todo = judged(longer, study.root, accept_old=True)
    assert not todo.done and "records other arguments or data" in todo.why and todo.stale == (step.output,)


def test_a_copy_without_the_models_weights_reuses_every_step_for_a_report_only_rerun(tmp_path):
    """Runs made on another machine, copied here without their weights (``bench/experiments/ablations_gpu.sh``):
    an input not on this machine cannot be checked, and no step that needs it could run, so nothing reruns."""
    study = study_of(tmp_path)
    model = study.run_folder("curated", 0, None) / "train" / "model"
    fake_model(model, b"weights")
    step = evaluated(study, ("arith_heldout", "arith_unseen"))
    finish(step, study.root)
    shutil.rmtree(model)
    assert is_done(step, str(study.root))

    train = training(study)
    train.marker.parent.mkdir(parents=True, exist_ok=True)
    elsewhere = [a.replace(str(study.root), "/gpu/box/outputs/x/ablate") for a in train.own]  # an older limo's marker
    old = {"own": elsewhere, "inputs": {"/gpu/box/outputs/x/ablate/arms/curated/curate/messages.jsonl": "0" * 64}}
    train.marker.write_text(json.dumps(old))
    (train.output / "log_history.json").parent.mkdir(parents=True, exist_ok=True)
    (train.output / "log_history.json").write_text("[]")  # its log kept, its model not
    with pytest.raises(StepError, match="--accept-old-markers"):
        is_done(train, str(study.root))
    todo = judged(train, study.root, accept_old=True)
    assert todo.done and todo.mark


def test_a_step_killed_half_way_resumes_and_one_whose_entry_had_finished_is_found_done(tmp_path):
    study = study_of(tmp_path)
    step = training(study)
    _, now = composed(step, str(study.root), str(REPO), Checksums(study.root / CHECKSUMS))
    write_json(step.marker, now.marker(step, "started", {}))
    step.output.mkdir(parents=True)
    todo = judged(step, study.root)
    assert (todo.done, todo.stale, todo.why) == (False, (), None)  # its own leftovers: the entry starts over on them
    (step.output / "log_history.json").write_text("[]")
    fake_model(step.output / "model", b"w")
    todo = judged(step, study.root)
    assert todo.done and todo.mark


@pytest.mark.parametrize("engine", ["ray", "slurm"])
def test_jobs_beside_a_cluster_executor_is_refused_in_one_line(engine, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    args = ["recipe=ablate_demo", f"executor={engine}", "--jobs", "2", f"output_dir={tmp_path}"]
    done = run_group(entry("limo.ablate", *args), cwd=REPO, timeout=120, env=env)
    assert done.returncode == 1 and len(done.stderr.strip().splitlines()) == 1, done.stderr[-2000:]
    assert done.stderr.startswith(f"limo.ablate: error: --jobs runs the ablation's jobs side by side on this machine, "
                                  f"but executor={engine} runs each on the cluster")  # fmt: skip
    assert not (tmp_path / "ablate").exists()


# ------------------------------------------------------------------------------------------- the command, resumed

RECIPE = """# @package _global_
# The ablation machinery at its cheapest: the demo's curation cut to 20 problems and drawing no plots (2 of a
# curation's 5 s of CPU), one seed, and an arm that goes on from each curated run (as an RL arm does) with one more
# step of the same recipe.
defaults:
  - ablate_demo
  - _self_
curate:
  stages:
    ingest: {problem_limit: 20}
    select: {n: 8}
    report: {plots: false}
ablate:
  arms:
    - name: curated
    - name: again
      after: curated
      steps: 1
  seeds: [0]
  only: [again]
  limit: 2
  benchmarks: [{name: arith_heldout}]
  pairs: []
"""


def ablate(out: Path, *args: str) -> tuple[list[dict], str]:
    """Run the ablation in ``out`` (its config folder beside it); returns the events it added and its output."""
    events = out / "ablate" / "events.jsonl"
    before = len(events.read_text().splitlines()) if events.exists() else 0
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    command = entry("limo.ablate", "--config-dir", str(out.parent / "conf"), "recipe=markers_demo")
    done = run_group([*command, f"output_dir={out}", *args], cwd=REPO, timeout=600, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    added = [json.loads(line) for line in events.read_text().splitlines()[before:]]
    return [{**e, "folder": e["folder"].rsplit("/ablate/", 1)[1]} for e in added], done.stdout


@pytest.fixture(scope="module")
def finished(tmp_path_factory, tiny_model_dir) -> Path:
    """A finished ablation: curated's curation and training, then the arm after it (curation, training, evaluation)."""
    base = tmp_path_factory.mktemp("markers")
    (base / "conf" / "recipe").mkdir(parents=True)
    (base / "conf" / "recipe" / "markers_demo.yaml").write_text(RECIPE)
    ran, stdout = ablate(base / "out", f"model.path={tiny_model_dir}")
    assert "start cold" not in stdout  # its steps ran in the warm worker (limo.ablation.warm), as steps do by default
    assert "serves no worker" not in stdout  # the worker forked from the session's warm server (tests.conftest)
    assert sorted((e["stage"], e["folder"]) for e in ran if e["event"] == "ran") == [
        ("curate", "arms/curated"),
        ("curate", "runs/again/seed0"),
        ("evaluate", "runs/again/seed0"),
        ("train", "runs/again/seed0"),
        ("train", "runs/curated/seed0"),
    ]
    return base


def copy_of(finished: Path, tmp_path: Path) -> Path:
    """The finished ablation in a folder of this test's (its markers name paths relative to their ablation)."""
    shutil.copytree(finished / "conf", tmp_path / "conf")
    shutil.copytree(finished / "out", tmp_path / "out")
    return tmp_path / "out"


def markers(out: Path) -> dict[str, int]:
    return {str(p.relative_to(out)): p.stat().st_mtime_ns for p in out.glob("ablate/**/.ablate/*.json")}


@pytest.mark.slow
def test_steps_forked_from_the_warm_worker_write_what_cold_processes_write(
    finished, tmp_path, tiny_model_dir, monkeypatch
):
    """`finished` ran its steps as forks of the warm worker (itself a fork of the session's warm server); with
    ``LIMO_WARM_WORKER=0`` each step is a cold ``python -m`` process: the same weights, byte for byte, and the same
    evaluation records."""
    monkeypatch.setenv("LIMO_WARM_WORKER", "0")
    shutil.copytree(finished / "conf", tmp_path / "conf")
    ran, _ = ablate(tmp_path / "out", f"model.path={tiny_model_dir}")
    assert len([e for e in ran if e["event"] == "ran"]) == 5
    warm, cold = finished / "out" / "ablate", tmp_path / "out" / "ablate"
    weights = sorted(p.relative_to(cold) for p in cold.glob("runs/*/seed0/train/model/*.safetensors"))
    assert len(weights) == 2 and all((warm / p).read_bytes() == (cold / p).read_bytes() for p in weights)
    # the curations, forked from the worker too where a training follows them in this process, wrote the same bytes
    curated = sorted(
        p.relative_to(cold) for name in ("curated", "messages") for p in cold.rglob(f"curate/{name}.jsonl")
    )
    assert len(curated) == 4 and {p.parent.parent.name for p in curated} == {"curated", "seed0"}
    assert all((warm / p).read_bytes() == (cold / p).read_bytes() for p in curated)
    records = sorted(p.relative_to(cold) for p in cold.glob("runs/*/seed0/eval/*/samples.jsonl"))
    assert records == [Path("runs/again/seed0/eval/arith_heldout/samples.jsonl")]
    same_but_paths = [(root / records[0]).read_text().replace(str(root), "<ablate>") for root in (warm, cold)]
    assert same_but_paths[0] == same_but_paths[1]  # rows name the model evaluated: a path under each ablation


@pytest.mark.slow
def test_a_resume_with_nothing_changed_reruns_nothing(finished, tmp_path, tiny_model_dir):
    out = copy_of(finished, tmp_path)
    before = markers(out)
    happened, stdout = ablate(out, f"model.path={tiny_model_dir}")
    assert len(happened) == 5 and {e["event"] for e in happened} == {"reused"}
    assert "runs again" not in stdout and markers(out) == before


@pytest.mark.slow
def test_a_resume_with_another_backend_evaluates_again_and_trains_nothing(finished, tmp_path, tiny_model_dir):
    out = copy_of(finished, tmp_path)
    replies = tmp_path / "replies.jsonl"
    rows = [{"problem_id": f"arith-test-000{i}", "sample_index": 0, "text": "So \\boxed{7}."} for i in range(2)]
    replies.write_text("".join(json.dumps(r) + "\n" for r in rows))
    replay = ("evaluate.backend=replay", f"evaluate.backend_options.path={replies}")
    happened, stdout = ablate(out, f"model.path={tiny_model_dir}", *replay)
    ran = [e for e in happened if e["event"] == "ran"]
    assert [(e["stage"], e["folder"]) for e in ran] == [("evaluate", "runs/again/seed0")]
    assert ran[0]["why"].startswith('evaluate.backend: "hf" -> "replay"')
    assert 'runs/again/seed0: evaluate runs again, its output replaced: evaluate.backend: "hf" -> "replay"' in stdout
    samples = out / "ablate" / "runs" / "again" / "seed0" / "eval" / "arith_heldout" / "samples.jsonl"
    assert [json.loads(line)["response"] for line in samples.read_text().splitlines()] == ["So \\boxed{7}."] * 2


@pytest.mark.slow
def test_a_resume_with_another_base_model_retrains_and_the_arm_after_it_follows_its_retrained_model(
    finished, tmp_path, overfit_model_dir
):
    """``model.path`` reaches curated's curation and training (their configs name it); the arm after curated never
    gets it (it starts from curated's run), so its steps run again because the model they start from, and then the
    one evaluated, changed."""
    out = copy_of(finished, tmp_path)
    upstream = out / "ablate" / "runs" / "curated" / "seed0" / "train" / "model" / "model.safetensors"
    weights = sha256_file(upstream)
    happened, stdout = ablate(out, f"model.path={overfit_model_dir}")
    why = {(e["stage"], e["folder"]): e.get("why", "") for e in happened if e["event"] == "ran"}
    assert set(why) == {
        ("curate", "arms/curated"),
        ("train", "runs/curated/seed0"),
        ("curate", "runs/again/seed0"),
        ("train", "runs/again/seed0"),
        ("evaluate", "runs/again/seed0"),
    }
    assert sha256_file(upstream) != weights
    assert f'-> "{overfit_model_dir}"' in why[("train", "runs/curated/seed0")]
    assert "model.path" in why[("curate", "arms/curated")]
    for step in ("curate", "train"):
        assert "<ablate>/runs/curated/seed0/train/model changed" in why[(step, "runs/again/seed0")]
        assert "model.path" not in why[(step, "runs/again/seed0")]
    assert "<ablate>/runs/again/seed0/train/model changed" in why[("evaluate", "runs/again/seed0")]
    assert stdout.count("runs again, its output replaced") == 5


@pytest.mark.slow
def test_a_run_folder_left_without_its_marker_is_refused_in_one_line(finished, tmp_path, tiny_model_dir):
    out = copy_of(finished, tmp_path)
    (out / "ablate" / "arms" / "curated" / ".ablate" / "curate.json").unlink()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    command = entry("limo.ablate", "--config-dir", str(tmp_path / "conf"), "recipe=markers_demo")
    done = run_group([*command, f"output_dir={out}", f"model.path={tiny_model_dir}"], cwd=REPO, timeout=300, env=env)
    assert done.returncode == 1 and len(done.stderr.strip().splitlines()) == 1, done.stderr[-2000:]
    assert done.stderr.startswith(f"limo.ablate: error: {out / 'ablate' / 'arms' / 'curated' / 'curate'} holds output")
    assert "--accept-old-markers" in done.stderr
    happened, _ = ablate(out, f"model.path={tiny_model_dir}", "--accept-old-markers")
    assert {e["event"] for e in happened} == {"reused"} and (out / "ablate/arms/curated/.ablate/curate.json").exists()


@pytest.mark.slow
def test_a_clone_holding_only_the_kept_runs_retrains_an_upstream_run_only_for_an_after_arm_still_to_run_as_a_stand_in(
    finished, tmp_path, tiny_model_dir
):
    """Another machine with ``results/`` alone: the arm after curated is kept, so nothing but the arms' curation runs
    (curated's run is not retrained for it); once its evaluation is not kept, its run has to run here, and so does
    every step before it whose output is elsewhere (curated's training first), each saying so in one line.

    Curated's training then ran here only as that arm's input: a stand-in (`limo.ablation.steps.STAND_IN`). The kept
    run's training log (which its kept evaluation goes with) is not replaced, and on the next call curated's kept
    evaluation stands, said in one line, instead of being judged stale by the stand-in's checksum and run again
    (seen in the preference campaign: a clone that retrained curated seed 3 for lrml re-evaluated curated seed 3 on
    the next chunk, over its kept log). Once curated's own evaluation has to run here, the stand-in becomes its run's.
    """
    first = copy_of(finished, tmp_path)  # curated's training is there: its evaluation runs, and is kept
    kept = first / "results"
    both = (f"model.path={tiny_model_dir}", "--results-dir", str(kept), "ablate.only=[curated,again]")
    happened, _ = ablate(first, *both)
    assert [(e["stage"], e["folder"]) for e in happened if e["event"] == "ran"] == [("evaluate", "runs/curated/seed0")]
    curated = kept / "runs" / "curated" / "seed0"
    log_history, marker = (curated / "train" / "log_history.json").read_bytes(), (curated / ".ablate" / "train.json")
    train_marker = marker.read_bytes()

    out = tmp_path / "clone"
    happened, stdout = ablate(out, *both)
    assert [(e["stage"], e["folder"]) for e in happened if e["event"] == "ran"] == [("curate", "arms/curated")]
    assert {(e["stage"], e["folder"]) for e in happened if e.get("from") == "results"} == {
        ("train", "runs/curated/seed0"),
        ("evaluate", "runs/curated/seed0"),
        ("curate", "runs/again/seed0"),
        ("train", "runs/again/seed0"),
        ("evaluate", "runs/again/seed0"),
    }
    assert "runs again here" not in stdout and list((out / "ablate" / "subsets").glob("*/results.md"))

    again = kept / "runs" / "again" / "seed0"
    shutil.copytree(again, tmp_path / "again_from_the_kept_model")
    (again / ".ablate" / "evaluate.json").unlink()
    happened, stdout = ablate(out, *both)
    assert [(e["stage"], e["folder"]) for e in happened if e["event"] == "ran"] == [
        ("train", "runs/curated/seed0"),
        ("curate", "runs/again/seed0"),
        ("train", "runs/again/seed0"),
        ("evaluate", "runs/again/seed0"),
    ]
    said = [line for line in stdout.splitlines() if "runs again here" in line]
    # curated's training ran here for again, a stand-in: again's kept curation read a model trained the same way and
    # would stand, but again's evaluation reads its training, which reads it: it runs again here too, and says so;
    # once it ran, the steps after it are judged again on what it made (and run)
    assert [line.split(": its output")[0] for line in said] == [
        "[ablate] runs/curated/seed0: train runs again here",
        "[ablate] runs/again/seed0: curate runs again here",
    ]
    assert said[0].startswith(
        f"[ablate] runs/curated/seed0: train runs again here: its output is kept in {kept} but not on this machine, "
        "and again seed 0 still has to run"
    )
    # each step's line names the run it belongs to: the stand-in training is curated's, not again's
    ran = [line.rsplit(" (", 1)[0] for line in stdout.splitlines() if line.startswith("[ablate] again seed 0: ")]
    assert [line for line in ran if line.endswith("ran")] == [
        "[ablate] again seed 0: train of runs/curated/seed0 (its input) ran",
        "[ablate] again seed 0: curate ran",
        "[ablate] again seed 0: train ran",
        "[ablate] again seed 0: evaluate ran",
    ]
    assert (kept / "runs" / "again" / "seed0" / ".ablate" / "evaluate.json").exists()
    stand_in = json.loads((out / "ablate" / "runs" / "curated" / "seed0" / ".ablate" / "train.json").read_text())
    assert stand_in["stand_in"] is True and stand_in["key"] == json.loads(train_marker)["key"]
    assert (curated / "train" / "log_history.json").read_bytes() == log_history and marker.read_bytes() == train_marker
    model = "<ablate>/runs/curated/seed0/train/model"
    assert json.loads((curated / ".ablate" / "evaluate.json").read_text())["inputs"][model] != sha_of_model(out)

    # the next call: curated's kept evaluation, and again as kept from the kept model (its outputs here gone), stand
    shutil.rmtree(again)
    shutil.copytree(tmp_path / "again_from_the_kept_model", again)
    shutil.rmtree(out / "ablate" / "runs" / "again")
    happened, stdout = ablate(out, *both)
    assert [e for e in happened if e["event"] == "ran"] == []
    said = [line for line in stdout.splitlines() if "stands" in line]
    assert said == [
        f"[ablate] runs/{run}: its kept {stage} stands: it read the kept run's {model}; the one here was trained the "
        "same way (the same key) for another run, and its bits differ"
        for run, stage in (("curated/seed0", "evaluate"), ("again/seed0", "curate"), ("again/seed0", "train"))
    ]
    assert (curated / "train" / "log_history.json").read_bytes() == log_history

    # once curated's own evaluation has to run here, it reads the stand-in: the stand-in becomes the kept run's, and
    # again, kept from the model before it, follows it
    (curated / ".ablate" / "evaluate.json").unlink()
    happened, stdout = ablate(out, *both)
    assert [(e["stage"], e["folder"]) for e in happened if e["event"] == "ran"] == [
        ("evaluate", "runs/curated/seed0"),
        ("curate", "runs/again/seed0"),
        ("train", "runs/again/seed0"),
        ("evaluate", "runs/again/seed0"),
    ]
    assert "[ablate] runs/curated/seed0: the train made here as another run's input becomes this run's" in stdout
    stand_in_log = (out / "ablate" / "runs" / "curated" / "seed0" / "train" / "log_history.json").read_bytes()
    assert (curated / "train" / "log_history.json").read_bytes() == stand_in_log  # not by != log_history: the two
    # trainings' logs differ only in their timing fields, which two tiny trainings once matched to the 0.1 ms
    assert json.loads((curated / ".ablate" / "evaluate.json").read_text())["inputs"][model] == sha_of_model(out)
    assert "stand_in" not in json.loads(marker.read_text())


def sha_of_model(out: Path) -> str:
    """The checksum a marker records for curated's trained model in ``out`` (`limo.ablation.markers.Checksums.of`)."""
    sums = Checksums(out / "ablate" / "checksums.jsonl")
    return sums.of(out / "ablate" / "runs" / "curated" / "seed0" / "train" / "model")


@pytest.mark.slow
def test_a_kept_run_whose_curation_runs_again_with_new_data_is_trained_and_evaluated_again(
    finished, tmp_path, overfit_model_dir
):
    """A clone with ``results/`` alone and another base model: curated's run is retrained, so the arm after it is
    curated again from the new model, and its training and evaluation, kept from the old one, must run again too.
    Judged once before the item's curation ran, they read as kept, and the old evaluation was reused (seen in the
    preference campaign: an rft run retrained on new samples, its kept evaluation of the model before reused)."""
    shutil.copytree(finished / "conf", tmp_path / "conf")
    kept = tmp_path / "results"
    shutil.copytree(finished / "out" / "results", kept)
    happened, _ = ablate(tmp_path / "out", f"model.path={overfit_model_dir}", "--results-dir", str(kept))
    ran = {(e["stage"], e["folder"]) for e in happened if e["event"] == "ran"}
    assert {("curate", "runs/again/seed0"), ("train", "runs/again/seed0"), ("evaluate", "runs/again/seed0")} <= ran
    assert not [e for e in happened if e.get("from") == "results" and "again" in e["folder"]]
