"""MAmmoTH2 instruction mining (Yue et al., 2024): recall web pages, extract question-answer pairs, refine them.

Stages, each a module with plain arguments (no config objects):

- `corpus`: the embedded default corpus: web-page-like documents built from CHAMP problems and solutions,
  mixed with non-math text from installed packages, so the recipe runs offline.
- `recall`: a fastText classifier trained on seed pages against random negatives, scoring a streamed JSONL
  or WARC corpus through a datatrove pipeline (sharded over processes), kept by threshold or top-k.
- `extract`: a generation backend with a few-shot prompt pulls question-answer pairs out of each document
  as JSON; malformed output is retried a bounded number of times, then rejected with a reason.
- `refine`: a second generation pass rewrites each pair with the missing steps and a boxed final answer.
- `pipeline`: the stages in order, resumable; `curation.methods.mammoth2.method` (``curate.method: mammoth2``) runs
  them, then the shared dedup and decontam stages, and writes the curated-set files.
"""
