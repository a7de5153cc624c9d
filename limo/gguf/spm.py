"""A SentencePiece ``tokenizer.model`` rebuilt from a folder's ``tokenizer.json``, for llama.cpp's converter.

Why: a SentencePiece-style tokenizer (Gemma, Llama 2, Mistral: BPE over ``▁``-marked pieces with byte fallback) is
written to GGUF as ``tokenizer.ggml.model = llama`` — pieces, scores and types, where llama.cpp's runtime merges the
adjacent pair whose joined piece has the highest score. llama.cpp's converter reads those from ``tokenizer.model``.
A model folder saved by transformers from a GGUF file (every ``pkg:`` model, Gemma 3 270M among them) has only
``tokenizer.json``, and without ``tokenizer.model`` the converter writes Gemma 3's vocabulary as a byte-level
(``gpt2``) one, whose pieces llama.cpp and transformers then read as other text (transformers refuses the file:
"Token `\\n` out of vocabulary"); for Llama-architecture folders it falls back to equal scores, which merges in
no defined order.

The rebuilt model gives each piece a merge's rank as its score (``-rank`` of the first merge that makes it: higher
merges first, as the BPE in ``tokenizer.json`` applies them; transformers built those merges from the GGUF's scores
in that order), every other piece a score below all of those, and the types llama.cpp keeps (control and
user-defined from ``added_tokens``, ``<0xNN>`` bytes, the unknown piece). limo's checks after conversion compare
llama.cpp's token ids with transformers' on fixed prompts, so a rebuilt model that tokenized differently fails
there, not in a user's hands.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

SPM_MARK = "▁"
_BYTE = re.compile(r"<0x[0-9A-Fa-f]{2}>")
# sentencepiece_model.proto: ModelProto.SentencePiece.Type, TrainerSpec.ModelType
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, BYTE = 1, 2, 3, 4, 6
BPE_MODEL = 2


def spm_spec(folder: Path) -> dict[str, Any] | None:
    """The parsed ``tokenizer.json`` where ``folder`` needs a rebuilt SentencePiece model: a SentencePiece-style
    ``tokenizer.json`` and no ``tokenizer.model`` (None: the folder converts as it is)."""
    if (folder / "tokenizer.model").is_file() or not (folder / "tokenizer.json").is_file():
        return None
    spec = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
    return spec if is_spm_style(spec) else None


def is_spm_style(spec: dict[str, Any]) -> bool:
    """A BPE with byte fallback whose decoder turns ``▁`` back into a space (SentencePiece's layout)."""
    model = spec.get("model") or {}
    if model.get("type") != "BPE" or not model.get("byte_fallback"):
        return False
    return SPM_MARK in json.dumps(spec.get("decoder"), ensure_ascii=False)


def spm_model_bytes(spec: dict[str, Any]) -> bytes:
    """The serialized SentencePiece ``ModelProto`` for the tokenizer ``spec`` (a parsed ``tokenizer.json``)."""
    from sentencepiece import sentencepiece_model_pb2 as pb  # with the llama.cpp extra (make llamacpp)

    model = spec["model"]
    vocab: dict[str, int] = dict(model["vocab"])
    added = {item["content"]: item for item in spec.get("added_tokens", [])}
    for text, item in added.items():
        vocab.setdefault(text, int(item["id"]))
    by_id = sorted(vocab.items(), key=lambda kv: kv[1])
    if [i for _, i in by_id] != list(range(len(by_id))):
        raise ValueError("tokenizer.json: token ids are not 0..n-1 without gaps; no SentencePiece model can hold them")
    rank = merge_ranks(model.get("merges") or [])
    unk = model.get("unk_token")
    proto = pb.ModelProto()  # type: ignore[attr-defined]  # generated protobuf code
    floor = -float(len(rank) + 1)
    for text, token_id in by_id:
        piece = proto.pieces.add()
        piece.piece = text
        if _BYTE.fullmatch(text):
            piece.type = BYTE
        elif text == unk:
            piece.type = UNKNOWN
        elif text in added:
            piece.type = CONTROL if added[text].get("special") else USER_DEFINED
        else:
            piece.type = NORMAL
        piece.score = -float(rank[text]) if text in rank else floor - token_id
    proto.trainer_spec.model_type = BPE_MODEL
    proto.trainer_spec.byte_fallback = True
    proto.trainer_spec.vocab_size = len(by_id)
    ids = {name: vocab.get(spec_token(spec, name) or "", -1) for name in ("unk", "bos", "eos", "pad")}
    proto.trainer_spec.unk_id, proto.trainer_spec.bos_id = ids["unk"], ids["bos"]
    proto.trainer_spec.eos_id, proto.trainer_spec.pad_id = ids["eos"], ids["pad"]
    proto.normalizer_spec.name = "identity"
    proto.normalizer_spec.add_dummy_prefix = False
    proto.normalizer_spec.remove_extra_whitespaces = False
    proto.normalizer_spec.escape_whitespaces = True
    return bytes(proto.SerializeToString())


def merge_ranks(merges: list[Any]) -> dict[str, int]:
    """The rank of the first merge that makes each piece (merges as ``"a b"`` strings or ``[a, b]`` pairs)."""
    ranks: dict[str, int] = {}
    for index, merge in enumerate(merges):
        left, right = merge.split(" ", 1) if isinstance(merge, str) else merge
        ranks.setdefault(left + right, index)
    return ranks


def spec_token(spec: dict[str, Any], name: str) -> str | None:
    """The ``<name>`` token's text as this tokenizer writes it (``<unk>``, ``<bos>`` or ``<s>``, ...)."""
    vocab = spec["model"]["vocab"]
    candidates = {"unk": ("<unk>",), "bos": ("<bos>", "<s>"), "eos": ("<eos>", "</s>"), "pad": ("<pad>",)}[name]
    if name == "unk" and spec["model"].get("unk_token"):
        return str(spec["model"]["unk_token"])
    return next((text for text in candidates if text in vocab), None)


@contextmanager
def with_spm_model(folder: Path) -> Iterator[tuple[Path, bool]]:
    """``folder``, or a temporary view of it (links to its files) with a rebuilt ``tokenizer.model``; yields the
    folder to convert and whether the model was rebuilt."""
    spec = spm_spec(folder)
    if spec is None:
        yield folder, False
        return
    with tempfile.TemporaryDirectory(prefix="limo-spm-") as tmp:
        view = Path(tmp)
        for item in folder.iterdir():
            (view / item.name).symlink_to(item.resolve())
        (view / "tokenizer.model").write_bytes(spm_model_bytes(spec))
        yield view, True
