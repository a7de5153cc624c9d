"""Benchmarks and task generators: a benchmark spec loaded into problems (`loader`), the benchmark files shipped with
limo for when the hub does not answer (`shipped`, ``files/`` and its NOTICE), CHAMP and its held-out split (`champ`),
multiple-choice options presented fairly (`choices`), and the generated arithmetic pool, held-out and
unseen-phrasing sets (`arithmetic`, `arithmetic_unseen`).
"""


def __getattr__(name: str) -> object:
    """``from eval.benchmarks import load_benchmark``, as before the package existed: the loader's names."""
    import importlib

    try:
        return getattr(importlib.import_module("eval.benchmarks.loader"), name)
    except AttributeError:
        raise AttributeError(f"module 'eval.benchmarks' has no attribute {name!r}") from None
