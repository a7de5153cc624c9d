"""Generation backends behind one interface (`eval.backends.base.Backend`).

Implementations: ``hf`` (transformers ``generate``), ``vllm`` (optional, GPU), ``openai`` (any
OpenAI-compatible HTTP server) and ``replay`` (answers from a file or pool, for deterministic offline
stages). Heavy libraries are imported inside the implementations, never at module import.
"""
