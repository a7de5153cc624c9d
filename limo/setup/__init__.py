"""A recipe's section turned into plain options and values, one module per command: `curate` (``curate:``), `train`
(``train:`` as a `TrainRun`), `evaluate` (``evaluate:``), `ablate` (``ablate:`` as `AblateOptions`) and `eval_modes`
(what `limo.evaluate` runs for each ``mode=``). Library code never sees a config object: these builders hand it
plain values.
"""
