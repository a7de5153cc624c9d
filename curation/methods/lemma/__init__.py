"""LEMMA (Pan et al., 2025): error-correction examples (`examples`), teacher error injection (`injection`), reasoning
steps inside a chain (`chain_steps`); `method` registers ``curate.method: lemma``."""
