"""limo: entry points (curate / train / evaluate / plan / serve / demo), recipe glue, training on TRL + DeepSpeed.

Every entry point turns its recipe section into the library's frozen options (`limo.sections.to_options`),
reports a data or config error in one line (`limo.entry`), and gives each job of a Hydra sweep its own
folder (`limo.sweeps`).

The top of the dependency stack: it imports `curation` and `eval`, never the other way round.
"""
