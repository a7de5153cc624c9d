"""The registry of curation methods: ``curate.method`` -> `Method` (options type, run function, trainer).

`METHODS` is the one place a recipe's ``curate.method`` is looked up; adding a method is one module with
its options type and run function, and one entry here (see `curation.methods.base`). Each method is a folder
holding its pieces (``curation/methods/<name>/``, its ``method.py`` registering it); `graded_pool` is the pool
that LEMMA, pairs and RISE build on.
"""

from __future__ import annotations

from curation.methods.base import CurationSummary, Method, RunContext
from curation.methods.baseline import method as baseline
from curation.methods.lemma import method as lemma
from curation.methods.limo import method as limo
from curation.methods.mammoth2 import method as mammoth2
from curation.methods.pairs import method as pairs
from curation.methods.rise import method as rise
from curation.methods.rl_prompts import method as rl_prompts

METHODS: dict[str, Method] = {
    m.METHOD.name: m.METHOD for m in (limo, lemma, pairs, rise, mammoth2, rl_prompts, baseline)
}
DEFAULT_METHOD = "limo"

__all__ = ["DEFAULT_METHOD", "METHODS", "CurationSummary", "Method", "RunContext"]
