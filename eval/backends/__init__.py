"""Generation backends behind one interface (`eval.backends.base.Backend`).

Implementations: ``hf`` (transformers ``generate``), ``vllm`` (optional, GPU), ``openai`` (any
OpenAI-compatible HTTP server), ``llamacpp`` (a GGUF served by llama.cpp's own server, which limo starts and
stops) and ``replay`` (answers from a file or pool, for deterministic offline
stages). Heavy libraries are imported inside the implementations, never at module import.
"""
