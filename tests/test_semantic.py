"""Decontamination and dedup by meaning (`curation.meaning`) and dedup precision, on real wordllama embeddings."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from curation.executors import ExecutorOptions
from curation.meaning import confirm as rules
from curation.meaning import contamination, embedding, readings
from curation.meaning import index as retrieval
from curation.meaning import int8 as int8_module
from curation.meaning.confirm import confirm
from curation.meaning.contamination import (
    find_semantic_contamination,
    find_semantic_duplicates,
    judge_pairs,
    judge_request_id,
)
from curation.meaning.embedding import embed_texts
from curation.meaning.index import SemanticIndex
from curation.options import DedupOptions, SemanticDecontamOptions, SemanticDedupOptions, StageOptions
from curation.schema import Chain
from curation.similarity import numbers_of
from curation.stages import curate_items
from curation.stages.decontam import BenchmarkItem
from curation.stages.dedup import find_duplicates
from eval.backends.generation import CachedGenerator
from eval.backends.replay import ReplayBackend
from eval.benchmarks.loader import BenchmarkSpec
from eval.options import OptionsError, to_options
from eval.problem import Problem

ITEM = "How many positive 3-digit numbers are divisible by 11?"
PARAPHRASE = "How many positive three-digit integers are multiples of 11?"
SIBLING = "How many positive 3-digit numbers are divisible by 7?"
OPTIONS = SemanticDecontamOptions(enabled=True, model=embedding.WORDLLAMA)  # the unit tests: fast, 256 dimensions
UNSCREENED = dataclasses.replace(OPTIONS, screen="none")  # every problem to the model, as before the screen
PARAPHRASES = Path(__file__).resolve().parents[1] / "bench" / "data" / "paraphrases.jsonl"


def similarity(a: str, b: str) -> float:
    vectors = embed_texts([a, b], OPTIONS)
    return float(vectors[0] @ vectors[1])


def test_wordllama_embeddings_are_unit_vectors_that_see_meaning():
    texts = [ITEM, PARAPHRASE, "Find the area of a circle of radius 3.", "What is the area of a disk of radius 3?"]
    vectors = embed_texts(texts, OPTIONS)
    assert vectors.shape == (4, 256) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=5e-5)  # on a grid of 1/32767
    grid = vectors.astype(np.float64) * retrieval.UNIT_GRID
    np.testing.assert_allclose(grid, np.rint(grid), atol=0.01)
    scores = vectors @ vectors.T
    assert scores[0, 1] > scores[0, 2] and scores[2, 3] > scores[2, 1]
    assert embed_texts([], OPTIONS).shape[0] == 0


def wordllama_reference(texts: list[str]) -> np.ndarray:
    """wordllama's own mean pooling (`WordLlamaInference.embed`: padded batches of 64, no truncation) over the
    files `curation.meaning` reads, for comparing with its unpadded pooling."""
    import wordllama
    from safetensors import safe_open
    from tokenizers import Tokenizer
    from wordllama.inference import WordLlamaInference

    root = Path(wordllama.__file__).parent
    with safe_open(str(root / "weights" / "l2_supercat_256.safetensors"), framework="np") as weights:
        table = weights.get_tensor("embedding.weight")
    tokenizer = Tokenizer.from_file(str(root / "tokenizers" / "l2_supercat_tokenizer_config.json"))
    return WordLlamaInference(table, tokenizer).embed(texts, norm=False)


def assert_same_vectors(ours: np.ndarray, theirs: np.ndarray) -> None:
    """Equal up to float32 rounding: each row within 1e-5 of its norm (the two sum a text's token rows in other
    orders), zero rows zero."""
    assert ours.shape == theirs.shape and ours.dtype == theirs.dtype == np.float32
    np.testing.assert_array_less(np.linalg.norm(ours - theirs, axis=1), 1e-5 * np.linalg.norm(theirs, axis=1) + 1e-30)


def test_wordllama_pooling_is_wordllamas_own_on_long_empty_and_unusual_texts():
    """The unpadded pooling gives wordllama's vectors (before normalising) on texts of every length — a long one
    (about 9,000 tokens) is read whole, as wordllama reads it (no truncation) — empty ones (the zero vector), and
    others spread over several of wordllama's batches and of the pooling's row blocks."""
    long_text = " ".join(
        f"the {i}-th term of the sequence is x_{i} = {i * i} + \\frac{{1}}{{{i}}}" for i in range(300)
    )
    longs = [long_text, long_text + " and then a triangle"]
    texts = ["", "   ", ITEM, PARAPHRASE, "naïve café Δx ≤ 3 ∑ 😀"]
    texts += [f"{ITEM} " * (k % 40) + SIBLING[: k * 7 % len(SIBLING)] for k in range(150)]
    ours = embedding.load_embedder(embedding.WORDLLAMA)(longs + texts)
    theirs = np.concatenate([wordllama_reference(longs), wordllama_reference(texts)])  # padded to its own length
    assert ours.shape == (len(longs) + len(texts), 256)
    assert_same_vectors(ours, theirs)
    assert not ours[2].any() and np.linalg.norm(ours[0] - ours[1]) > 1e-3  # nothing past a length is cut off


@pytest.mark.shared_data
def test_wordllama_pooling_is_wordllamas_own_on_math_train(shared_data):
    rows = [json.loads(line) for line in (shared_data / "math_train.jsonl").open(encoding="utf-8")]
    # in order of length, as `curation.meaning` once sent them to wordllama (batches padded to their longest)
    texts = sorted((r["problem"] for r in rows), key=len)
    assert_same_vectors(embedding.load_embedder(embedding.WORDLLAMA)(texts), wordllama_reference(texts))


def test_wordllama_tokens_are_its_tokenizers_own_with_the_normaliser_in_python():
    """`embedding._metaspace_in_python` hands wordllama's tokenizer the texts as its normaliser would (and drops
    it): the same ids on spaces in runs, at the ends, tabs and newlines, the normaliser's own mark, empty texts,
    unicode, and special tokens (normalised piece by piece between them, as the tokenizer does); a tokenizer whose
    normaliser is another is left as it is."""
    from tokenizers import Tokenizer, normalizers

    source = embedding._package_folder("wordllama", "wordllama", "wordllama") / "tokenizers"
    own, fast = (Tokenizer.from_file(str(source / "l2_supercat_tokenizer_config.json")) for _ in range(2))
    prepared = embedding._metaspace_in_python(fast)
    assert fast.normalizer is None and own.normalizer is not None
    texts = [ITEM, PARAPHRASE, "", " ", "a  b", "  lead", "trail  ", "\n\n  \t x", "\u2581x", "x\u2581\u2581y"]
    texts += ["naïve café Δx ≤ 3 ∑ 😀", "a<s>b c", "<s>", " <s> ", "x</s><s>y", "<unk>z </s>", "<s></s>"]
    ids = [e.ids for e in own.encode_batch_fast(texts, add_special_tokens=False)]
    assert [e.ids for e in fast.encode_batch_fast(prepared(texts), add_special_tokens=False)] == ids
    assert ids[2] == [] and ids[4] != [e.ids for e in own.encode_batch_fast(["a b"], add_special_tokens=False)][0]
    other = Tokenizer.from_file(str(source / "l2_supercat_tokenizer_config.json"))
    other.normalizer = normalizers.Lowercase()
    assert embedding._metaspace_in_python(other)(["A b"]) == ["A b"] and other.normalizer is not None


def test_minilm_from_its_wheel_tells_a_paraphrase_from_another_problem():
    """``model: minilm`` reads all-MiniLM-L6-v2 from the installed wheel (no hub): unit vectors of 384 dimensions,
    the same for a text alone or in a batch of other lengths, a paraphrase nearer than the template sibling's
    unrelated neighbour, and the decontamination check catches the reworded item."""
    options = SemanticDecontamOptions(enabled=True, model=embedding.MINILM)
    texts = [ITEM, PARAPHRASE, "Find the area of a circle of radius 3.", "What is the area of a disk of radius 3?"]
    vectors = embed_texts(texts, options)
    assert vectors.shape == (4, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    scores = vectors @ vectors.T
    assert scores[0, 1] > 0.85 and scores[2, 3] > 0.7 and max(scores[0, 2], scores[1, 3]) < 0.5
    np.testing.assert_allclose(embed_texts([texts[2]], options)[0], vectors[2], atol=1e-5)  # padding is masked
    items = [BenchmarkItem("math500", "nt/1", ITEM), BenchmarkItem("math500", "geo/2", texts[3])]
    pool = {"p": PARAPHRASE, "s": SIBLING, "q": texts[2]}
    unscreened = find_semantic_contamination(pool, items, dataclasses.replace(options, screen="none"))
    assert {pid: m.key for pid, m in unscreened.matches.items()} == {"p": "math500/nt/1", "q": "math500/geo/2"}
    assert unscreened.closest["s"].swapped and unscreened.screened is None
    verdicts = find_semantic_contamination(pool, items, options)  # the sibling's numbers close every path
    assert verdicts.screened == {"p": "embedding", "q": "embedding"} and "s" not in verdicts.closest
    assert verdicts.matches == unscreened.matches


def test_minilm_in_int8_stays_near_float32_and_is_the_same_without_onnxruntime(monkeypatch, caplog):
    """``precision: int8`` (the default) runs MiniLM in exact integer arithmetic (`curation.meaning.int8`): each
    vector within 0.5% (cosine) of the float32 model's, not equal to it, the same for a text alone or among others,
    and the decontamination check decides as in float32. Without onnxruntime the same layers run in numpy, announced,
    and give the same vectors bit for bit."""
    texts = [ITEM, PARAPHRASE, SIBLING, "a", "Let $f(x) = x^3 - 3x + 1$. " * 12 + "How many real roots does $f$ have?"]
    exact = embedding.load_embedder(embedding.MINILM, "float32")(texts)
    int8 = embedding.load_embedder(embedding.MINILM, "int8")(texts)
    cosines = (retrieval.normalised(exact) * retrieval.normalised(int8)).sum(1)
    assert cosines.min() > 0.995 and np.abs(int8 - exact).max() > 1e-4
    np.testing.assert_array_equal(embedding.load_embedder(embedding.MINILM, "int8")([texts[1]])[0], int8[1])
    items = [BenchmarkItem("math500", "nt/1", ITEM)]
    pool = {"p": PARAPHRASE, "s": SIBLING, "q": texts[4]}
    unscreened = SemanticDecontamOptions(screen="none")
    verdicts = {
        precision: find_semantic_contamination(pool, items, dataclasses.replace(unscreened, precision=precision))
        for precision in embedding.PRECISIONS
    }
    decided = {precision: {p: (m.key, m.method) for p, m in v.matches.items()} for precision, v in verdicts.items()}
    assert decided["int8"] == decided["float32"] == {"p": ("math500/nt/1", "embedding")}
    assert abs(verdicts["int8"].matches["p"].similarity - verdicts["float32"].matches["p"].similarity) < 0.005
    assert embedding.embedder_key(SemanticDecontamOptions()) == "minilm-int8"
    int8_module.onnxruntime_module.cache_clear()
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if it were not installed: importing it fails
    try:
        with caplog.at_level("WARNING", logger="curation.meaning.int8"):
            np.testing.assert_array_equal(embedding._minilm("int8")(texts), int8)
        assert "MiniLM's int8 layers run in numpy (the same vectors, slower)" in caplog.text
    finally:
        int8_module.onnxruntime_module.cache_clear()


LOADERS = {embedding.MINILM: embedding._minilm, embedding.WORDLLAMA: embedding._wordllama}  # uncached by load_embedder


def test_model_weights_are_prepared_once_then_mapped_from_the_cache(tmp_path, monkeypatch, caplog):
    """A model's prepared arrays are written once to the cache folder and read back by memory map, with the vectors
    of a run without a cache; a folder that cannot be written is announced and the arrays are used from memory."""
    texts = [ITEM, PARAPHRASE, "Find the area of a circle of radius 3."]
    monkeypatch.setenv("LIMO_CACHE_DIR", "")
    embedding.cache_folder.cache_clear()
    uncached = {model: LOADERS[model]()(texts) for model in (embedding.MINILM, embedding.WORDLLAMA)}
    monkeypatch.setenv("LIMO_CACHE_DIR", str(tmp_path))
    embedding.cache_folder.cache_clear()
    try:
        for model in (embedding.MINILM, embedding.WORDLLAMA):
            for _ in range(2):  # prepared and written, then mapped
                np.testing.assert_array_equal(LOADERS[model]()(texts), uncached[model])
        folder = tmp_path / "semantic"
        assert sorted(p.name.split("-")[0] for p in folder.iterdir()) == ["minilm", "wordllama"]
        calls: list[int] = []

        def prepare() -> dict[str, np.ndarray]:
            calls.append(1)
            return {"w": np.arange(6, dtype=np.float32).reshape(2, 3)}

        first, second = embedding._mapped_arrays("toy-1", prepare), embedding._mapped_arrays("toy-1", prepare)
        assert len(calls) == 1 and isinstance(second["w"].base, np.memmap) and not second["w"].flags.writeable
        np.testing.assert_array_equal(first["w"], second["w"])
        digest = embedding._source_digest(prepare)  # the folder's name ends with the digest of the code that prepares
        (folder / f"toy-2-{digest}").write_text("in the way")  # the folder cannot be made
        with caplog.at_level("WARNING", logger="curation.meaning"):
            np.testing.assert_array_equal(embedding._mapped_arrays("toy-2", prepare)["w"], first["w"])
        assert f"toy-2-{digest} not cached" in caplog.text and not (folder / f"toy-2-{digest}").is_dir()
        damaged = folder / f"toy-1-{digest}" / "damaged"  # a cached folder damaged since it was written ...
        damaged.write_bytes(b"damaged")
        damaged.replace(folder / f"toy-1-{digest}" / "w.npy")  # ... by a new file (the mapped one's inode stays)
        with caplog.at_level("WARNING", logger="curation.meaning"):
            np.testing.assert_array_equal(embedding._mapped_arrays("toy-1", prepare)["w"], prepare()["w"])
        assert f"toy-1-{digest} in the cache is unreadable" in caplog.text and len(calls) == 4
        compiled: dict[str, Any] = {}
        exec(compile("def prepare():\n    return {'w': __import__('numpy').zeros(2)}", "<no file>", "exec"), compiled)
        with caplog.at_level("WARNING", logger="curation.meaning"):  # no source to key the cache by: not cached
            assert embedding._mapped_arrays("toy-3", compiled["prepare"])["w"].shape == (2,)
        assert "no source for prepare" in caplog.text and not list(folder.glob("toy-3*"))
    finally:
        embedding.cache_folder.cache_clear()


def test_minilm_int8_graphs_are_built_once_then_read_from_the_cache(tmp_path, monkeypatch):
    """MiniLM's int8 graphs (`curation.meaning.int8.LayerGraphs`) are serialised into the cache folder by the first
    process and read back by the next, which builds none (no onnx import, no `halved_weight`): the same vectors,
    bit for bit, as without a cache."""
    texts = [ITEM, PARAPHRASE, "Find the area of a circle of radius 3."]
    monkeypatch.setenv("LIMO_CACHE_DIR", "")
    embedding.cache_folder.cache_clear()
    uncached = embedding._minilm("int8")(texts)
    monkeypatch.setenv("LIMO_CACHE_DIR", str(tmp_path))
    embedding.cache_folder.cache_clear()
    try:
        np.testing.assert_array_equal(embedding._minilm("int8")(texts), uncached)
        (graphs,) = (tmp_path / "semantic").glob("minilm-*-graphs")
        names = sorted(p.name for p in graphs.iterdir())
        layout = "-plain" if "project-plain.onnx" in names else ""  # `int8.products_exact` on this CPU's kernel
        layers = [f"{half}-{layer}{layout}.onnx" for half in ("after", "before") for layer in range(6)]
        assert names == sorted([*layers, f"project{layout}.onnx", "probe.onnx"])

        def built_again(*args: Any) -> None:
            raise AssertionError("a graph was built again")

        monkeypatch.setattr(int8_module, "_GraphBuilder", built_again)
        np.testing.assert_array_equal(embedding._minilm("int8")(texts), uncached)
    finally:
        embedding.cache_folder.cache_clear()


MARBLES = BenchmarkItem(
    "b",
    "marbles",
    "A bag has 3 red marbles and 5 blue marbles. Two marbles are drawn without replacement. What is the probability "
    "that both are blue? Express your answer as a common fraction.",
    "\\frac{5}{14}",
)
RETOLD = (  # prose for the formula: the math test fails (content 0.17), the rare-numbers path has no rare number
    "Two marbles are taken, one after another and not put back, from a sack holding 5 blue and 3 red marbles. Give "
    "the probability that neither is red as a fraction."
)


def test_same_answer_path_catches_a_retold_problem_and_needs_a_telling_answer():
    minilm = SemanticDecontamOptions(enabled=True)
    assert minilm.model == embedding.MINILM and minilm.same_answer
    found = find_semantic_contamination({"p": RETOLD, "q": RETOLD}, [MARBLES], minilm, answers={"p": "5/14"})
    match = found.matches["p"]
    assert match.method == "same_answer" and match.answer == "\\frac{5}{14}" and match.content < minilm.min_content
    assert match.to_dict()["same_answer"] == "\\frac{5}{14}" and match.similarity >= minilm.answer_threshold
    assert "q" not in found.matches and found.screened == {"p": "same_answer"}  # no gold: never this path
    unscreened = find_semantic_contamination({"q": RETOLD}, [MARBLES], dataclasses.replace(minilm, screen="none"))
    assert "q" not in unscreened.matches and unscreened.closest["q"].key == "b/marbles"
    similarity_ = match.similarity
    assert rules.confirm_by_answer(RETOLD, "3/28", MARBLES, similarity_, minilm) is None  # another answer
    below = minilm.answer_threshold - 0.01  # the same numbers lower the bar by ANSWER_FLOOR_DROP, for the nearest
    assert rules.confirm_by_answer(RETOLD, "5/14", MARBLES, below, minilm).method == "same_answer"
    assert rules.confirm_by_answer(RETOLD, "5/14", MARBLES, below, minilm, nearest=False) is None
    assert (
        rules.confirm_by_answer(
            RETOLD, "5/14", MARBLES, minilm.answer_threshold - rules.ANSWER_FLOOR_DROP - 0.01, minilm
        )
        is None
    )
    off = dataclasses.replace(minilm, same_answer=False)
    assert rules.confirm_by_answer(RETOLD, "5/14", MARBLES, similarity_, off) is None
    fewer = RETOLD.replace("5 blue and 3 red", "7 blue and 2 red")  # other numbers, the answer by coincidence
    assert rules.confirm_by_answer(fewer, "5/14", MARBLES, similarity_, minilm) is None
    digit = dataclasses.replace(MARBLES, answer="2")  # a digit, a parity, yes/no or a letter tells nothing
    assert rules.confirm_by_answer(RETOLD, "2", digit, similarity_, minilm) is None
    assert [readings.telling_answer(a) for a in ("2", "-3", "\\text{even}", "(B)", "yes", "255", "30^\\circ")] == [
        False, False, False, False, False, True, True,
    ]  # fmt: skip


def test_a_worded_gold_tells_by_its_value_and_a_stated_number_tells_nothing():
    """CHAMP's families share worded golds ("0 is the only possible value" for three mod questions, "100 (i.e.,
    all values)" for every "how many n in {1, ..., 100}" one): the champ run dropped five different problems as
    held-out copies through the answer paths until the answer was read by its value and against the problem."""
    assert not readings.telling_answer("0 is the only possible value")  # the digit 0
    assert readings.telling_answer("100 (i.e., all values)")
    counting = "For how many values of n in {1, 2, ..., 100} do we have (n+1)^n >= 2^n n!?"
    assert not readings.telling_answer("100 (i.e., all values)", counting)  # the range bound the problem states
    assert readings.telling_answer("255", counting)


def test_same_answer_path_tries_the_near_tied_items_after_the_nearest():
    """A retold story is often as near to a sibling item as to its own: the nearest three within ANSWER_MARGIN."""
    options = SemanticDecontamOptions(enabled=True)
    sibling = dataclasses.replace(MARBLES, id="sibling", text=MARBLES.text.replace("blue?", "red?"), answer="3/28")
    items = [sibling, MARBLES]

    def decide(similarities: list[float]) -> rules.SemanticMatch | None:
        verdicts = contamination.SemanticVerdicts({}, {})
        contamination._decide(RETOLD, "5/14", items, np.array(similarities), np.array([0, 1]), options, verdicts, "p")
        return verdicts.matches.get("p")

    assert decide([0.66, 0.64]).key == "b/marbles"  # the second item, near-tied with the nearest
    assert decide([0.66 + rules.ANSWER_MARGIN, 0.64]) is None  # too far behind the nearest
    assert decide([0.62, 0.58]) is None  # same numbers, but below answer_threshold and not the nearest


def test_answer_score_weighs_the_evidence_of_an_item_whose_answer_is_the_gold():
    """The fourth path: no single bar, the fitted log-odds of the evidence together; the answer must still agree."""
    options = SemanticDecontamOptions(enabled=True)
    sibling = dataclasses.replace(MARBLES, id="sibling", text=MARBLES.text.replace("blue?", "red?"), answer="3/28")
    items = [MARBLES, sibling]
    rarity = rules.NumberRarity.of([i.text for i in items])

    def score(gold: str, similarities: list[float], rows: list[int]) -> rules.SemanticMatch | None:
        return rules.confirm_by_score(RETOLD, gold, items, np.array(similarities), np.array(rows), options, rarity)

    match = score("5/14", [0.58, 0.40], [0, 1])  # below answer_threshold, and the same-answer path's numbers rule
    assert match is not None and match.method == "answer_score" and match.key == "b/marbles"
    assert match.score >= options.answer_min_score and match.to_dict()["answer_score"] == round(match.score, 2)
    assert score("3/28", [0.58, 0.40], [0, 1]) is None  # the sibling's answer: it is far behind, it scores low
    assert score("1/2", [0.58, 0.40], [0, 1]) is None  # no near item has the gold
    fewer = RETOLD.replace("5 blue and 3 red", "7 blue and 2 red")  # other numbers, the answer by coincidence
    assert (
        rules.confirm_by_score(fewer, "5/14", items, np.array([0.58, 0.4]), np.array([0, 1]), options, rarity) is None
    )
    assert score("", [0.58, 0.40], [0, 1]) is None  # no gold: never this path
    features = rules.answer_features(RETOLD, MARBLES, rules.evidence(RETOLD, MARBLES.text, 0.58), 0.18, True, rarity)
    assert set(features) == set(rules.ANSWER_SCORE_FEATURES) and set(rules.ANSWER_SCORE_WEIGHTS) == {
        "bias",
        *rules.ANSWER_SCORE_FEATURES,
    }
    assert rules.answer_score(features) == pytest.approx(match.score)


def test_common_numbers_alone_need_a_higher_similarity_against_the_benchmark():
    item = "In triangle $ABC$, $\\angle C = 40^\\circ$. Find the measure of angle $B$ in the figure."
    pool = "In the figure, $\\angle C = 40^\\circ$. What is the measure of angle $B$ of triangle $ABC$?"
    rarity = rules.NumberRarity.of([item] + [f"Angle ${a}^\\circ$ and $40^\\circ$." for a in range(120)])
    options = SemanticDecontamOptions(enabled=True)
    assert rules.evidence(pool, item, 0.75, rarity=rarity).rare < rules.THIN_RARE  # 40 degrees: common
    assert rules.confirm(pool, item, 0.75, options, "b/angle", rarity) is None
    assert rules.confirm(pool, item, rules.THIN_THRESHOLD, options, "b/angle", rarity) is not None
    assert rules.confirm(pool, item, 0.75, options, "b/angle") is not None  # no rarity table (in-pool dedup)
    few = rules.NumberRarity.of([item, "Find $40^\\circ$."])  # two items: nothing is known to be common
    assert rules.confirm(pool, item, 0.75, options, "b/angle", few) is not None


def test_renamed_variables_do_not_move_the_embedding():
    assert (
        similarity("If $x^2 - x - 1 = 0$, find $x^3 - 2x + 1$.", "If $t^2 - t - 1 = 0$, find $t^3 - 2t + 1$.") > 0.99
    )


def test_index_matches_brute_force_across_blocks_and_breaks_ties_by_row(monkeypatch):
    """Nearest neighbours from blocks of queries and of the index are the exact integer cosines' best, most similar
    first and equal similarities by the lower row, also where equal scores straddle the k-th place (numpy's partition
    alone would pick among them as its kernel for the CPU does)."""
    monkeypatch.setattr(retrieval, "QUERY_BLOCK", 7)
    monkeypatch.setattr(retrieval, "_INDEX_BLOCK", 50)
    rng = np.random.default_rng(0)
    vectors = retrieval.normalised(rng.normal(size=(333, 16)).astype(np.float32))
    vectors[[10, 200, 300, 301]] = vectors[5]  # five equal rows: ties across blocks and across the cut
    queries = retrieval.normalised(np.concatenate([rng.normal(size=(40, 16)), vectors[5:6]]).astype(np.float32))
    index = SemanticIndex.build(range(333), vectors)
    scores, rows = index.nearest(queries, 3)
    brute = retrieval.cosines(queries, vectors)
    np.testing.assert_array_equal(rows, np.lexsort((np.broadcast_to(np.arange(333), brute.shape), -brute))[:, :3])
    np.testing.assert_array_equal(scores, np.take_along_axis(brute, rows, 1))
    assert rows[-1].tolist() == [5, 10, 200]  # the query equal to row 5: its five equal rows, the lowest three
    assert index.nearest(queries, 1000)[1].shape == (41, 333)
    exact = (np.rint(queries * 32767).astype(np.int64) @ np.rint(vectors * 32767).astype(np.int64).T) / 32767**2
    np.testing.assert_array_equal(brute, exact.astype(np.float32))  # every cosine an exact integer product


def test_index_needs_one_key_per_vector():
    with pytest.raises(ValueError, match="3 keys for 2 vectors"):
        SemanticIndex.build(["a", "b", "c"], np.zeros((2, 4), np.float32))


def test_rule_confirms_a_paraphrase_and_not_a_template_sibling():
    """The sibling is the closer embedding (other number, other gold); the numbers decide."""
    assert similarity(ITEM, SIBLING) > similarity(ITEM, PARAPHRASE) >= OPTIONS.threshold
    match = confirm(PARAPHRASE, ITEM, similarity(ITEM, PARAPHRASE), OPTIONS, "math500/x")
    assert match is not None and match.key == "math500/x" and match.numbers == 1.0
    assert set(match.shared_numbers) == {"3", "11"} and "positive" in match.shared_words
    assert confirm(SIBLING, ITEM, similarity(ITEM, SIBLING), OPTIONS) is None
    assert confirm(PARAPHRASE, ITEM, 0.5, OPTIONS) is None  # below the threshold


def test_numbers_fold_number_words_and_separators():
    assert numbers_of("Fifty-four cookies at three for $\\$1$, twice, 1,000 and 1.24") == {
        "54": 1, "3": 1, "1": 1, "2": 1, "1000": 1, "1.24": 1
    }  # fmt: skip


def test_math_agreement_reads_names_and_negating_prefixes_alike():
    a = "In how many ways can 5 balls be put in 2 boxes if the balls are indistinguishable?"
    assert (
        readings.content_share(
            a, "How many ways are there to put 5 balls in 2 boxes if balls are not distinguishable?"
        )
        == 1.0
    )
    assert readings.content_share("Solve $x^2 + 3x = 4$.", "Solve for t: $t^2 + 3t = 4$.") == 1.0
    assert readings.content_share("Solve $x^2 + 3x = 4$.", "Solve $x^2 - 3x = 4$.") < 1.0


def test_contamination_reports_the_item_and_the_closest_kept_candidate():
    items = [BenchmarkItem("math500", "div11", ITEM), BenchmarkItem("math500", "circle", "Find the area of a circle.")]
    verdicts = find_semantic_contamination({"p": PARAPHRASE, "s": SIBLING}, items, UNSCREENED)
    assert set(verdicts.matches) == {"p"} and verdicts.matches["p"].key == "math500/div11"
    assert verdicts.closest["s"].key == "math500/div11" and verdicts.closest["s"].swapped
    row = verdicts.matches["p"].to_dict()
    assert row["method"] == "embedding" and row["similarity"] >= OPTIONS.threshold and row["shared_numbers"]


def test_judge_confirms_what_the_rule_does_not_through_a_replayed_backend(tmp_path):
    item = "A rectangle is 4 cm by 6 cm. What is its area?"
    pool = "What is the area, in square millimetres, of a rectangle 40 mm by 60 mm?"  # a unit change
    options = SemanticDecontamOptions(enabled=True, confirmation="judge", judge_threshold=0.3)
    assert confirm(pool, item, similarity(pool, item), options) is None
    replies = {judge_request_id(pool, item): {"text": "Yes"}}
    generator = CachedGenerator(ReplayBackend(replies), tmp_path / "judge.jsonl", 8)
    verdicts = find_semantic_contamination(
        {"p": pool}, [BenchmarkItem("b", "rect", item)], options, judge=judge_pairs(generator, options)
    )
    assert verdicts.matches["p"].method == "judge" and "p" not in verdicts.closest
    assert (tmp_path / "judge.jsonl").read_text().count("\n") == 1  # cached: a rerun asks nothing
    with pytest.raises(ValueError, match="no judge"):
        find_semantic_contamination({"p": pool}, [BenchmarkItem("b", "rect", item)], options)


def test_semantic_duplicates_keep_the_first_and_siblings_and_other_golds():
    texts = {"a": ITEM, "b": SIBLING, "c": PARAPHRASE, "d": "Find the area of a circle of radius 3."}
    options = SemanticDedupOptions(enabled=True)
    dropped = find_semantic_duplicates(list(texts), texts, options)
    assert set(dropped) == {"c"} and dropped["c"].key == "a"
    assert find_semantic_duplicates(list(texts), texts, options, answers={"a": "81", "c": "81"}).keys() == {"c"}
    assert find_semantic_duplicates(list(texts), texts, options, answers={"a": "81", "c": "80"}) == {}
    with pytest.raises(OptionsError, match="dedup.semantic.confirmation: 'judge': expected 'rule'"):
        find_semantic_duplicates(list(texts), texts, SemanticDedupOptions(confirmation="judge"))
    with pytest.raises(OptionsError, match="decontam.semantic.confirmation: 'llm': expected 'rule' or 'judge'"):
        find_semantic_contamination(texts, [], SemanticDecontamOptions(confirmation="llm"))
    with pytest.raises(OptionsError, match="decontam.semantic.precision: 'fp16': expected 'int8' or 'float32'"):
        find_semantic_contamination(texts, [], SemanticDecontamOptions(precision="fp16"))


def test_dedup_keeps_template_siblings_with_other_numbers_and_golds():
    texts = {"a": SIBLING, "b": ITEM}
    answers = {"a": "128", "b": "81"}
    loose = DedupOptions(threshold=0.7)
    assert find_duplicates(texts, loose, answers=answers) == {}
    assert find_duplicates(texts, DedupOptions(threshold=0.7, template=True), answers=answers) == {
        "b": ("near_duplicate_problem", "a")
    }
    assert find_duplicates(texts, loose, answers={"a": "81", "b": "81"}) == {"b": ("near_duplicate_problem", "a")}


def test_semantic_options_come_from_the_recipe_section():
    stages = to_options(
        StageOptions,
        {
            "decontam": {"semantic": {"enabled": True, "threshold": 0.75, "confirmation": "judge"}},
            "dedup": {"template": True, "semantic": {"enabled": True, "k": 3}},
        },
        where="curate.stages",
    )
    assert stages.decontam.semantic == SemanticDecontamOptions(enabled=True, threshold=0.75, confirmation="judge")
    assert stages.dedup.template and stages.dedup.semantic.k == 3 and stages.dedup.semantic.model == "wordllama"
    assert StageOptions().decontam.semantic.enabled and not StageOptions().dedup.semantic.enabled  # decontam: on
    assert StageOptions().decontam.semantic.model == "minilm" and StageOptions().dedup.semantic.model == "wordllama"
    assert StageOptions().decontam.semantic.screen == "wordllama"
    with pytest.raises(OptionsError, match="curate.stages.decontam.semantic.treshold"):
        to_options(StageOptions, {"decontam": {"semantic": {"treshold": 0.7}}}, where="curate.stages")


@pytest.mark.shared_data
@pytest.mark.parametrize("model", [embedding.WORDLLAMA, embedding.MINILM])
def test_copies_and_light_paraphrases_are_all_caught(shared_data, model):
    items = [
        BenchmarkItem(name, row["id"], row["problem"])
        for name, file in (
            ("math500", "math500"),
            ("aime24", "aime2024"),
            ("aime25", "aime2025"),
            ("amc23", "amc2023"),
        )
        for row in map(json.loads, (shared_data / f"{file}.jsonl").open(encoding="utf-8"))
    ]
    rows = [json.loads(line) for line in PARAPHRASES.open(encoding="utf-8")]
    assert len(rows) >= 60 and {r["kind"] for r in rows} == {"light", "medium", "heavy"}
    texts = {r["id"]: r["text"] for r in rows if r["kind"] == "light"}
    by_key = {f"{i.benchmark}/{i.id}": i.text for i in items}
    texts |= {f"copy/{r['id']}": by_key[f"{r['benchmark']}/{r['item_id']}"] for r in rows}
    verdicts = find_semantic_contamination(texts, items, dataclasses.replace(OPTIONS, model=model))
    own = {r["id"]: f"{r['benchmark']}/{r['item_id']}" for r in rows}
    assert {pid: m.key for pid, m in verdicts.matches.items()} == {
        pid: own[pid.removeprefix("copy/")] for pid in texts
    }


def stage_pool() -> tuple[list[Problem], list[Chain]]:
    problems = [
        Problem("first", ITEM, "81", "pool"),
        Problem("para", PARAPHRASE, "81", "pool"),
        Problem("sibling", SIBLING, "128", "pool"),
        Problem("circle", "Find the area of a circle of radius 3.", "9\\pi", "pool"),
    ]
    return problems, [Chain(f"{p.id}/c", p.id, f"So \\boxed{{{p.answer}}}") for p in problems]


def rejects_of(folder: Path) -> dict[str, dict]:
    rows = [json.loads(line) for line in (folder / "rejects.jsonl").read_text().splitlines()]
    return {r["id"]: r for r in rows if r["kind"] == "problem"}


def test_decontam_stage_drops_a_paraphrase_with_its_item_similarity_and_evidence(tmp_path):
    (tmp_path / "bench.jsonl").write_text(json.dumps({"id": "div11", "problem": PARAPHRASE, "answer": "81"}) + "\n")
    problems, chains = stage_pool()
    stages = to_options(
        StageOptions,
        {"decontam": {"benchmarks": ["bench"], "data_dir": str(tmp_path), "semantic": {"enabled": True}}},
    )
    specs = {"bench": BenchmarkSpec(name="bench", local_file="bench.jsonl")}
    state, _ = curate_items(problems, chains, stages, ["decontam"], tmp_path / "run", benchmark_specs=specs)
    rejects = rejects_of(tmp_path / "run")
    assert set(rejects) == {"first", "para"}  # the copy by n-grams, the rewording by meaning; the sibling stays
    assert rejects["para"]["detail"]["method"] == "word_ngram"
    meaning = rejects["first"]["detail"]
    assert rejects["first"]["reason"] == "contaminated:bench" and meaning["method"] == "semantic"
    assert meaning["confirmed_by"] == "embedding" and "rare_numbers" in meaning
    assert meaning["item_id"] == "div11" and meaning["similarity"] >= 0.7 and "11" in meaning["shared_numbers"]
    notes = next(c for c in state.funnel if c.stage == "decontam").notes
    # the screen sends on only "first" ("para" went to n-grams; the sibling and the circle share no number)
    assert notes["semantic_screen"] == {"model": "wordllama", "problems": 3, "passed": 1, "paths": {"embedding": 1}}
    assert notes["semantic_confirmed"] == 1 and notes["semantic_closest_kept"] == []


def test_decontam_stage_reads_the_golds_for_the_same_answer_path(tmp_path):
    row = {"id": MARBLES.id, "problem": MARBLES.text, "answer": MARBLES.answer}
    (tmp_path / "bench.jsonl").write_text(json.dumps(row) + "\n")
    problems = [Problem("retold", RETOLD, "5/14", "pool"), Problem("other", RETOLD, "3/28", "pool")]
    chains = [Chain(f"{p.id}/c", p.id, f"So \\boxed{{{p.answer}}}") for p in problems]
    stages = to_options(
        StageOptions,
        {"decontam": {"benchmarks": ["bench"], "data_dir": str(tmp_path), "semantic": {"enabled": True}}},
    )
    specs = {"bench": BenchmarkSpec(name="bench", local_file="bench.jsonl")}
    curate_items(problems, chains, stages, ["decontam"], tmp_path / "run", benchmark_specs=specs)
    rejects = rejects_of(tmp_path / "run")
    assert set(rejects) == {"retold"}  # the same text with another gold is another problem
    detail = rejects["retold"]["detail"]
    assert detail["confirmed_by"] == "same_answer" and detail["same_answer"] == MARBLES.answer
    assert detail["item_id"] == "marbles" and detail["similarity"] >= 0.65
    # The same pool with the same-answer path's bar out of reach: the answer score, which weighs the evidence
    # together, confirms it from the same golds; and nothing does when its bar is out of reach too.
    for name, semantic_options, expected in (
        ("score", {"enabled": True, "answer_threshold": 0.99}, {"retold": "answer_score"}),
        ("neither", {"enabled": True, "answer_threshold": 0.99, "answer_min_score": 99.0}, {}),
    ):
        decontam = {"benchmarks": ["bench"], "data_dir": str(tmp_path), "semantic": semantic_options}
        curate_items(problems, chains, to_options(StageOptions, {"decontam": decontam}), ["decontam"],
                     tmp_path / name, benchmark_specs=specs)  # fmt: skip
        found = {pid: r["detail"]["confirmed_by"] for pid, r in rejects_of(tmp_path / name).items()}
        assert found == expected
    detail = rejects_of(tmp_path / "score")["retold"]["detail"]
    assert detail["same_answer"] == MARBLES.answer and detail["answer_score"] >= 1.5


def test_dedup_stage_drops_a_paraphrase_by_meaning_with_its_similarity(tmp_path):
    problems, chains = stage_pool()
    stages = to_options(StageOptions, {"dedup": {"semantic": {"enabled": True}}})
    curate_items(problems, chains, stages, ["dedup"], tmp_path / "run")
    rejects = rejects_of(tmp_path / "run")
    assert set(rejects) == {"para"} and rejects["para"]["reason"] == "near_duplicate_problem"
    detail = rejects["para"]["detail"]
    assert detail["duplicate_of"] == "first" and detail["match"] == "semantic" and detail["similarity"] >= 0.7
    curate_items(problems, chains, StageOptions(), ["dedup"], tmp_path / "off")
    assert rejects_of(tmp_path / "off") == {}
    sharded = ExecutorOptions(shard_rows=1, workers=2)  # one part per problem: embeddings from four tasks
    curate_items(problems, chains, stages, ["dedup"], tmp_path / "sharded", executor=sharded)
    assert rejects_of(tmp_path / "sharded") == rejects


def test_decontam_stage_asks_the_judge_through_a_replay_file(tmp_path):
    item = "A rectangle is 4 cm by 6 cm. What is its area?"
    pool = "What is the area, in square millimetres, of a rectangle 40 mm by 60 mm?"  # a unit change
    (tmp_path / "bench.jsonl").write_text(json.dumps({"id": "rect", "problem": item, "answer": "24"}) + "\n")
    replies = tmp_path / "judge.jsonl"
    replies.write_text(json.dumps({"request_id": judge_request_id(pool, item), "text": "yes"}) + "\n")
    judge = {"backend": "replay", "backend_args": {"path": str(replies)}}
    semantic_options = {"enabled": True, "confirmation": "judge", "judge_threshold": 0.3, "judge": judge}
    decontam = {"benchmarks": ["bench"], "data_dir": str(tmp_path), "semantic": semantic_options}
    problems = [Problem("unit", pool, "2400", "pool")]
    chains = [Chain("unit/c", "unit", "So \\boxed{2400}")]
    specs = {"bench": BenchmarkSpec(name="bench", local_file="bench.jsonl")}
    stages = to_options(StageOptions, {"decontam": decontam})
    curate_items(problems, chains, stages, ["decontam"], tmp_path / "run", benchmark_specs=specs)
    detail = rejects_of(tmp_path / "run")["unit"]["detail"]
    assert detail["method"] == "semantic_judge" and detail["item_id"] == "rect"


def test_number_words_fold_whole_phrases_and_fractions():
    assert numbers_of("two thousand twenty-five and one hundred", whole=True) == {"2025": 1, "100": 1}
    assert numbers_of("one hundred and five", whole=True) == {"105": 1}
    assert numbers_of("three quarters of a turn, a fifth-degree polynomial", whole=True) == {"0.75": 1}
    halves = ("one half", "$\\frac{1}{2}$", "$\\dfrac12$", "1/2", "0.50", "${1 \\over 2}$", "zero point five", "2/4")
    assert [set(numbers_of(t, whole=True)) for t in halves] == [{"0.5"}] * len(halves)
    assert numbers_of("thirteen halves, eight sevenths, twelve twentieths", whole=True) == {
        "6.5": 1,
        "8/7": 1,
        "0.6": 1,
    }
    assert numbers_of("two three", whole=True) == {"2": 1, "3": 1}  # a list, not one number
    assert numbers_of("between one hundred and two hundred", whole=True) == {"100": 1, "200": 1}
    assert numbers_of("two point six and twenty two point five", whole=True) == {"2.6": 1, "22.5": 1}
    assert numbers_of("a point $P$ and one point of view", whole=True) == {"1": 1}
    assert numbers_of("6.5 centimeters, $60^\\circ$", whole=True, units=False) == {"6.5": 1, "60": 1}
    assert numbers_of("one hundred and $\\frac{1}{2}$") == {"1": 2, "100": 1, "2": 1}  # dedup's reading: as it was


@pytest.mark.parametrize(
    "text",
    ["2one one_ one2 ONE Twice bone half-way x_two 3/4ths 1.5one", "a b c 12 three_ _three", "fifty five, Six.", ""],
)
def test_value_words_are_read_as_the_case_blind_pattern_reads_them(text):
    """An ASCII text's value words, read as every whole word filtered by the table (`similarity._stated_numbers`),
    are the list the case-blind alternation (`similarity._NUMBER`) finds, words glued to digits or ``_`` left out
    alike."""
    from curation import similarity

    runs = similarity._letter_runs(text)
    assert runs is not None and similarity._stated_numbers(text, runs) == similarity._NUMBER.findall(text)


def test_figures_count_by_their_labels_not_their_coordinates():
    item = (
        'Find the angle $x$. [asy] draw((0,0)--(3.2,1.7)--(5,0)); label("$48^\\circ$",(1,0.5)); [/asy]'
        " \\begin{tikzpicture}[scale=0.15] \\coordinate (A) at (0,12); \\node[above] at (A) {$A$}; \\end{tikzpicture}"
    )
    assert readings.statement(item).split() == ["Find", "the", "angle", "$x$.", "$48^\\circ$"]  # not "$A$"
    assert readings.stated_numbers(item) == {"48[angle]"}  # 3.2, 1.7, 0.15, 12: drawing code
    paraphrase = "Determine the angle $x$ when the marked angle is $48^\\circ$."
    assert rules.evidence(paraphrase, item, 0.9).numbers == 1.0
    assert readings.statement("No figure: 3.2 and [asx].") == "No figure: 3.2 and [asx]."


def test_content_share_lets_whole_formulas_change_places_but_not_change():
    item = (
        "What is the last nonzero digit to the right of the decimal point in the decimal expansion of "
        "$\\frac{137}{500}$?"
    )
    reordered = (
        "In the decimal expansion of $\\frac{137}{500}$, what is the last nonzero digit right of the decimal point?"
    )
    assert readings.content_share(reordered, item) == 1.0  # in order only: 0.5
    a, b = (
        "Let $f(x) = 3x + 3$ and $g(x) = 4x + 3.$ Find $f(g(f(2)))$.",
        "Given $y^3=x^2$ and $(y-x)^2=4y^2$, find $x+y$.",
    )
    assert readings.content_share(a, b) < 0.65  # no formula agrees whole


def test_rare_numbers_path_accepts_a_paraphrase_that_leaves_out_the_items_example():
    item = (
        "Find $m+n$ where $\\frac{m}{n} = \\prod_{k=4}^{63} a_k$, for example $a_4 = \\frac{15}{12}$ and "
        "$a_5 = \\frac{24}{21}$."
    )
    short = "With $a_k$ as given, the product of $a_k$ for $k$ from $4$ to $63$ is $\\frac{m}{n}$; find $m+n$."
    rarity = rules.NumberRarity.of([item, *(f"Compute ${n} + {n + 1}$." for n in range(1, 400))])
    options = SemanticDecontamOptions(enabled=True)
    match = rules.confirm(short, item, rules.SUBSET_SIMILARITY, options, "b/prod", rarity)
    assert match is not None and match.method == "rare_numbers"  # states only the item's numbers, rare ones
    assert rules.confirm(short, item, rules.SUBSET_SIMILARITY - 0.01, options, "b/prod", rarity) is None
    extra = short.replace("find $m+n$", "find $m+n+7$")  # a number of its own
    assert rules.confirm(extra, item, rules.SUBSET_SIMILARITY, options, "b/prod", rarity) is None


def test_numbers_agree_without_units_when_one_text_names_them():
    item = "A cone's base has area 30 square units and its height is 6.5 units. Find its volume."
    units = "A paper cone has a base of 30 square centimeters and is 6.5 centimeters tall. How many cubic centimeters?"
    assert rules.evidence(units, item, 0.8).numbers == 1.0  # read with units: 0 shared
    assert rules.evidence("The side is 2cm.", "Find $AF^2$.", 0.8).numbers == 0.0  # one bare number: no


def test_formulas_read_out_embed_like_their_words():
    item = "What is the value of $513^2 - 487^2$?"
    words = "What do you get when you subtract the square of 487 from the square of 513?"
    assert readings.spoken_math("$3m + 4n = 100$").strip(" $").split() == "3 times m plus 4 times n equals 100".split()
    assert readings.embedding_text(item).split()[-5:] == ["513", "squared", "minus", "487", "squared"]
    assert similarity(item, words) > 0.85
    gcd = "Find the greatest common divisor of $3339$, $2961$, and $1491$."
    assert similarity(gcd, "Compute the GCD of $3339$, $2961$ and $1491$.") > 0.9  # "GCD" is not a name (0.62 before)


def test_rare_shared_numbers_confirm_a_formula_restated_in_words():
    """The math test fails (prose has no formula); 513 and 487, which no other item states, decide."""
    item = "What is the value of $513^2 - 487^2$?"
    words = "What do you get when you subtract the square of 487 from the square of 513?"
    sibling = "What do you get when you subtract the square of 487 from the square of 523?"
    rarity = rules.NumberRarity.of([item, *(f"Compute ${n}^2 + {n + 1}$." for n in range(1, 400))])
    assert rarity.weight("513") > 5 > 1 > rarity.weight("2")
    assert confirm(words, item, similarity(item, words), OPTIONS) is None  # no rarity table: the first path only
    match = confirm(words, item, similarity(item, words), OPTIONS, "b/x", rarity)
    assert match is not None and match.method == "rare_numbers" and match.rare >= OPTIONS.min_rare
    assert confirm(sibling, item, similarity(item, sibling), OPTIONS, "b/x", rarity) is None
    # Two numbers no other item states (rarity ~10.6): the similarity bar falls from 0.75 to ~0.66.
    assert confirm(words, item, OPTIONS.rare_threshold - 0.05, OPTIONS, "b/x", rarity) is not None
    assert confirm(words, item, 0.62, OPTIONS, "b/x", rarity) is None


def test_quantities_with_units_are_read_in_one_base_unit():
    """A unit change keeps the quantity: a paraphrase in centimetres states the item's millimetres."""
    item = numbers_of("A strip $6.5$ millimeters wide and $25$ meters long; it took 4 hours.", whole=True)
    para = numbers_of("A strip 0.65 centimeters wide and 2500 centimeters long; it took 240 minutes.", whole=True)
    assert item == para and "25[length]" in item
    assert numbers_of("a degree-5 polynomial rotated $60^\\circ$", whole=True) == {"5": 1, "60[angle]": 1}
    assert numbers_of("\\$15 or fifteen dollars, 1.50", whole=True) == {"15[money]": 2, "1.5": 1}


def test_number_reading_never_raises_and_reads_a_word_a_degree_sign_cuts_free():
    """A quantity whose amount has no plain value ("1.5/2 cm", "3/0 km", "and" over a line break) is read or left
    as it is, never raised on; "60^\\circfive" reads the five that follows the degrees once they are cut out."""
    assert numbers_of("60^\\circfive", whole=True) == {"60[angle]": 1, "5": 1}
    assert numbers_of("1.5/2 cm", whole=True) == {"3/400[length]": 1}
    assert numbers_of("3/0 km", whole=True) == {"3/0": 1}
    assert numbers_of("5\nand 1/2 hours", whole=True) == {"19800[time]": 1}
