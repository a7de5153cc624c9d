"""Option values for MAmmoTH2 mining: the ``curate.mammoth2`` section of a recipe with ``method: mammoth2``.

Frozen dataclasses that recipes map onto through `eval.options.to_options` (unknown keys fail at start-up).
Each setting is declared once: the classifier's hyperparameters are `curation.methods.mammoth2.recall.FastTextParams`,
how a corpus is read and scored is `curation.methods.mammoth2.recall.RecallSettings`, extraction and refinement are
`curation.methods.mammoth2.extract.ExtractOptions` and `curation.methods.mammoth2.refine.RefineOptions` (each with its
generator, `eval.backends.generation.GenerationOptions`). Dedup and decontamination are the shared stages
(``curate.stages.dedup`` / ``curate.stages.decontam``). Defaults fit the embedded corpus, except the
classifier's, which are the paper's; the recipe carries the embedded corpus's values.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from curation.methods.mammoth2.extract import ExtractOptions
from curation.methods.mammoth2.recall import FastTextParams, RecallSettings
from curation.methods.mammoth2.refine import RefineOptions
from curation.options import PATH

EMBEDDED = "embedded"


@dataclass(frozen=True)
class CorpusOptions:
    """Which documents to mine and which seeds to train recall on.

    Attributes:
        source: ``embedded`` (build the default corpus) or a JSONL / WARC file or folder (your web dump; how
            it is read: ``recall.input_format``, ``glob_pattern``, ``text_key``, ``id_key``).
        seed_positive: JSONL of positive seed documents (required unless ``embedded``).
        seed_negative: JSONL pool that random negatives are drawn from (required unless ``embedded``).
        negatives_per_positive: Random negatives drawn per positive seed to train the classifier (paper: 1).
        seed_categories: Embedded corpus: CHAMP categories of the seed pages.
        web_categories: Embedded corpus: CHAMP categories of the pages to mine (disjoint from the seeds).
        forum_pages_per_problem: Embedded corpus: model attempts posted as forum pages per problem.
        attempt_models: Embedded corpus: CHAMP models whose attempts become forum pages.
        attempt_settings: Embedded corpus: CHAMP prompt settings those attempts come from.
        seed_package_fraction: Embedded corpus: share of installed distributions used as negative seeds.
        max_pages_per_package: Embedded corpus: cap on pages per distribution.
        distributions: Embedded corpus: the installed distributions its non-math pages come from, by name (empty:
            every installed one, so the corpus changes when the environment does; name pinned packages to make
            a run reproducible across environments).
        malformed_every: Embedded transcript: about one page in this many gets a malformed first reply.
        never_valid_every: Embedded transcript: about one page in this many never gets valid JSON.
    """

    source: str = field(default=EMBEDDED, metadata=PATH)
    seed_positive: str | None = field(default=None, metadata=PATH)
    seed_negative: str | None = field(default=None, metadata=PATH)
    negatives_per_positive: float = 1.0
    seed_categories: tuple[str, ...] = ("Number-Theory", "Inequality", "Sequence")
    web_categories: tuple[str, ...] = ("Polynomial", "Combinatorics")
    forum_pages_per_problem: int = 2
    attempt_models: tuple[str, ...] = ("GPT-4", "GPT-4 Turbo")
    attempt_settings: tuple[str, ...] = ("0-Shot", "5-Shot", "No C w/o H")
    seed_package_fraction: float = 0.6
    max_pages_per_package: int = 40
    distributions: tuple[str, ...] = ()
    malformed_every: int = 20
    never_valid_every: int = 60


@dataclass(frozen=True)
class Mammoth2Options:
    """``curate.mammoth2``: the corpus, the recall classifier and scoring, extraction and refinement."""

    corpus: CorpusOptions = field(default_factory=CorpusOptions)
    classifier: FastTextParams = field(default_factory=FastTextParams)
    recall: RecallSettings = field(default_factory=RecallSettings)
    extract: ExtractOptions = field(default_factory=ExtractOptions)
    refine: RefineOptions = field(default_factory=RefineOptions)
