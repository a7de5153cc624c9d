"""curation: from a pool of problems and candidate reasoning chains to a few hundred excellent ones.

Chains and training-example types, pool loading, scoring (difficulty, quality, ...), selection and
reports. Builds on `eval` (problem record, grader); never imports `limo`, torch or transformers.
"""
