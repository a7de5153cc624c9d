"""Tiny offline models, fixtures for tests and the demo: a Qwen2-architecture causal LM with the Qwen2.5 chat template.

The model group ``model=tiny`` (``build_tiny: true``) builds one on first use (`ensure_model`), so the demo
and the CPU recipes run without a hub; tests build theirs in fixtures. Nothing here is a model to train
for real.

No package ships a causal LM with its tokenizer and the machines have no hub, so we build one in code:
a byte-level BPE trained with `tokenizers` on a fixed corpus (deterministic), wrapped in
`PreTrainedTokenizerFast`, and a randomly initialised `Qwen2ForCausalLM` (hidden 64, 2 layers) seeded
from ``seed``. The pre-tokenizer is Qwen's regex with NFC normalisation because transformers 5.x loads
any ``model_type="qwen2"`` folder with its own Qwen2 tokenizer class, which must encode like our file.

A random model writes no valid answers, so `build_overfit_model` trains the tiny model for a few
seconds on a handful of prompt -> response pairs (a boxed answer, a JSON object, a reply ending in EOS)
until greedy decoding reproduces them: stages that need sensible model text get real model output.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from eval.backends.model_source import resolve_model_path

QWEN_PRETOKENIZE_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
EOS_TOKEN = "<|im_end|>"
PAD_TOKEN = "<|endoftext|>"

# Fixed training text for the tokenizer: enough math, LaTeX, JSON and chat vocabulary that common
# strings do not explode into single bytes. Changing it changes every tiny model: keep it stable.
_TOKENIZER_CORPUS = [
    "system user assistant You are a helpful assistant. Please reason step by step, and put your final answer "
    "within \\boxed{}.",
    "Let x be a real number. Find the value of x such that 2x + 3 = 7. Therefore x = 2. The answer is \\boxed{2}.",
    "Compute \\frac{1}{2} + \\frac{1}{3} = \\frac{5}{6}. We check: since 3 + 2 = 5, the sum is correct.",
    "Solve the equation x^2 - 5x + 6 = 0. The roots are 2 and 3, so the answer is \\boxed{2, 3}.",
    '{"question": "What is 1 + 1?", "answer": "2"} {"question": "Find n.", "answer": "n = 5"}',
    "Perhaps we might try another approach. Wait, let me verify this step. Since n is odd, n^2 is odd.",
    "The number of strings is 239. The limit exists and is equal to (a + 2b)/3. sqrt(3)/3, 2^(n-1), C(10, 5).",
    "0 1 2 3 4 5 6 7 8 9 10 100 1000 + - * / = ( ) [ ] { } < > ^ _ \\sqrt \\pi \\cdot \\left \\right",
    "Final Answer: The final answer is 42. I hope it is correct. Hence, thus, so, because, first, second.",
]


def build_tokenizer(vocab_size: int = 600):
    """Train the deterministic byte-level BPE tokenizer with the Qwen2.5 chat template.

    Returns:
        A `transformers.PreTrainedTokenizerFast`.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(byte_fallback=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN_PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_TOKENIZER_CORPUS * 4, trainer=trainer)
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        padding_side="left",
        additional_special_tokens=[SPECIAL_TOKENS[1]],
    )
    wrapped.chat_template = qwen25_chat_template()
    return wrapped


def qwen25_chat_template() -> str:
    """TRL's bundled Qwen2.5 chat template (the one real Qwen2.5 models ship)."""
    import trl

    return (Path(trl.__file__).parent / "chat_templates" / "qwen2_5.jinja").read_text(encoding="utf-8")


def build_tiny_model(
    path: str | Path, *, seed: int = 0, hidden_size: int = 64, num_layers: int = 2, vocab_size: int = 600
) -> Path:
    """Build and save a tiny Qwen2 causal LM with its tokenizer at ``path``; deterministic in ``seed``.

    Args:
        path: Output folder (created).
        seed: Seeds the weight initialisation.
        hidden_size: Model width (64 builds in well under a second; ~50M-parameter planner checks use more).
        num_layers: Decoder layers.
        vocab_size: Tokenizer vocabulary size.

    Returns:
        The folder, loadable with ``AutoModelForCausalLM`` / ``AutoTokenizer`` offline.
    """
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    out = Path(path)
    tokenizer = build_tokenizer(vocab_size)
    eos_id = tokenizer.convert_tokens_to_ids(EOS_TOKEN)
    pad_id = tokenizer.convert_tokens_to_ids(PAD_TOKEN)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=num_layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=32768,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=eos_id,
        pad_token_id=pad_id,
    )
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config)
    model.generation_config = GenerationConfig(eos_token_id=eos_id, pad_token_id=pad_id, bos_token_id=None)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


ARCHITECTURES = {"qwen2": ("Qwen2Config", "Qwen2ForCausalLM"), "llama": ("LlamaConfig", "LlamaForCausalLM")}


def build_shaped_model(
    path: str | Path,
    shape: Mapping[str, Any],
    *,
    architecture: str = "qwen2",
    seed: int = 0,
    dtype: str = "float32",
    device: str = "cpu",
) -> Path:
    """A randomly initialised model of a real model's shape (SmolLM2-135M, Qwen2.5-1.5B, ...) with the tiny
    tokenizer, saved at ``path``: what speed and memory measurements need, since a random model costs exactly
    what a trained one costs.

    Args:
        path: Output folder (created).
        shape: `limo.training.memory.ModelShape` field names (``hidden_size``, ``intermediate_size``,
            ``num_layers``, ``num_attention_heads``, ``num_key_value_heads``, ``vocab_size``,
            ``tie_word_embeddings``); the embedding keeps the shape's vocabulary, of which the tokenizer uses its
            first few hundred ids (ids beyond it decode to nothing).
        architecture: ``qwen2`` (q/k/v biases, as Qwen2.5) or ``llama`` (as SmolLM2).
        seed: Seeds the weight initialisation.
        dtype: The saved weights' dtype (``bfloat16`` halves what GPU runs load).
        device: Where the weights are initialised (``cuda`` is much faster for a billion parameters).

    Returns:
        The folder, loadable with ``AutoModelForCausalLM`` / ``AutoTokenizer`` offline.
    """
    import torch
    import transformers
    from transformers import GenerationConfig

    config_class, model_class = (getattr(transformers, name) for name in ARCHITECTURES[architecture])
    tokenizer = build_tokenizer()
    eos_id, pad_id = tokenizer.convert_tokens_to_ids(EOS_TOKEN), tokenizer.convert_tokens_to_ids(PAD_TOKEN)
    config = config_class(
        vocab_size=max(int(shape["vocab_size"]), len(tokenizer)),
        hidden_size=int(shape["hidden_size"]),
        intermediate_size=int(shape["intermediate_size"]),
        num_hidden_layers=int(shape["num_layers"]),
        num_attention_heads=int(shape["num_attention_heads"]),
        num_key_value_heads=int(shape["num_key_value_heads"]),
        tie_word_embeddings=bool(shape.get("tie_word_embeddings", False)),
        max_position_embeddings=32768,
        bos_token_id=None,
        eos_token_id=eos_id,
        pad_token_id=pad_id,
    )
    torch.manual_seed(seed)
    with torch.device(device):
        model = model_class(config).to(getattr(torch, dtype))
    model.generation_config = GenerationConfig(eos_token_id=eos_id, pad_token_id=pad_id, bos_token_id=None)
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


DEFAULT_OVERFIT_PAIRS: tuple[tuple[str, str], ...] = (
    ("What is 2 + 3?", "2 + 3 = 5. The answer is \\boxed{5}."),
    ("Extract the question and answer as JSON.", '{"question": "What is 1 + 1?", "answer": "2"}'),
    ("Say hello.", "Hello."),
    ("Find x if 2x = 8.", "Since 2x = 8, x = 4. The answer is \\boxed{4}."),
)


def build_overfit_model(
    path: str | Path,
    pairs: Sequence[tuple[str, str]] = DEFAULT_OVERFIT_PAIRS,
    *,
    seed: int = 0,
    steps: int = 150,
    lr: float = 3e-3,
    system_prompt: str | None = None,
) -> Path:
    """Build the tiny model, then train it until greedy decoding reproduces each ``prompt -> response``.

    Loss is on the assistant turn and its closing EOS only, so generation stops by itself.

    Args:
        path: Output folder.
        pairs: ``(prompt, response)`` pairs to memorise.
        seed: Seeds initialisation and training.
        steps: Full-batch optimisation steps.
        lr: AdamW learning rate.
        system_prompt: System turn to train with (None: the chat template's default).

    Returns:
        The folder.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = build_tiny_model(path, seed=seed, hidden_size=96)
    tokenizer = AutoTokenizer.from_pretrained(out)
    model = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
    input_ids, labels = _overfit_batch(tokenizer, pairs, system_prompt)
    torch.manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    attention = (input_ids != tokenizer.pad_token_id).long()
    model.train()
    for _ in range(steps):
        loss = model(input_ids=input_ids, attention_mask=attention, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    model.save_pretrained(out)
    (out / "overfit_pairs.json").write_text(json.dumps([list(p) for p in pairs], indent=1), encoding="utf-8")
    return out


def build_overfit_judge(path: str | Path, *, batch_size: int = 2, steps: int = 200) -> tuple[Any, list[Any]]:
    """A model judge (`eval.grading.judge`) on the tiny model, trained to write a ``REASON:``/``VERDICT:`` reply for
    two items about "What is 2 + 3?" (one right, one wrong), for tests and the judge benchmark.

    Returns:
        The judge's options (hf backend, CPU, the model folder, a short prompt, no system turn) and the two
        items it was trained on.
    """
    from eval.grading.judge import JudgeItem, JudgeOptions, render_messages  # deferred: only the judge tests need it

    prompt = "Problem: {problem}\nReference: {gold}\n{delimiter}\n{response}\n{delimiter}\nEnd with a VERDICT line."
    options = JudgeOptions(backend="hf", system_prompt="", prompt=prompt, max_new_tokens=64, batch_size=batch_size)
    items = [
        JudgeItem("What is 2 + 3?", "5", "2 + 3 = 5, so the answer is 5.", "sum", 0),
        JudgeItem("What is 2 + 3?", "5", "2 + 3 = 6, so the answer is 6.", "sum", 1),
    ]
    replies = ["REASON: 5 equals 5\nVERDICT: correct", "REASON: 6 is not 5\nVERDICT: incorrect"]
    pairs = [(render_messages(i, options)[-1]["content"], r) for i, r in zip(items, replies, strict=True)]
    model = build_overfit_model(path, pairs, steps=steps)
    options = JudgeOptions(**{**options.__dict__, "model": str(model), "backend_options": {"device": "cpu"}})
    return options, items


def chat_prompt(tokenizer, prompt: str, system_prompt: str | None = None) -> str:
    """The chat-templated prompt text up to the assistant turn."""
    messages = ([{"role": "system", "content": system_prompt}] if system_prompt else []) + [
        {"role": "user", "content": prompt}
    ]
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def _overfit_batch(tokenizer, pairs: Sequence[tuple[str, str]], system_prompt: str | None):
    import torch

    rows = []
    for prompt, response in pairs:
        prefix = tokenizer(chat_prompt(tokenizer, prompt, system_prompt), add_special_tokens=False)["input_ids"]
        answer = tokenizer(response + EOS_TOKEN + "\n", add_special_tokens=False)["input_ids"]
        rows.append((prefix + answer, [-100] * len(prefix) + answer))
    width = max(len(ids) for ids, _ in rows)
    pad = tokenizer.pad_token_id
    # Right padding for training; padded label positions are ignored.
    ids = torch.tensor([r + [pad] * (width - len(r)) for r, _ in rows])
    labels = torch.tensor([lab + [-100] * (width - len(lab)) for _, lab in rows])
    return ids, labels


def ensure_model(model_cfg: Mapping[str, Any]) -> str:
    """The model folder (or hub id) to load: the tiny model built there first when the group says ``build_tiny:
    true``; a ``.gguf`` file or ``pkg:<package>`` model converted once to a cached folder
    (`eval.backends.model_source.resolve_model_path`).

    Every rank may call this: the build goes to a private folder that is renamed into place, and the build is
    deterministic, so whichever rank wins leaves the same files.
    """
    if not model_cfg.get("build_tiny"):
        return resolve_model_path(str(model_cfg["path"]))
    path = Path(str(model_cfg["path"])).expanduser()
    if (path / "config.json").exists():
        return str(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}."))
    build_tiny_model(staging / "model")
    try:
        os.replace(staging / "model", path)
    except OSError:  # another rank got there first
        pass
    shutil.rmtree(staging, ignore_errors=True)
    return str(path)
