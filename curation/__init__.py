"""curation: from a pool of problems and candidate reasoning chains to a few hundred excellent ones.

Chains and training-example types, pool loading, the shared stages (`curation.stages`: scoring, selection,
...) and their one accounting (`curation.funnel`), reports, and the registry of curation methods
(`curation.methods.METHODS`: LIMO, LEMMA, preference pairs, RISE, MAmmoTH2). Builds on `eval` (problem
record, grader, generation); never imports `limo`, torch or transformers.
"""
