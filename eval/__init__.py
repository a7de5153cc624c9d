"""eval: the lowest layer of limo.

Holds what both benchmarks and curation pools share — the problem record (`problem.py`), readers and writers with
reject accounting (`records.py`), frozen options from plain mappings (`options.py`) — and, one package each, answer
reading (`answers/`), generation backends and model sources (`backends/`), benchmarks and the generated tasks
(`benchmarks/`), grading (`grading/`), metrics and reports (`reports/`) and the generate-and-grade runs (`run/`).
`grader.py` and `extract.py` hand on the grader's public names (docs/architecture.md, "The grader contract").

Nothing here imports torch, transformers or `limo` at import time (a test walks every submodule).
Always import submodules explicitly (`from eval.grader import grade`): `import eval` would shadow the
builtin inside the importing module.
"""
