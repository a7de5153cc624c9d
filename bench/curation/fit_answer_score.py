"""Fit `curation.meaning.confirm.answer_score`'s weights: which near item, its answer the gold, is the source.

Usage: ``python bench/curation/fit_answer_score.py [--data-dir ../shared/data] [--held-out held_out_6]``.

The rows are those of ``bench/curation/semantic_decontam.py``: the hand-written paraphrase sets (every set except
``FIT_EXCLUDES``, kept for a blind measurement) and the clean MATH-train problems whose id hashes to the
fitting half (the other half is never fitted on). For each row, each of its nearest `ANSWER_CANDIDATES` items
(MiniLM retrieval, as the stage does) whose answer agrees with the row's gold is one example: positive when it
is the row's source. Features are `curation.meaning.confirm.answer_features`, the model sklearn's logistic regression
(C=1, positives weighted 3). Prints the weights as the Python literal `ANSWER_SCORE_WEIGHTS` holds, whether they
match the module's, and, with ``--held-out SPLIT``, a fit without that split and the clean half it never saw,
then recall on that split and the clean rows it would add at `answer_min_score` (the other paths aside).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.curation.decontam import BENCHMARKS, specs  # noqa: E402
from bench.curation.semantic_decontam import build_pool, golds  # noqa: E402
from curation.meaning import confirm as rules  # noqa: E402
from curation.meaning import embedding  # noqa: E402
from curation.meaning import index as retrieval  # noqa: E402
from curation.options import DecontamOptions, SemanticDecontamOptions  # noqa: E402
from curation.similarity import answers_agree  # noqa: E402
from curation.stages.decontam import load_benchmark_items  # noqa: E402

FIT_EXCLUDES = ("held_out_7",)  # written blind for the measurement after the fit


def clean_half(pid: str) -> int:
    return hashlib.blake2b(pid.encode(), digest_size=4).digest()[0] % 2


def examples(data_dir: Path) -> tuple[np.ndarray, np.ndarray, list[tuple[str, str, str]]]:
    """``(features, labels, [(row id, candidate key, split)])`` of every agreeing candidate."""
    options = SemanticDecontamOptions(enabled=True)
    items, _ = load_benchmark_items(
        BENCHMARKS, specs(), DecontamOptions(benchmarks=BENCHMARKS, data_dir=str(data_dir))
    )
    texts, planted = build_pool(data_dir, items)
    answers = golds(data_dir, planted)
    ids = [p for p in texts if not p.startswith("copy/") and planted.get(p, ("", "", ""))[2] not in FIT_EXCLUDES]
    rarity = rules.NumberRarity.of([i.text for i in items])
    index = retrieval.SemanticIndex.build(
        [rules.item_key(i) for i in items], embedding.embed_texts([i.text for i in items], options)
    )
    similarities, rows = index.nearest(embedding.embed_texts([texts[p] for p in ids], options), options.k)
    features, labels, meta = [], [], []
    for pid, sims, near in zip(ids, similarities, rows, strict=True):
        source, _, half = planted.get(pid, ("", "clean", "clean"))
        for rank in range(min(rules.ANSWER_CANDIDATES, len(near))):
            item = items[near[rank]]
            if not answers_agree(answers[pid], item.answer):
                continue
            match = rules.evidence(texts[pid], item.text, float(sims[rank]), rules.item_key(item), rarity)
            margin = float(sims[rank]) - max((float(s) for i, s in enumerate(sims) if i != rank), default=0.0)
            row = rules.answer_features(texts[pid], item, match, margin, rank == 0, rarity)
            features.append([row[name] for name in rules.ANSWER_SCORE_FEATURES])
            labels.append(match.key == source)
            meta.append((pid, match.key, half if source else f"clean_{clean_half(pid)}"))
    return np.array(features), np.array(labels), meta


def fit(features: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=1.0, max_iter=5000, class_weight={0: 1, 1: 3}).fit(features, labels)
    weights = {"bias": round(float(model.intercept_[0]), 3)}
    return weights | {n: round(float(w), 3) for n, w in zip(rules.ANSWER_SCORE_FEATURES, model.coef_[0], strict=True)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path(__file__).resolve().parents[3] / "shared" / "data")
    parser.add_argument("--held-out", help="also fit without this split and report recall on it")
    args = parser.parse_args()
    features, labels, meta = examples(args.data_dir)
    halves = np.array([m[2] for m in meta])
    fitted = halves != "clean_1"
    weights = fit(features[fitted], labels[fitted])
    print(f"{fitted.sum()} examples ({labels[fitted].sum()} positive)\nANSWER_SCORE_WEIGHTS = {weights}")
    print("matches curation.meaning:", weights == rules.ANSWER_SCORE_WEIGHTS)
    if args.held_out:
        trial = fit(features[fitted & (halves != args.held_out)], labels[fitted & (halves != args.held_out)])
        bar = SemanticDecontamOptions().answer_min_score
        best: dict[str, tuple[float, str]] = {}
        for row, (pid, key, _) in zip(features, meta, strict=True):
            score = rules.answer_score(dict(zip(rules.ANSWER_SCORE_FEATURES, row, strict=True)), trial)
            if score >= bar and score > best.get(pid, (-np.inf, ""))[0]:
                best[pid] = (score, key)
        sources = {pid: key for (pid, key, _), label in zip(meta, labels, strict=True) if label}
        held = {pid for pid, _, half in meta if half == args.held_out}
        caught = sum(1 for pid in held if pid in best and best[pid][1] == sources.get(pid))
        clean = [pid for pid in best if pid.startswith("math_train/") and clean_half(pid) == 1]
        print(f"fitted without {args.held_out}: {caught}/{len(held)} of its rows with an agreeing candidate caught "
              f"by this path alone; clean half never fitted: {len(clean)} flagged")  # fmt: skip


if __name__ == "__main__":
    main()
