"""limo: the entry points users type, training on TRL + DeepSpeed, and the glue from recipes to plain options.

Top level: one thin module per command (``python -m limo.<command>``: curate, train, evaluate, plan, discover,
export, explore, serve, demo, ablate). Below them, by floor (docs/architecture.md, "Layers"): `limo.cli` (the
command line: its check against the options schema, the one error style, ``--help``, composing a recipe), the
commands' parts (`limo.ablation`, `limo.discovery`, `limo.gguf`: the GGUF export), `limo.setup` (a recipe section
turned into plain options, one module per command), `limo.training`, `limo.models` (chat templates, tiny models) and
`limo.config` (where recipes are, a section as typed options, sweep folders).

The top of the dependency stack: it imports `curation` and `eval`, never the other way round.
"""

import sys

from eval import MovedModules

sys.meta_path.append(
    MovedModules(  # the modules of an earlier layout, as the module each moved to
        {
            "limo.entry": "limo.cli.entry",
            "limo.options_table": "limo.cli.options_table",
            "limo.overrides": "limo.cli.overrides",
            "limo.usage": "limo.cli.usage",
            "limo.search_path": "limo.config.search_path",
            "limo.sections": "limo.config.sections",
            "limo.sweeps": "limo.config.sweeps",
            "limo.export_files": "limo.gguf.files",
            "limo.export_llamacpp": "limo.gguf.llamacpp",
            "limo.export_modelfile": "limo.gguf.modelfile",
            "limo.export_served": "limo.gguf.served",
            "limo.export_spm": "limo.gguf.spm",
            "limo.gguf_export": "limo.gguf.writer",
            "limo.model_chat": "limo.models.chat",
            "limo.tiny_models": "limo.models.tiny",
            "limo.curate_setup": "limo.setup.curate",
            "limo.eval_modes": "limo.setup.eval_modes",
            "limo.eval_setup": "limo.setup.evaluate",
            "limo.train_setup": "limo.setup.train",
        }
    )
)
