"""limo: the entry points users type, training on TRL + DeepSpeed, and the glue from recipes to plain options.

Top level: one thin module per command (``python -m limo.<command>``: curate, train, evaluate, plan, discover,
export, explore, serve, demo, ablate). Below them, by floor (docs/architecture.md, "Layers"): `limo.cli` (the
command line: its check against the options schema, the one error style, ``--help``, composing a recipe), the
commands' parts (`limo.ablation`, `limo.discovery`, `limo.gguf`: the GGUF export), `limo.setup` (a recipe section
turned into plain options, one module per command), `limo.training`, `limo.models` (chat templates, tiny models) and
`limo.config` (where recipes are, a section as typed options, sweep folders).

The top of the dependency stack: it imports `curation` and `eval`, never the other way round.
"""
