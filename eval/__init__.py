"""eval: the lowest layer of limo.

Holds what both benchmarks and curation pools share — the problem record, readers and writers with
reject accounting — plus answer extraction, grading, metrics, benchmarks and generation backends.

Nothing here imports torch, transformers or `limo` at import time (a test walks every submodule).
Always import submodules explicitly (`from eval.grader import grade`): `import eval` would shadow the
builtin inside the importing module.
"""
