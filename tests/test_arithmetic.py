"""The real model's task (`eval.benchmarks.arithmetic`): the shipped files are what the generator writes, pool and
held-out problems never meet, and each kind of chain is what its name says — the grader accepts the careful and terse
ones and rejects the careless ones, and curation keeps only careful chains."""

from __future__ import annotations

import gzip
import json
import re
from collections import Counter
from pathlib import Path

import pytest

from eval.benchmarks.arithmetic import HELDOUT_PROBLEMS, POOL_PROBLEMS, files
from eval.grading.grader import grade

DATA = Path(__file__).resolve().parents[1] / "recipes" / "data" / "arithmetic"


def _pool() -> list[dict]:
    with gzip.open(DATA / "pool.jsonl.gz", "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def test_the_shipped_files_are_the_generator_s_bytes():
    for name, data in files().items():
        assert (DATA / name).read_bytes() == data, (
            f"{name}: regenerate with python -m eval.benchmarks.arithmetic {DATA}"
        )


def test_pool_and_held_out_problems_never_share_a_text():
    held = [json.loads(line) for line in (DATA / "heldout.jsonl").read_text(encoding="utf-8").splitlines()]
    pool = _pool()
    assert len(held) == HELDOUT_PROBLEMS and len({r["problem_id"] for r in pool}) == POOL_PROBLEMS
    assert not {r["problem"] for r in held} & {r["problem"] for r in pool}
    assert Counter(r["level"] for r in held).keys() == {1, 2, 3}


def test_each_chain_kind_grades_as_its_name_says():
    verdicts: dict[str, Counter] = {}
    for row in _pool()[:250]:  # 50 problems x 5 chains
        verdict = grade(row["answer"], row["chain"], problem=row["problem"])
        verdicts.setdefault(row["generator"], Counter())[verdict.correct] += 1
    assert verdicts["tutor"] == Counter({True: 50}) and verdicts["quick"] == Counter({True: 50})
    assert verdicts["careless"] == Counter({False: 50})
    assert verdicts["rambler"][True] == 50  # right answer: the repetition check drops it, not the grader
    assert verdicts["unsure"][True] == 0


@pytest.mark.slow
def test_curation_keeps_only_careful_chains_of_problems_curation_may_use(tmp_path):
    from limo.cli.compose import compose
    from limo.setup.curate import build_curation

    build_curation(compose("smol_limo", [f"output_dir={tmp_path}"])).run()
    curated = [json.loads(line) for line in (tmp_path / "curate" / "curated.jsonl").read_text().splitlines()]
    assert len(curated) == 200 and {r["generator"] for r in curated} == {"tutor"}
    assert all(r["verdict"]["correct"] for r in curated)
    rejects = Counter(json.loads(line)["reason"] for line in (tmp_path / "curate" / "rejects.jsonl").open())
    assert rejects["answer_incorrect"] >= POOL_PROBLEMS and rejects["repetition_loop"] > 0


# --- The unseen-phrasing set (`eval.benchmarks.arithmetic_unseen`) ---------------------------------------------------


def _unseen() -> list[dict]:
    return [json.loads(line) for line in (DATA / "unseen.jsonl").read_text(encoding="utf-8").splitlines()]


def _training_texts() -> list[str]:
    """Every problem text a training generator wrote: the pool, the held-out set and the training problems."""
    held = (DATA / "heldout.jsonl").read_text(encoding="utf-8").splitlines()
    train = (DATA / "problems.jsonl").read_text(encoding="utf-8").splitlines()
    return [r["problem"] for r in _pool()] + [json.loads(line)["problem"] for line in (*held, *train)]


def _masked(text: str) -> str:
    """A text with its numbers, names, things and pronouns replaced by placeholders: the sentence's shape."""
    from eval.benchmarks import arithmetic, arithmetic_unseen

    names = {*arithmetic.WIDE_NAMES, *arithmetic_unseen.PEOPLE}
    things = {w for d in arithmetic.WIDE_DOMAINS.values() for w in d} | {
        w for d in arithmetic_unseen.THINGS.values() for w in d
    }
    text = re.sub(r"\d+", "#", text)
    text = re.sub(r"\b(" + "|".join(sorted(names)) + r")\b", "NAME", text)
    text = re.sub(r"\b(" + "|".join(map(re.escape, sorted(things, key=len, reverse=True))) + r")\b", "X", text)
    return re.sub(r"\b(he|she|him|her)\b", "P", text, flags=re.IGNORECASE).lower()


def _has_word(text: str, word: str) -> bool:
    return re.search(rf"\b{re.escape(word)}\b", text, flags=re.IGNORECASE) is not None


def test_the_unseen_file_is_the_generator_s_bytes_and_has_two_parts():
    from eval.benchmarks.arithmetic_unseen import DEV_PROBLEMS, UNSEEN_PROBLEMS, file_bytes

    assert (DATA / "unseen.jsonl").read_bytes() == file_bytes(), (
        f"regenerate: python -m eval.benchmarks.arithmetic_unseen {DATA}"
    )
    rows = _unseen()
    assert len(rows) == UNSEEN_PROBLEMS and len({r["problem"] for r in rows}) == UNSEEN_PROBLEMS
    assert Counter(r["part"] for r in rows) == {"dev": DEV_PROBLEMS, "untouched": UNSEEN_PROBLEMS - DEV_PROBLEMS}
    assert Counter(r["level"] for r in rows).keys() == {1, 2, 3}


def test_no_operation_word_name_or_thing_of_one_generator_is_in_the_other():
    from eval.benchmarks import arithmetic, arithmetic_unseen

    unseen, training = [r["problem"] for r in _unseen()], _training_texts()
    for word in arithmetic_unseen.OPERATION_WORDS:
        assert not any(_has_word(t, word) for t in training), f"the unseen set's {word!r} is in a training text"
    for word in arithmetic.OPERATION_WORDS:
        assert not any(_has_word(t, word) for t in unseen), f"the training generator's {word!r} is in the unseen set"
    assert not set(arithmetic.WIDE_NAMES) & set(arithmetic_unseen.PEOPLE)
    training_things = {d[0] for d in arithmetic.WIDE_DOMAINS.values()}
    assert not training_things & {d[0] for d in arithmetic_unseen.THINGS.values()}


def test_no_sentence_shape_is_shared_and_few_word_runs_are():
    """Masked (numbers, names, things, pronouns as placeholders), no sentence of the unseen set is a training one, and
    on average under a tenth of its four-word runs occur in training texts (those that do are "how many X", "the
    X into #": the language's, not a template's)."""

    def sentences(text: str) -> list[str]:
        return [s for s in re.split(r"(?<=[.?;])\s+", _masked(text)) if s]

    def runs(text: str) -> set[tuple[str, ...]]:
        words = re.findall(r"[a-z#]+", _masked(text))
        return {tuple(words[i : i + 4]) for i in range(len(words) - 3)}

    training, unseen = _training_texts(), [r["problem"] for r in _unseen()]
    shapes = {s for t in training for s in sentences(t)}
    assert not [s for t in unseen for s in sentences(t) if s in shapes]
    known = {g for t in training for g in runs(t)}
    shares = [len(runs(t) & known) / len(runs(t)) for t in unseen]
    assert sum(shares) / len(shares) < 0.1


def test_training_problems_are_new_and_phrased_widely():
    pool, held = {r["problem"] for r in _pool()}, {json.loads(x)["problem"] for x in (DATA / "heldout.jsonl").open()}
    train = [json.loads(line) for line in (DATA / "problems.jsonl").read_text(encoding="utf-8").splitlines()]
    texts = {r["problem"] for r in train}
    assert len(texts) == len(train) and not texts & (pool | held)
    from eval.benchmarks.arithmetic import WIDE_ADD, WIDE_SUBTRACT

    verbs = [t.split("{b}")[0].replace("{who}", "").strip() for t in (*WIDE_ADD, *WIDE_SUBTRACT)]
    used = {v for v in verbs if v and any(v.lower() in t.lower() for t in pool)}
    assert len(used) >= 10, used  # the pool tells its operations in many ways, not one verb each
