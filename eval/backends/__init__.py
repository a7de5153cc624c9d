"""Generation backends behind one interface (`eval.backends.base.Backend`), and what they need to run.

Implementations: ``hf`` (transformers ``generate``), ``vllm`` (optional, GPU), ``openai`` (any
OpenAI-compatible HTTP server), ``llamacpp`` (a GGUF served by llama.cpp's own server, which limo starts and
stops) and ``replay`` (answers from a file or pool, for deterministic offline
stages). Heavy libraries are imported inside the implementations, never at module import. Beside them: one
description of a generator and its resumable cache (`generation`), where a ``model.path`` points (`model_source`)
and budget forcing for the ``hf`` backend (`budget`).
"""
