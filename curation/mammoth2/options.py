"""Option values for the MAmmoTH2 pipeline: the ``curate:`` section of a recipe with ``pipeline: mammoth2``.

Frozen dataclasses, validated and built by the entry point exactly like `curation.options.CurateOptions`
(`curation.options.mutable_schema` + `from_mapping`: unknown keys fail at start-up). Dedup, decontamination
and report options are curation's own types, so the shared stages are configured the same way everywhere.
Defaults fit the embedded corpus; the paper's settings are in the recipe and the README.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from curation.options import DecontamOptions, DedupOptions, ReportOptions

EMBEDDED = "embedded"


@dataclass(frozen=True)
class CorpusOptions:
    """Which documents to mine and which seeds to train recall on.

    Attributes:
        source: ``embedded`` (build the default corpus) or a JSONL / WARC file or folder (your web dump).
        format: ``jsonl`` or ``warc`` (for ``source`` other than ``embedded``).
        glob_pattern: Files to read under a ``source`` folder (None: every file of the format).
        seed_positive: JSONL of positive seed documents (required unless ``embedded``).
        seed_negative: JSONL pool that random negatives are drawn from (required unless ``embedded``).
        text_key: Field holding the text in JSONL files.
        id_key: Field holding the document id in JSONL files.
        seed_categories: Embedded corpus: CHAMP categories of the seed pages.
        web_categories: Embedded corpus: CHAMP categories of the pages to mine (disjoint from the seeds).
        forum_pages_per_problem: Embedded corpus: model attempts posted as forum pages per problem.
        attempt_models: Embedded corpus: CHAMP models whose attempts become forum pages.
        attempt_settings: Embedded corpus: CHAMP prompt settings those attempts come from.
        seed_package_fraction: Embedded corpus: share of installed distributions used as negative seeds.
        max_pages_per_package: Embedded corpus: cap on pages per distribution.
        malformed_every: Embedded transcript: about one page in this many gets a malformed first reply.
        never_valid_every: Embedded transcript: about one page in this many never gets valid JSON.
    """

    source: str = EMBEDDED
    format: str = "jsonl"
    glob_pattern: str | None = None
    seed_positive: str | None = None
    seed_negative: str | None = None
    text_key: str = "text"
    id_key: str = "id"
    seed_categories: tuple[str, ...] = ("Number-Theory", "Inequality", "Sequence")
    web_categories: tuple[str, ...] = ("Polynomial", "Combinatorics")
    forum_pages_per_problem: int = 2
    attempt_models: tuple[str, ...] = ("GPT-4", "GPT-4 Turbo")
    attempt_settings: tuple[str, ...] = ("0-Shot", "5-Shot", "No C w/o H")
    seed_package_fraction: float = 0.6
    max_pages_per_package: int = 40
    malformed_every: int = 20
    never_valid_every: int = 60


@dataclass(frozen=True)
class ClassifierOptions:
    """fastText training (``fasttext.train_supervised`` names) and the negative sampling ratio."""

    dim: int = 64
    lr: float = 0.5
    word_ngrams: int = 2
    min_count: int = 1
    epoch: int = 10
    bucket: int = 100_000
    negatives_per_positive: float = 1.0


@dataclass(frozen=True)
class RecallOptions:
    """Scoring: keep by ``threshold``, then optionally the ``top_k`` best; shard over ``tasks`` processes."""

    threshold: float = 0.5
    top_k: int | None = None
    tasks: int = 1
    workers: int = 1
    batch_size: int = 256


@dataclass(frozen=True)
class GenerationOptions:
    """A generation stage (extract or refine).

    Attributes:
        backend: Registered backend name (``replay``, ``hf``, ``openai``, ``vllm``).
        backend_args: Its constructor arguments. ``replay`` with no ``path`` uses the embedded corpus's
            teacher transcript.
        temperature: Sampling temperature (0: greedy).
        max_new_tokens: Generation length limit.
        max_attempts: Attempts per item before a malformed output becomes a reject.
        batch_size: Items per backend call, and per resume checkpoint.
        num_few_shot: Extraction only: demonstrations before the page.
        max_doc_chars: Extraction only: page characters shown to the model.
    """

    backend: str = "replay"
    backend_args: dict[str, Any] = field(default_factory=dict)
    temperature: float = 0.0
    max_new_tokens: int = 2048
    max_attempts: int = 3
    batch_size: int = 64
    num_few_shot: int = 2
    max_doc_chars: int = 12_000


@dataclass(frozen=True)
class Mammoth2Options:
    corpus: CorpusOptions = field(default_factory=CorpusOptions)
    classifier: ClassifierOptions = field(default_factory=ClassifierOptions)
    recall: RecallOptions = field(default_factory=RecallOptions)
    extract: GenerationOptions = field(default_factory=GenerationOptions)
    refine: GenerationOptions = field(default_factory=GenerationOptions)


@dataclass(frozen=True)
class Mammoth2CurateOptions:
    """The whole ``curate:`` section of a MAmmoTH2 recipe."""

    pipeline: str = "mammoth2"
    mammoth2: Mammoth2Options = field(default_factory=Mammoth2Options)
    dedup: DedupOptions = field(default_factory=DedupOptions)
    decontam: DecontamOptions = field(default_factory=DecontamOptions)
    report: ReportOptions = field(default_factory=ReportOptions)
