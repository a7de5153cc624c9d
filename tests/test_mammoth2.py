"""MAmmoTH2 mining: the embedded corpus, fastText recall on held-out pages, JSONL / WARC input through
datatrove, accounting, and the recipe end to end (with resume)."""

from __future__ import annotations

import gzip
import io
import json
import subprocess
from pathlib import Path

import pytest

from curation.executors import ExecutorError, ExecutorOptions
from curation.methods.mammoth2.corpus import MATH, OTHER, CorpusSpec, build_embedded_corpus, model_attempts
from curation.methods.mammoth2.recall import (
    FastTextParams,
    RecallSettings,
    iter_folder,
    iter_jsonl,
    precision_recall,
    run_recall,
    top_k,
    train_classifier,
)
from eval.options import OptionsError
from tests.funnel_schema import check_one_schema
from tests.launch import entry

SEED_CATEGORIES = ("Number-Theory", "Inequality", "Sequence")
WEB_CATEGORIES = ("Polynomial", "Combinatorics")
# The recipe's classifier settings (tests/test_recipes.py composes the recipe itself).
PARAMS = FastTextParams(dim=64, lr=0.5, word_ngrams=2, min_count=1, epoch=10, bucket=100_000, seed=42)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    from curation.pool.champ import STRONG_MODELS, UNAIDED_SETTINGS, load_champ_pool

    pool = load_champ_pool()
    attempts = model_attempts(pool.model_chains, models=STRONG_MODELS, settings=UNAIDED_SETTINGS, per_problem=2)
    spec = CorpusSpec(seed_categories=SEED_CATEGORIES, web_categories=WEB_CATEGORIES, seed=42)
    return build_embedded_corpus(tmp_path_factory.mktemp("corpus"), spec, pool.problems, attempts)


@pytest.fixture(scope="module")
def classifier(corpus, tmp_path_factory):
    return train_classifier(corpus.seed_positive, corpus.seed_negative, tmp_path_factory.mktemp("clf"), PARAMS)


@pytest.fixture(scope="module")
def recalled(corpus, classifier, tmp_path_factory):
    return run_recall(corpus.web.parent, classifier.path, tmp_path_factory.mktemp("recall"), RecallSettings())


def test_seed_and_web_pages_come_from_disjoint_categories_and_packages(corpus):
    seeds = list(iter_jsonl(corpus.seed_positive)) + list(iter_jsonl(corpus.seed_negative))
    web = list(iter_jsonl(corpus.web))
    assert {r["group"] for r in seeds if r["gold_label"] == MATH} == set(SEED_CATEGORIES)
    assert {r["group"] for r in web if r["gold_label"] == MATH} == set(WEB_CATEGORIES)
    seed_packages = {r["group"] for r in seeds if r["gold_label"] == OTHER}
    web_packages = {r["group"] for r in web if r["gold_label"] == OTHER}
    assert seed_packages and web_packages and not seed_packages & web_packages
    digits = [r for r in web if r["gold_label"] == OTHER and sum(c.isdigit() for c in r["text"]) > 50]
    assert len(digits) > 20, "number-heavy non-math pages keep the classifier from winning on digits"
    assert corpus.summary["counts"]["web_math"] > 100 and corpus.summary["counts"]["web_other"] > 200


def test_recall_reaches_090_precision_and_recall_on_held_out_pages(recalled, classifier):
    assert classifier.positives == classifier.negatives > 300  # one random negative per seed page
    quality = precision_recall(iter_folder(recalled.recalled_dir), iter_folder(recalled.excluded_dir))
    assert quality["precision"] >= 0.9 and quality["recall"] >= 0.9, quality
    counts = recalled.counts
    assert counts["read"] == counts["kept"] + counts["excluded"] + counts["bad_input"] and counts["bad_input"] == 0
    kept = list(iter_folder(recalled.recalled_dir))
    assert all(row["recall_score"] >= 0.5 and row["text"] for row in kept)
    assert all(row["reason"] == "below_threshold" for row in iter_folder(recalled.excluded_dir))


def test_top_k_keeps_the_best_scores_and_rejects_the_rest_with_a_reason(recalled):
    rows = list(iter_folder(recalled.recalled_dir))
    kept, cut = top_k(iter(rows), 10)
    scores = sorted((r["recall_score"] for r in rows), reverse=True)
    assert [r["recall_score"] for r in kept] == scores[:10]
    assert len(cut) == len(rows) - 10 and all(r["reason"] == "rank > top_k=10" for r in cut)


def test_bad_input_lines_are_recorded_with_file_row_and_reason(corpus, classifier, tmp_path):
    dump = tmp_path / "dump"
    dump.mkdir()
    good = [json.dumps(row) for row in list(iter_jsonl(corpus.web))[:20]]
    lines = good[:5] + ['{"id": "broken", "text": '] + good[5:] + ['{"id": "empty", "text": ""}']
    with gzip.open(dump / "part-0.jsonl.gz", "wt", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    result = run_recall(dump, classifier.path, tmp_path / "out", RecallSettings())
    assert result.counts == {
        "read": 22,
        "bad_input": 2,
        "scored": 20,
        "kept": result.counts["kept"],
        "excluded": 20 - result.counts["kept"],
    }
    bad = sorted(iter_folder(tmp_path / "out" / "bad_input"), key=lambda r: r["row"])
    assert [(r["row"], r["field"]) for r in bad] == [(6, "text"), (22, "text")]
    assert bad[0]["reason"].startswith("invalid JSON") and "no non-empty 'text'" in bad[1]["reason"]
    assert bad[0]["source"].endswith("part-0.jsonl.gz")


def _warc(path: Path, pages: list[tuple[str, str]]) -> None:
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    with open(path, "wb") as handle:
        writer = WARCWriter(handle, gzip=True)
        for url, body in pages:
            html = f"<html><head><script>var x = 1;</script></head><body><p>{body}</p></body></html>"
            headers = StatusAndHeaders("200 OK", [("Content-Type", "text/html")], protocol="HTTP/1.0")
            record = writer.create_warc_record(
                url,
                "response",
                payload=io.BytesIO(html.encode()),
                http_headers=headers,
                warc_headers_dict={"WARC-Identified-Payload-Type": "text/html"},
            )
            writer.write_record(record)


def test_warc_pages_are_read_stripped_of_markup_and_scored(corpus, classifier, tmp_path):
    web = list(iter_jsonl(corpus.web))
    math_page = next(r for r in web if r["gold_label"] == MATH)
    other_page = next(r for r in web if r["gold_label"] == OTHER)
    (tmp_path / "crawl").mkdir()
    pages = [(math_page["url"], math_page["text"]), (other_page["url"], other_page["text"]), ("http://x.org/", "")]
    _warc(tmp_path / "crawl" / "00.warc.gz", pages)
    result = run_recall(tmp_path / "crawl", classifier.path, tmp_path / "out", RecallSettings(input_format="warc"))
    kept = list(iter_folder(result.recalled_dir))
    assert result.counts["read"] == 3 and [r["url"] for r in kept] == [math_page["url"]]
    reasons = sorted(r["reason"] for r in iter_folder(result.excluded_dir))
    assert reasons == ["below_threshold", "empty_text"]
    assert "<p>" not in kept[0]["text"] and "var x" not in kept[0]["text"]


@pytest.mark.slow
def test_recall_sharded_over_two_processes_keeps_the_same_documents(corpus, classifier, recalled, tmp_path):
    dump = _split_dump(corpus, tmp_path / "dump")
    sharded = run_recall(dump, classifier.path, tmp_path / "out", RecallSettings(tasks=2, workers=2))
    files = sorted((tmp_path / "out" / "recalled").iterdir())
    assert len(files) == 2  # one output file per task
    written = [path.stat().st_mtime_ns for path in files]
    run_recall(dump, classifier.path, tmp_path / "out", RecallSettings(tasks=2, workers=1))
    assert [path.stat().st_mtime_ns for path in files] == written, "a rerun with other workers scored again"
    assert sorted(r["id"] for r in iter_folder(sharded.recalled_dir)) == sorted(
        r["id"] for r in iter_folder(recalled.recalled_dir)
    )


def _split_dump(corpus, folder: Path, parts: int = 4) -> Path:
    rows = list(iter_jsonl(corpus.web))
    folder.mkdir()
    for part in range(parts):
        text = "".join(json.dumps(r) + "\n" for r in rows[part::parts])
        (folder / f"part-{part}.jsonl").write_text(text, encoding="utf-8")
    return folder


def test_recall_runs_on_the_executor_it_is_given(corpus, classifier, tmp_path):
    """The run's executor scores the shards: a Slurm executor without a partition stops before any is scored."""
    with pytest.raises(ExecutorError, match="executor slurm needs a partition"):
        run_recall(corpus.web.parent, classifier.path, tmp_path / "out", RecallSettings(), ExecutorOptions("slurm"))
    assert not (tmp_path / "out" / "recalled").exists()


def test_a_recall_job_with_other_tasks_replaces_the_earlier_outputs(corpus, classifier, recalled, tmp_path):
    dump = _split_dump(corpus, tmp_path / "dump")
    first = run_recall(dump, classifier.path, tmp_path / "out", RecallSettings(tasks=2))
    again = run_recall(dump, classifier.path, tmp_path / "out", RecallSettings(tasks=1))
    assert [p.name for p in sorted(again.recalled_dir.iterdir())] == ["00000.jsonl"]  # no file left from task 1
    assert first.counts == again.counts == recalled.counts
    assert sorted(r["id"] for r in iter_folder(again.recalled_dir)) == sorted(
        r["id"] for r in iter_folder(recalled.recalled_dir)
    )


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:placement_group:DeprecationWarning")
def test_recall_shards_run_as_ray_tasks_and_keep_the_same_documents(
    corpus, classifier, recalled, tmp_path, ray_instance
):
    dump = _split_dump(corpus, tmp_path / "dump")
    ray = ExecutorOptions("ray", workers=2, mem_per_cpu_gb=0.5)
    result = run_recall(dump, classifier.path, tmp_path / "out", RecallSettings(tasks=2), ray)
    logs = sorted(p.name for p in (tmp_path / "out" / "jobs").glob("recall-*/datatrove/logs/task_*.log"))
    assert logs == ["task_00000.log", "task_00001.log"]  # each shard ran through the executor's task runner
    assert sorted(r["id"] for r in iter_folder(result.recalled_dir)) == sorted(
        r["id"] for r in iter_folder(recalled.recalled_dir)
    )


def _curate(repo_root: Path, output_dir: Path) -> subprocess.CompletedProcess:
    command = entry(
        "limo.curate",
        "recipe=mammoth2",
        f"output_dir={output_dir}",
        "curate.stages.decontam.benchmarks=[champ_heldout]",
    )
    return subprocess.run(command, cwd=repo_root, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def recipe_run(repo_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("mammoth2_run")
    done = _curate(repo_root, out)
    assert done.returncode == 0, done.stderr[-3000:]
    return out / "curate", done


def test_recipe_runs_end_to_end_with_provenance_and_reconciled_counts(recipe_run):
    out, done = recipe_run
    assert "[curate] mammoth2:" in done.stdout
    funnel = check_one_schema(out, "mammoth2")
    documents, pairs = funnel["totals"]["documents"], funnel["totals"]["pairs"]
    assert documents["read"] == documents["excluded"] + documents["yielded_pairs"]
    assert pairs["extracted"] == pairs["refine_rejected"] + pairs["selected"] + pairs["dropped"]
    messages = [json.loads(line) for line in (out / "messages.jsonl").read_text().splitlines()]
    curated = [json.loads(line) for line in (out / "curated.jsonl").read_text().splitlines()]
    assert len(messages) == len(curated) == pairs["selected"] > 20
    assert all(
        m["messages"][-1]["content"].rstrip(". ").endswith("}") and "\\boxed{" in m["messages"][-1]["content"]
        for m in messages
    )
    assert all(row["provenance"]["url"] and row["provenance"]["recall_score"] >= 0.5 for row in curated)
    stages = {s["stage"]: s for s in funnel["stages"]}
    assert list(stages) == ["recall", "extract", "refine", "dedup", "decontam"]
    assert stages["extract"]["dropped"].get("malformed_output", 0) > 0  # the transcript's broken replies
    assert stages["decontam"]["dropped"], "CHAMP's held-out problems are on the mined pages"
    assert stages["refine"]["unit"] == "pair" and stages["extract"]["unit"] == "document"


def test_rejects_manifest_and_report_explain_the_run(recipe_run):
    out, _ = recipe_run
    rejects = [json.loads(line) for line in (out / "rejects.jsonl").read_text().splitlines()]
    assert all(set(r) == {"kind", "id", "problem_id", "stage", "reason", "detail"} for r in rejects)
    malformed = [r for r in rejects if r["reason"] == "malformed_output"]
    assert malformed and all(
        r["detail"]["message"].startswith("malformed extraction after") and r["detail"]["outputs"] for r in malformed
    )
    assert {r["stage"] for r in rejects} >= {"extract", "dedup", "decontam"}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["method"] == "mammoth2" and manifest["seed"] == 42
    assert set(manifest["corpus"]["sha256"]) == {"seed_positive", "seed_negative", "web"}
    assert manifest["recall_quality"]["precision"] >= 0.9 and manifest["recall_quality"]["recall"] >= 0.9
    assert manifest["packages"]["datatrove"] != "not installed" and manifest["classifier"]["sha256"]
    report = (out / "report.md").read_text()
    assert "| recall | document |" in report and "precision" in report


def test_a_killed_run_resumes_and_reproduces_the_same_outputs(recipe_run, repo_root):
    out, _ = recipe_run
    caches = [*sorted((out / "mammoth2").glob("extract-*.jsonl")), *sorted((out / "mammoth2").glob("refine-*.jsonl"))]
    assert len(caches) == 2, "one generation cache per stage"
    lines = {path: path.read_text().splitlines() for path in caches}
    before = {name: (out / name).read_text() for name in ("messages.jsonl", "curated.jsonl", "rejects.jsonl")}
    # What a kill mid-run leaves: part of each stage's replies and a torn last line.
    for path, kept in zip(caches, (40, 30), strict=True):
        path.write_text("\n".join(lines[path][:kept]) + "\n" + lines[path][kept][:25])
    done = _curate(repo_root, out.parent)
    assert done.returncode == 0, done.stderr[-3000:]
    for path in caches:  # every reply once: the kept ones were not asked again, the lost ones were
        assert sorted(path.read_text().splitlines()) == sorted(lines[path])
    assert {name: (out / name).read_text() for name in before} == before


@pytest.mark.slow
def test_a_run_in_another_folder_writes_the_same_bytes_and_names_its_executor(recipe_run, repo_root, tmp_path):
    """Provenance paths are relative to the run directory: the corpus file's path is no longer absolute."""
    out, _ = recipe_run
    done = _curate(repo_root, tmp_path / "elsewhere")
    assert done.returncode == 0, done.stderr[-3000:]
    other = tmp_path / "elsewhere" / "curate"
    for name in ("curated.jsonl", "messages.jsonl", "rejects.jsonl"):
        assert (other / name).read_bytes() == (out / name).read_bytes(), name
    curated = [json.loads(line) for line in (out / "curated.jsonl").read_text().splitlines()]
    assert {row["provenance"]["file_path"] for row in curated} == {"curate/mammoth2/corpus/web/web.jsonl"}
    manifests = [json.loads((folder / "manifest.json").read_text()) for folder in (out, other)]
    assert [m["execution"]["executor"] for m in manifests] == ["local", "local"]
    assert [{k: v for k, v in m.items() if k != "packages"} for m in manifests][0] == {
        k: v for k, v in manifests[1].items() if k != "packages"
    }


def test_unknown_keys_in_the_section_fail_at_start_up():
    from limo.cli.compose import compose
    from limo.setup.curate import build_curation

    cfg = compose("mammoth2", ["+curate.mammoth2.recall.treshold=0.3"])
    with pytest.raises(OptionsError, match=r"curate.mammoth2.recall.treshold: unknown key"):
        build_curation(cfg)
    options = build_curation(compose("mammoth2", ["curate.mammoth2.recall.top_k=5"])).options
    assert options.recall.top_k == 5 and options.corpus.web_categories == WEB_CATEGORIES


def test_a_corpus_from_named_distributions_does_not_depend_on_the_environment():
    from curation.methods.mammoth2.corpus import selected_distributions

    chosen = selected_distributions(["SymPy", "latex2sympy2-extended", "sympy"])  # PEP 503 names, duplicates once
    assert [d.metadata["Name"].lower() for d in chosen] == ["latex2sympy2_extended", "sympy"]
    with pytest.raises(ValueError, match="not installed: \\['no-such-package'\\]"):
        selected_distributions(["sympy", "no-such-package"])
