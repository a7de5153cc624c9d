"""limo: entry points (curate / train / evaluate / plan) and the training glue on TRL + DeepSpeed.

The top of the dependency stack: it imports `curation` and `eval`, never the other way round.
"""
