"""Decontamination and near-duplicates by meaning: embedding models, their exact int8 arithmetic, retrieval."""
