"""The command line every entry point shares: its arguments checked against the options schema before Hydra
composes (`overrides`), the one error style and the Hydra entry (`entry`), ``--help`` (`usage`), a recipe composed
as an entry point composes it (`compose`), and the options page generated from the schema (`options_table`:
``python -m limo.cli.options_table --write``).

It stands above every options type it checks (training, discovery, the setup modules), and below the entry points.
"""
