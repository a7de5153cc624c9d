"""Benchmarks and task generators: a benchmark spec loaded into problems (`loader`), CHAMP and its held-out split
(`champ`), multiple-choice options presented fairly (`choices`), and the generated arithmetic pool, held-out and
unseen-phrasing sets (`arithmetic`, `arithmetic_unseen`).
"""
