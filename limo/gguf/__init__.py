"""The GGUF export behind ``python -m limo.export``: one export's files, checks and renames (`files`), llama.cpp's
converter and quantizer (`llamacpp`), limo's own writer and the transformers read-back (`writer`), the
SentencePiece rebuild llama.cpp's converter needs (`spm`), the check through llama.cpp's own server (`served`) and
Ollama's Modelfile (`modelfile`).
"""
