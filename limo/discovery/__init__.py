"""DiscoPOP's discovery loop (Lu et al., 2024): an LLM proposes preference losses, a checker and a confined
process vet them, a short DPO run scores them, and the score goes back to the LLM.

Modules, in the order a proposal meets them: `proposals` (parse the proposer's reply),
`limo.training.loss_language` (the allowlisted loss language: checker and interpreter; proposed code is never passed
to exec), `sandbox` (run a worker confined), `worker` / `validation` / `fitness` (what runs inside),
`limo.training.loss_archive` (append-only ``discover/archive.jsonl``), `loop` (generations, resume), `report`
(``discover/report.md``). The language and the archive live under training, which reads a discovered loss by name
(``train.discovered_loss``); the arrow runs one way, discovery -> training. Around them:
`options` (the recipe's ``discover:`` section), `data` (pair splits), `build` (recipe -> plain values, through
the toolkit's shared builders: the ``pairs`` curation method, the ``dpo`` trainer, `eval.backends.generation`).
"""
