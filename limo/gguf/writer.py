"""limo's own GGUF writer — the fallback where llama.cpp is not installed — and the transformers read-back check
every exported file passes, whoever wrote it.

`write_gguf` writes one file of type ``f32``, ``f16`` or ``q8_0`` (`TYPES`; `limo.gguf.files` runs the export and
uses llama.cpp's converter instead where it is installed). The layout follows llama.cpp's ``convert_hf_to_gguf.py``
through the ``gguf`` package's own tables: tensor names from `gguf.get_tensor_name_map`; 1-D tensors (norms,
biases) stay float32 in every type; ``q8_0`` keeps float16 for a matrix whose rows are not a whole number of 32-value
blocks; a tied LM head is written once, as ``token_embd`` (no ``output.weight``); llama's q/k projections are stored
in llama.cpp's rotary layout (`permute_rotary`), which GGUF readers undo, while qwen2's are not and keep their q/k/v
biases. The tokenizer goes in as llama.cpp's ``gpt2`` (byte-level BPE) vocabulary: tokens, token types, merges, the
pre-tokenizer's llama.cpp name, bos/eos/pad/unk ids, whether to add BOS/EOS, and the chat template.

`verify_gguf` reads a file back with transformers' GGUF reader (``gguf_file=``, the one that loads a
``model.path=<file>.gguf``); a file is renamed into place only when it passes `Verification`:
the tokenizer gives the same ids on the fixed prompts (`PROMPTS`, rendered through the chat template), the chat
template text is identical, the largest next-token logit difference, as a share of that prompt's logit range
(max - min over the vocabulary), is within `TOLERANCES`, and every prompt's next token (top-1) is the same.
``f32`` is a copy (allowed 1e-4 of the range: summation order only). ``f16`` keeps 11 significant bits (2^-11,
about 5e-4 relative rounding per weight), allowed 1%, which sits over ten times above what it produces on
SmolLM2-135M (0.06%, 30 layers) and the tiny model. ``q8_0`` rounds each 32-value block to 8 bits (up to 1/254 of
the block's largest value), allowed 5% (SmolLM2: 1.9%); its per-logit error (0.6 on SmolLM2) can exceed the gap
between a real model's two best next tokens (0.2 to 0.5 on the fixed prompts), so for ``q8_0`` a top-1 swap counts
as a tie, not a failure, where the source's gap is within twice that prompt's largest |Δlogit|. ``q4_k_m``
(llama.cpp's quantizer only: 4-bit blocks of 32 in super-blocks of 256, some matrices at 6 bits) is allowed 15%,
ties likewise. A file outside its tolerance is removed and `ExportVerificationError` names the figures. The check has
teeth on trained weights only: in a random model with near-uniform attention (initialiser scale 0.02) even llama's
q/k written unpermuted moves the logits by just 0.2% of the range (tests/test_export.py widens its tiny llama's
weights for that reason).

Only the architectures in `ARCHITECTURES` (llama, qwen2) are written by this writer; any other is one
`UnsupportedModelError`, as are features llama.cpp or the reader would silently drop (rope scaling, sliding windows,
llama biases). torch, transformers and gguf are imported inside functions, so importing this module stays light.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eval.backends.model_source import one_reader_per_file

TYPES = ("f32", "f16", "q8_0")


@dataclass(frozen=True)
class Tolerance:
    """What a file may differ by. Read back by transformers: the largest next-token |Δlogit| as a share of the
    source's logit range on that prompt, and whether a top-1 swap between two logits closer than 2 |Δlogit| counts as
    a tie. Served by llama.cpp (`limo.gguf.served`): the largest gap, in the source's logits, between its greedy
    token and llama.cpp's where their replies first differ (a near-tie)."""

    relative: float
    ties_allowed: bool = False
    greedy_margin: float = 0.0


TOLERANCES = {
    "f32": Tolerance(1e-4, greedy_margin=0.05),
    "f16": Tolerance(1e-2, greedy_margin=0.25),
    "q8_0": Tolerance(5e-2, ties_allowed=True, greedy_margin=1.0),
    "q4_k_m": Tolerance(0.15, ties_allowed=True, greedy_margin=2.0),
}
# Fixed prompts: arithmetic, LaTeX and a digit run, so merges, digits and the template's special tokens are all
# exercised by the tokenizer check.
PROMPTS = (
    "What is 2 + 3?",
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many "
    "clips did Natalia sell altogether in April and May?",
    "Compute \\frac{1}{2} + \\frac{1}{3} and put your final answer within \\boxed{}. Then 12345 * 678.",
)
QK_BLOCK = 32  # values per q8_0 block (ggml's QK8_0)
TOKEN_NORMAL, TOKEN_CONTROL, TOKEN_USER_DEFINED, TOKEN_UNUSED = 1, 3, 4, 5  # gguf.TokenType values


class UnsupportedModelError(ValueError):
    """A model this exporter cannot write faithfully (architecture, tokenizer or a feature GGUF would drop)."""


class ExportVerificationError(ValueError):
    """A written file that did not read back as the model it came from."""


@dataclass(frozen=True)
class Architecture:
    """How one transformers architecture is written: its GGUF architecture and whether q/k are permuted."""

    gguf_name: str
    permute_qk: bool
    # config attributes that must be falsy: llama.cpp (or transformers' reader) would drop what they add
    must_be_off: tuple[str, ...] = ()


ARCHITECTURES = {
    "llama": Architecture("llama", permute_qk=True, must_be_off=("attention_bias", "mlp_bias")),
    "qwen2": Architecture("qwen2", permute_qk=False, must_be_off=("use_sliding_window",)),
}


@dataclass(frozen=True)
class Verification:
    """One file read back against the source model on `PROMPTS`."""

    max_abs_logit_diff: float
    relative_logit_diff: float  # max over prompts of max|Δlogit| / (max - min of the source's logits)
    tolerance: float
    top1_agree: int
    top1_ties: int  # prompts whose top-1 differs where the source's two best logits are within 2 max|Δlogit|
    ties_allowed: bool
    prompts: int
    token_ids_identical: bool
    chat_template_identical: bool
    seconds: float

    @property
    def passed(self) -> bool:
        ties = self.top1_ties if self.ties_allowed else 0
        within = self.relative_logit_diff <= self.tolerance and self.top1_agree + ties == self.prompts
        return within and self.token_ids_identical and self.chat_template_identical

    def failure(self) -> str:
        """What failed, in words (empty when `passed`)."""
        parts = []
        if not self.token_ids_identical:
            parts.append("the tokenizer read back gives different ids on the fixed prompts")
        if not self.chat_template_identical:
            parts.append("the chat template read back differs")
        if self.top1_agree + (self.top1_ties if self.ties_allowed else 0) != self.prompts:
            parts.append(f"top-1 agrees on {self.top1_agree}/{self.prompts} prompts ({self.top1_ties} ties)")
        if self.relative_logit_diff > self.tolerance:
            parts.append(
                f"max |Δlogit| {self.max_abs_logit_diff:.3g} is {self.relative_logit_diff:.2%} of the logit range "
                f"(tolerance {self.tolerance:.2%})"
            )
        return "; ".join(parts)


@dataclass(frozen=True)
class Reference:
    """The source model's view of `PROMPTS`: rendered texts, their ids, next-token logits."""

    texts: tuple[str, ...]
    ids: tuple[tuple[int, ...], ...]
    logits: Any  # torch.Tensor [prompts, vocab]


def supported_architecture(config: Any, where: str) -> Architecture:
    """The `Architecture` for a transformers config, or one error naming it and the supported ones.

    Raises:
        UnsupportedModelError: Another architecture, or a feature the GGUF file would silently lose.
    """
    model_type = str(getattr(config, "model_type", None))
    arch = ARCHITECTURES.get(model_type)
    if arch is None:
        classes = ", ".join(getattr(config, "architectures", None) or [])
        raise UnsupportedModelError(
            f"model architecture {model_type!r}{f' ({classes})' if classes else ''} cannot be exported to GGUF "
            f"(supported: {', '.join(ARCHITECTURES)}), {where}"
        )
    rope = getattr(config, "rope_parameters", None) or {}
    if rope.get("rope_type", "default") != "default":
        raise UnsupportedModelError(f"{model_type} with rope scaling {rope['rope_type']!r} is not exported, {where}")
    for flag in arch.must_be_off:
        if getattr(config, flag, False):
            raise UnsupportedModelError(f"{model_type} with {flag}=true is not exported, {where}")
    return arch


def load_source(path: str, check_architecture: bool = True) -> tuple[Any, Any]:
    """The model (float32, eval mode) and tokenizer at ``path``; a PEFT adapter folder is merged onto its base.

    Raises:
        UnsupportedModelError: With ``check_architecture`` (limo's own writer), the architecture is not in
            `ARCHITECTURES` (checked before loading weights).
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    folder = Path(path).expanduser()
    adapter = (folder / "adapter_config.json").is_file()
    base = _adapter_base(folder) if adapter else str(folder)
    if check_architecture:
        supported_architecture(AutoConfig.from_pretrained(base), str(folder))
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    if adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(folder)).merge_and_unload()
    has_tokenizer = (folder / "tokenizer_config.json").is_file() or (folder / "tokenizer.json").is_file()
    tokenizer = AutoTokenizer.from_pretrained(str(folder) if has_tokenizer or not adapter else base)
    return model.eval(), tokenizer


def _adapter_base(folder: Path) -> str:
    base = json.loads((folder / "adapter_config.json").read_text(encoding="utf-8")).get("base_model_name_or_path")
    if not base:
        raise ValueError(f"adapter_config.json names no base_model_name_or_path, {folder}")
    return str(base)


# ----------------------------------------------------------------------------------------------- writing


def write_gguf(model: Any, tokenizer: Any, path: Path, qtype: str, name: str) -> None:
    """Write ``model`` and ``tokenizer`` as one GGUF file of type ``qtype`` at ``path``."""
    import gguf

    arch = supported_architecture(model.config, str(path))
    writer = gguf.GGUFWriter(str(path), arch.gguf_name)
    try:
        writer.add_name(name)
        add_hparams(writer, model.config, qtype)
        add_tokenizer(writer, tokenizer, model.config.vocab_size)
        for tensor_name, data, raw_dtype in gguf_tensors(model, arch, qtype):
            writer.add_tensor(tensor_name, data, raw_dtype=raw_dtype)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
    finally:
        writer.close()


def add_hparams(writer: Any, config: Any, qtype: str) -> None:
    """The model's shape under llama.cpp's keys (``<arch>.block_count``, ...), its file type, quant version."""
    import gguf

    heads = config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    rope = getattr(config, "rope_parameters", None) or {}
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(heads)
    writer.add_head_count_kv(config.num_key_value_heads or heads)
    writer.add_rope_freq_base(float(rope.get("rope_theta") or getattr(config, "rope_theta", 10000.0)))
    writer.add_rope_dimension_count(head_dim)
    if head_dim != config.hidden_size // heads:
        writer.add_key_length(head_dim)
        writer.add_value_length(head_dim)
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_vocab_size(config.vocab_size)
    file_type = {"f32": "ALL_F32", "f16": "MOSTLY_F16", "q8_0": "MOSTLY_Q8_0"}[qtype]
    writer.add_file_type(gguf.LlamaFileType[file_type])
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)


def gguf_tensors(model: Any, arch: Architecture, qtype: str) -> Iterator[tuple[str, Any, Any]]:
    """``(GGUF name, data, raw dtype or None)`` for every weight, in the state dict's order.

    Raises:
        UnsupportedModelError: A weight with no GGUF name for this architecture.
    """
    import gguf

    config = model.config
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH[arch.gguf_name.upper()], config.num_hidden_layers)
    for hf_name, tensor in model.state_dict().items():
        if hf_name == "lm_head.weight" and config.tie_word_embeddings:
            continue  # tied: the embedding is the LM head, and no output.weight is how a reader knows
        gguf_name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if gguf_name is None:
            raise UnsupportedModelError(f"weight {hf_name} has no GGUF name for {arch.gguf_name}")
        data = tensor.detach().to("cpu").float().numpy()
        if arch.permute_qk and hf_name.endswith(("q_proj.weight", "q_proj.bias")):
            data = permute_rotary(data, config.num_attention_heads)
        elif arch.permute_qk and hf_name.endswith(("k_proj.weight", "k_proj.bias")):
            data = permute_rotary(data, config.num_key_value_heads or config.num_attention_heads)
        yield gguf_name, *stored(gguf_name, data, qtype)


def permute_rotary(weights: Any, heads: int) -> Any:
    """llama.cpp's rotary layout for a q or k projection: within each head, the two halves interleaved
    (``LlamaModel.permute`` in convert_hf_to_gguf.py; transformers' reader applies the inverse)."""
    rows = weights.shape[0]
    split = weights.reshape(heads, 2, rows // heads // 2, *weights.shape[1:])
    return split.swapaxes(1, 2).reshape(weights.shape)


def stored(gguf_name: str, data: Any, qtype: str) -> tuple[Any, Any]:
    """``(data, raw dtype)`` as llama.cpp stores this tensor in a file of type ``qtype``."""
    import gguf
    import numpy as np

    kind = gguf.GGMLQuantizationType
    if data.ndim <= 1 or gguf_name.endswith("_norm.weight") or qtype == "f32":
        return data.astype(np.float32), None
    if qtype == "f16" or data.shape[-1] % QK_BLOCK:
        return data.astype(np.float16), None
    return gguf.quants.quantize(data, kind.Q8_0), kind.Q8_0


def add_tokenizer(writer: Any, tokenizer: Any, vocab_size: int) -> None:
    """The tokenizer under llama.cpp's ``tokenizer.*`` keys (``gpt2`` model: byte-level BPE)."""
    tokens, types, merges, pre = vocabulary(tokenizer, vocab_size)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(pre)
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges)
    special = {
        "bos": tokenizer.bos_token_id,
        "eos": tokenizer.eos_token_id,
        "pad": tokenizer.pad_token_id,
        "unk": tokenizer.unk_token_id,
    }
    for role, token_id in special.items():
        if token_id is not None:
            getattr(writer, f"add_{role}_token_id")(token_id)
    add_bos, add_eos = added_specials(tokenizer)
    writer.add_add_bos_token(add_bos)
    writer.add_add_eos_token(add_eos)
    template = tokenizer.chat_template
    if isinstance(template, dict):
        template = [{"name": key, "template": text} for key, text in template.items()]
    if template:
        writer.add_chat_template(template)


def vocabulary(tokenizer: Any, vocab_size: int) -> tuple[list[str], list[int], list[str], str]:
    """Tokens by id (``[PAD<i>]`` up to the model's ``vocab_size``), their llama.cpp types, merges, pre-tokenizer.

    Raises:
        UnsupportedModelError: Not a byte-level BPE tokenizer, or more tokens than the model has rows.
    """
    spec = json.loads(tokenizer.backend_tokenizer.to_str())
    if spec["model"]["type"] != "BPE" or spec["model"].get("byte_fallback"):
        raise UnsupportedModelError(f"only byte-level BPE tokenizers are exported (this one: {spec['model']['type']})")
    by_id = {index: token for token, index in tokenizer.get_vocab().items()}
    if len(by_id) > vocab_size:
        raise UnsupportedModelError(f"the tokenizer has {len(by_id)} tokens but the model only {vocab_size} rows")
    added = tokenizer.added_tokens_decoder
    tokens, types = [], []
    for index in range(vocab_size):
        token = by_id.get(index)
        tokens.append(token if token is not None else f"[PAD{index}]")
        if token is None:
            types.append(TOKEN_UNUSED)
        elif index in added:
            types.append(TOKEN_CONTROL if added[index].special else TOKEN_USER_DEFINED)
        else:
            types.append(TOKEN_NORMAL)
    merges = [m if isinstance(m, str) else " ".join(m) for m in spec["model"]["merges"]]
    return tokens, types, merges, pre_tokenizer_name(spec.get("pre_tokenizer"))


def pre_tokenizer_name(pre: dict[str, Any] | None) -> str:
    """llama.cpp's name (``tokenizer.ggml.pre``) for how this tokenizer splits text before BPE.

    A regex split is looked up in transformers' own table of llama.cpp names (the one its GGUF reader uses), so
    the file reads back with the same split; GPT-2's built-in regex is ``gpt-2``, digits split one by one before
    it ``smollm``.

    Raises:
        UnsupportedModelError: A split llama.cpp has no name for (llama.cpp would tokenize differently).
    """
    from transformers.integrations.gguf.gguf_tokenizer_mapping import GGUF_PRE_TOKENIZER_SPLITS

    steps = (pre or {}).get("pretokenizers") if (pre or {}).get("type") == "Sequence" else [pre]
    kinds = [(s or {}).get("type") for s in steps or []]
    if kinds == ["ByteLevel"] and steps[0].get("use_regex", True):
        return "gpt-2"
    if kinds == ["Digits", "ByteLevel"] and steps[0].get("individual_digits") and steps[1].get("use_regex", True):
        return "smollm"
    if kinds == ["Split", "ByteLevel"] and not steps[1].get("use_regex", True):
        regex = steps[0].get("pattern", {}).get("Regex")
        for name, known in GGUF_PRE_TOKENIZER_SPLITS.items():
            if regex == known:
                return name
    raise UnsupportedModelError(f"the tokenizer's pre-tokenizer has no llama.cpp name: {json.dumps(pre)[:200]}")


def added_specials(tokenizer: Any) -> tuple[bool, bool]:
    """Whether encoding plain text adds BOS at the start and EOS at the end (llama.cpp's add_bos/add_eos)."""
    plain = tokenizer("a", add_special_tokens=False)["input_ids"]
    full = tokenizer("a")["input_ids"]
    add_bos = len(full) > len(plain) and tokenizer.bos_token_id is not None and full[0] == tokenizer.bos_token_id
    add_eos = len(full) > len(plain) and tokenizer.eos_token_id is not None and full[-1] == tokenizer.eos_token_id
    return add_bos, add_eos


# ----------------------------------------------------------------------------------------------- reading back


def rendered_prompts(tokenizer: Any) -> tuple[str, ...]:
    """`PROMPTS` as user turns through the chat template (with the generation prompt), or as they are without one."""
    if not tokenizer.chat_template:
        return PROMPTS
    return tuple(
        tokenizer.apply_chat_template([{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True)
        for p in PROMPTS
    )


def next_token_logits(model: Any, ids: Sequence[Sequence[int]]) -> Any:
    """The model's logits for the token after each id sequence, one row per sequence."""
    import torch

    with torch.no_grad():
        return torch.stack([model(torch.tensor([list(row)])).logits[0, -1].float() for row in ids])


def reference_logits(model: Any, tokenizer: Any) -> Reference:
    """The source model's rendered prompts, ids and next-token logits (computed once for every type)."""
    texts = rendered_prompts(tokenizer)
    ids = tuple(tuple(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts)
    return Reference(texts, ids, next_token_logits(model, ids))


def verify_gguf(path: Path, reference: Reference, tokenizer: Any, tolerance: Tolerance) -> Verification:
    """Read ``path`` back with transformers and compare it with the source on `PROMPTS`."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    started = time.perf_counter()
    folder, filename = str(path.parent), path.name
    with one_reader_per_file():  # one parse of the file for the tokenizer, the config and the weights
        read_tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=filename)
        read_model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=filename, dtype=torch.float32).eval()
    logits = next_token_logits(read_model, reference.ids)
    diff = (logits - reference.logits).abs().amax(dim=-1)
    spread = reference.logits.amax(dim=-1) - reference.logits.amin(dim=-1)
    same_top1 = logits.argmax(dim=-1) == reference.logits.argmax(dim=-1)
    best_two = reference.logits.topk(2, dim=-1).values
    tied = (best_two[:, 0] - best_two[:, 1]) <= 2 * diff
    return Verification(
        max_abs_logit_diff=float(diff.max()),
        relative_logit_diff=float((diff / spread.clamp_min(1e-12)).max()),
        tolerance=tolerance.relative,
        top1_agree=int(same_top1.sum()),
        top1_ties=int((~same_top1 & tied).sum()),
        ties_allowed=tolerance.ties_allowed,
        prompts=len(reference.ids),
        token_ids_identical=same_ids(tokenizer, read_tokenizer, reference.texts),
        chat_template_identical=read_tokenizer.chat_template == tokenizer.chat_template,
        seconds=round(time.perf_counter() - started, 2),
    )


def same_ids(source: Any, read: Any, texts: Sequence[str]) -> bool:
    """Whether both tokenizers give the same ids on ``texts``, with and without their own special tokens."""
    return all(
        source(text, add_special_tokens=special)["input_ids"] == read(text, add_special_tokens=special)["input_ids"]
        for text in texts
        for special in (False, True)
    )
