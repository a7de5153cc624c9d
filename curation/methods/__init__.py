"""The registry of curation methods: ``curate.method`` -> `Method` (options type, run function, trainer).

`METHODS` is the one place a recipe's ``curate.method`` is looked up; adding a method is one module with
its options type and run function, and one entry here (see `curation.methods.base`).
"""

from __future__ import annotations

from curation.methods import lemma, limo, mammoth2, pairs, rise
from curation.methods.base import CurationSummary, Method, RunContext

METHODS: dict[str, Method] = {m.METHOD.name: m.METHOD for m in (limo, lemma, pairs, rise, mammoth2)}
DEFAULT_METHOD = "limo"

__all__ = ["DEFAULT_METHOD", "METHODS", "CurationSummary", "Method", "RunContext"]
