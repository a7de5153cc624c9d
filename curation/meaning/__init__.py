"""Decontamination and near-duplicates by meaning: problems that say the same thing in other words.

An n-gram check (`curation.stages.decontam`) cannot see a paraphrase: other words, renamed variables, sentences
reordered. Here every problem is embedded, the nearest benchmark items (or earlier pool problems) are retrieved,
and each candidate is confirmed by a rule that asks for more than similarity. One module per job, lower ones first:

- `readings`: what a text states, read the same way everywhere: its numbers, its math, its figures' labels, the
  text the embedding model is given (`embedding_text`), whether an answer is telling.
- `int8` and `encoder`: MiniLM's forward pass in numpy, float32 or exact int8 (the same bits on every CPU).
- `embedding`: the models (``wordllama``, ``minilm``, any sentence-transformers name), their prepared weights and
  the benchmark items' vectors cached under ``$LIMO_CACHE_DIR/semantic``.
- `index`: unit vectors on an integer grid, exact cosines, exact top-k (`SemanticIndex`).
- `confirm`: the confirmation rule and its tuned constants (numbers, math, rare numbers, the answer paths, the gold
  veto), with the evidence every match reports (`SemanticMatch`).
- `screen`: decontamination's cheap first step, which problems the rule could confirm at all.
- `contamination`: the entry points, `find_semantic_contamination` (pool problems against benchmark items: the
  screen, then the model and the rule, an optional judge) and `find_semantic_duplicates` (within the pool).
"""
