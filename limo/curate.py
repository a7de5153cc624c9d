"""`python -m limo.curate recipe=<name> [output_dir=...] [data_dir=...]`: curate a pool into training data.

A short lookup: the recipe's ``curate.method`` names a registered method (`curation.methods.METHODS`:
``limo``, ``lemma``, ``pairs``, ``rise``, ``mammoth2``), `limo.curate_setup` turns the section into its
plain options, and the method writes ``<output_dir>/curate/`` (see docs/curation.md). A data or config
error, and a run that selects nothing, end with one line (`limo.entry`).
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from limo.curate_setup import build_curation, check_selected
from limo.entry import reported_errors
from limo.sweeps import job_config


@hydra.main(config_path="../recipes", config_name="config", version_base=None)
def main(cfg: DictConfig) -> None:
    with reported_errors("curate", cfg):
        summary = build_curation(job_config(cfg)).run()
        check_selected(summary)
        print(summary.line())


if __name__ == "__main__":
    main()
