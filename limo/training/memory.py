"""Per-GPU memory estimate for a training run: model states under the ZeRO stage, activations, logits.

Model states for ZeRO-2 / ZeRO-3 (with or without CPU offload) come from DeepSpeed's own estimators
(`estimate_zero2_model_states_mem_needs`, `estimate_zero3_model_states_mem_needs`), which need no processes;
they assume bf16/fp16 mixed precision (2-byte weights and gradients, fp32 master weights, gradients and
Adam moments: 18 bytes per parameter spread over the GPUs). Without ZeRO, or for LoRA, or in fp32, the
same bookkeeping is done here: weights, gradients and Adam moments in the parameter dtype (what
`torch.optim.AdamW` keeps when the model is loaded in that dtype).

Activations at ``max_length`` (one sequence per device times the per-device batch):
- with activation checkpointing, each layer keeps its input (s*h values) and one layer at a time is
  recomputed in full during backward;
- a layer in full keeps about ``s * (6h + 2kv + 4i)`` values (norm, q/k/v/o inputs and outputs, the three
  SwiGLU projections), plus ``2 * heads * s^2`` attention scores unless attention is fused
  (FlashAttention / SDPA kernels keep O(s));
- the LM head: TRL's `SFTTrainer` (1.x) always replaces it by a fused, tiled head (`add_fused_lm_head`:
  tiles of at most 4096 tokens x 32768 vocabulary entries, fp32) and never materialises the full logits;
  we count three fp32 tiles (logits, probabilities, gradient). This term is an assumption, not yet
  measured on a GPU; on CPU the fused head's torch fallback holds several times more (see docs/training.md).
  A plain forward with labels (``fused_lm_head=False``) holds logits in the model dtype, their fp32 copy
  and the fp32 gradient: ``s * V * (dtype + 8)`` bytes — 23 GiB at 16k tokens with a 152k vocabulary.
Estimates are checked against a measured CPU peak (tests/test_plan.py) for a ~60M-parameter model.

GRPO (`GenerationSetup`) adds, per GPU, what RL holds beside the policy's training states: the reference model
when ``beta > 0`` (weights in the training dtype, sharded under ZeRO-3; with LoRA the base model is the reference
and costs nothing more), and generation — with transformers, the KV cache of the completions one process samples
at once (``batch x (prompt + completion) x layers x 2 x kv_dim`` values) plus, under ZeRO-3 with
``ds3_gather_for_generation``, the full weights gathered for sampling; with vLLM colocated, the share of the GPU
it reserves (``vllm_gpu_memory_utilization``); with a vLLM server, nothing on the training GPUs (the server
needs GPUs of its own). The training activations are counted at ``max_prompt_length + max_completion_length``.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from eval.backends.model_source import PACKAGE_PREFIX, resolve_model_path
from eval.records import hub_unreachable

log = logging.getLogger(__name__)
GIB = 1024**3
FUSED_TOKEN_TILE, FUSED_VOCAB_TILE = 4096, 32768  # trl.kernels.chunked_logprob tile shape (TRL 1.16)
DTYPE_BYTES = {"float32": 4, "fp32": 4, "bfloat16": 2, "bf16": 2, "float16": 2, "fp16": 2}


@dataclass(frozen=True)
class ModelShape:
    """The architecture numbers the estimate needs (a Llama/Qwen-style decoder).

    ``head_dim`` is given where heads are not ``hidden_size / num_attention_heads`` wide (Gemma 3 270M: 4 heads of
    256 on a width of 640); None: that quotient.
    """

    params: int
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    vocab_size: int
    tie_word_embeddings: bool = False
    head_dim: int | None = None

    @property
    def q_dim(self) -> int:
        return (self.head_dim or self.hidden_size // self.num_attention_heads) * self.num_attention_heads

    @property
    def kv_dim(self) -> int:
        return (self.head_dim or self.hidden_size // self.num_attention_heads) * self.num_key_value_heads

    @property
    def layer_params(self) -> int:
        """Weights of one decoder layer (q/k/v with bias, o, SwiGLU MLP, two norms)."""
        h, q, kv, i = self.hidden_size, self.q_dim, self.kv_dim, self.intermediate_size
        return (h * q + q) + 2 * (h * kv + kv) + q * h + 3 * h * i + 2 * h

    @property
    def largest_layer_params(self) -> int:
        """The largest single module: a decoder layer or the embedding matrix (ZeRO-3 gathers one at a time)."""
        return max(self.layer_params, self.vocab_size * self.hidden_size)


def count_params(shape: ModelShape) -> int:
    """Parameters implied by the shape (embeddings, layers, final norm, untied LM head)."""
    embeddings = shape.vocab_size * shape.hidden_size
    head = 0 if shape.tie_word_embeddings else embeddings
    return embeddings + head + shape.num_layers * shape.layer_params + shape.hidden_size


def shape_from_hf_config(config: Any) -> ModelShape:
    """`ModelShape` from a transformers config (parameters counted from the shape)."""
    shape = ModelShape(
        params=0,
        hidden_size=config.hidden_size,
        intermediate_size=config.intermediate_size,
        num_layers=config.num_hidden_layers,
        num_attention_heads=config.num_attention_heads,
        num_key_value_heads=getattr(config, "num_key_value_heads", None) or config.num_attention_heads,
        vocab_size=config.vocab_size,
        tie_word_embeddings=bool(getattr(config, "tie_word_embeddings", False)),
        head_dim=getattr(config, "head_dim", None),
    )
    return replace(shape, params=count_params(shape))


@dataclass(frozen=True)
class RunSetup:
    """What the run does, as far as memory is concerned."""

    num_gpus: int
    num_nodes: int
    zero_stage: int  # 0: no ZeRO (plain data parallel or one process)
    offload_optimizer: bool
    offload_params: bool
    dtype_bytes: int  # 2 for bf16/fp16 training, 4 for fp32
    seq_len: int
    per_device_batch: int
    activation_checkpointing: bool
    fused_attention: bool
    fused_lm_head: bool  # TRL's tiled LM head (SFTTrainer's default) instead of full logits
    lora_params: int = 0  # trainable LoRA parameters; 0 for a full fine-tune

    @property
    def world_size(self) -> int:
        return self.num_gpus * self.num_nodes


@dataclass(frozen=True)
class GenerationSetup:
    """What a GRPO run holds on a training GPU besides the policy (see the module docstring).

    Attributes:
        reference: A reference model is loaded (``beta > 0`` without LoRA).
        engine: ``transformers``, ``vllm_colocate`` or ``vllm_server``.
        batch: Completions one process generates at once (transformers: its share of a generation batch).
        seq_len: Prompt plus completion tokens.
        vllm_share: ``vllm_gpu_memory_utilization`` (colocated vLLM).
        gpu_gib: The GPU's memory (what the vLLM share is a share of).
        gather_weights: ZeRO-3 gathers the full weights to generate (``ds3_gather_for_generation``).
    """

    reference: bool
    engine: str
    batch: int
    seq_len: int
    vllm_share: float = 0.3
    gpu_gib: float = 80.0
    gather_weights: bool = True


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes per GPU (and per node of CPU memory for offload)."""

    weights: float
    gradients: float
    optimizer: float
    activation_checkpoints: float
    layer_activations: float
    logits: float
    cpu_per_node: float
    source: str  # who computed the model states
    reference: float = 0.0  # GRPO: the reference model's weights
    generation: float = 0.0  # GRPO: KV cache (+ gathered weights) or the vLLM reservation

    @property
    def model_states(self) -> float:
        return self.weights + self.gradients + self.optimizer

    @property
    def activations(self) -> float:
        return self.activation_checkpoints + self.layer_activations + self.logits

    @property
    def total(self) -> float:
        return self.model_states + self.activations + self.reference + self.generation

    def to_dict(self) -> dict[str, Any]:
        row = asdict(self)
        row.update(model_states=self.model_states, activations=self.activations, total=self.total)
        return row


def estimate_memory(shape: ModelShape, setup: RunSetup, generation: GenerationSetup | None = None) -> MemoryEstimate:
    """Per-GPU memory of ``setup`` training ``shape`` (see the module docstring for the model); ``generation``
    adds GRPO's reference model and sampling."""
    weights, gradients, optimizer, cpu, source = _model_states(shape, setup)
    checkpoints, layer, logits = _activations(shape, setup)
    reference, sampling = _rl_terms(shape, setup, generation) if generation else (0.0, 0.0)
    return MemoryEstimate(weights, gradients, optimizer, checkpoints, layer, logits, cpu, source, reference, sampling)


def _rl_terms(shape: ModelShape, setup: RunSetup, generation: GenerationSetup) -> tuple[float, float]:
    """The reference model's weights and generation's memory on one training GPU."""
    b = setup.dtype_bytes
    shards = max(1, setup.world_size) if setup.zero_stage == 3 else 1
    reference = shape.params * b / shards if generation.reference and not setup.lora_params else 0.0
    if generation.engine == "vllm_server":
        return reference, 0.0
    if generation.engine == "vllm_colocate":
        return reference, generation.vllm_share * generation.gpu_gib * GIB
    kv_cache = generation.batch * generation.seq_len * shape.num_layers * 2 * shape.kv_dim * b
    gathered = shape.params * b * (1 - 1 / shards) if setup.zero_stage == 3 and generation.gather_weights else 0.0
    return reference, float(kv_cache + gathered)


def _model_states(shape: ModelShape, setup: RunSetup) -> tuple[float, float, float, float, str]:
    if setup.lora_params or setup.zero_stage == 0 or setup.dtype_bytes == 4:
        return _own_model_states(shape, setup)
    if setup.zero_stage in (1, 2):
        return _zero2_states(shape, setup)
    return _zero3_states(shape, setup)


def _own_model_states(shape: ModelShape, setup: RunSetup) -> tuple[float, float, float, float, str]:
    """Weights, gradients and two Adam moments in the parameter dtype; ZeRO shards the trainable part."""
    b, shards = setup.dtype_bytes, max(1, setup.world_size) if setup.zero_stage else 1
    trainable = setup.lora_params or shape.params
    frozen = shape.params if setup.lora_params else 0
    weight_shards = shards if setup.zero_stage == 3 else 1
    weights = (frozen + trainable) * b / weight_shards
    gradients = trainable * b / (shards if setup.zero_stage >= 2 else 1)
    optimizer = trainable * 2 * b / shards
    return weights, gradients, optimizer, 0.0, "limo (parameter dtype, torch AdamW)"


def _zero2_states(shape: ModelShape, setup: RunSetup) -> tuple[float, float, float, float, str]:
    from deepspeed.runtime.zero.stage_1_and_2 import estimate_zero2_model_states_mem_needs

    cpu, gpu = estimate_zero2_model_states_mem_needs(
        shape.params, setup.num_gpus, setup.num_nodes, cpu_offload=setup.offload_optimizer
    )
    weights = 2 * shape.params  # replicated 16-bit weights; the rest is sharded or offloaded
    gradients = 0.0 if setup.offload_optimizer else (gpu - weights) * 6 / 18
    return weights, gradients, gpu - weights - gradients, float(cpu), "DeepSpeed estimate_zero2_model_states_mem_needs"


def _zero3_states(shape: ModelShape, setup: RunSetup) -> tuple[float, float, float, float, str]:
    from deepspeed.runtime.zero.stage3 import estimate_zero3_model_states_mem_needs

    cpu, gpu, largest = estimate_zero3_model_states_mem_needs(
        shape.params,
        shape.largest_layer_params,
        setup.num_gpus,
        setup.num_nodes,
        cpu_offload=setup.offload_optimizer,
        cpu_offload_params=setup.offload_params,
    )
    sharded = gpu - largest  # 18 bytes/param over the GPUs (2 without param offload but with optimizer offload)
    weights = largest + sharded * (2 / 18 if not setup.offload_optimizer else 1.0)
    gradients = 0.0 if setup.offload_optimizer else sharded * 6 / 18
    return weights, gradients, gpu - weights - gradients, float(cpu), "DeepSpeed estimate_zero3_model_states_mem_needs"


def _activations(shape: ModelShape, setup: RunSetup) -> tuple[float, float, float]:
    b, tokens = setup.dtype_bytes, setup.seq_len * setup.per_device_batch
    h, kv, i = shape.hidden_size, shape.kv_dim, shape.intermediate_size
    layer = tokens * (6 * h + 2 * kv + 4 * i) * b
    if not setup.fused_attention:
        layer += 2 * setup.per_device_batch * shape.num_attention_heads * setup.seq_len**2 * b
    if setup.activation_checkpointing:
        checkpoints = shape.num_layers * tokens * h * b
    else:
        checkpoints, layer = (shape.num_layers - 1) * layer, layer
    if setup.fused_lm_head:
        logits = min(tokens, FUSED_TOKEN_TILE) * min(shape.vocab_size, FUSED_VOCAB_TILE) * 4 * 3
    else:
        logits = tokens * shape.vocab_size * (b + 8)
    return float(checkpoints), float(layer), float(logits)


def gib(value: float) -> float:
    return value / GIB


# ----------------------------------------------------------------------------------- recipe -> estimate


def model_shape(model_cfg: Any) -> tuple[ModelShape, str]:
    """The model's shape from `AutoConfig` when it loads offline, else the model group's ``shape`` entry.

    Raises:
        ValueError: Neither is available (the message says which yaml key to add).
    """
    path = str(model_cfg["path"])
    if path.startswith(PACKAGE_PREFIX) or path.lower().endswith(".gguf"):
        path = resolve_model_path(path)  # converted once (cached): its config.json is local
    offline = None if Path(path).exists() else hub_unreachable()
    if offline:
        log.warning(
            "the hub cannot be reached (%s): the config of %s needs it; using the model group's shape", offline, path
        )
    else:
        try:
            from transformers import AutoConfig

            config = AutoConfig.from_pretrained(path, revision=model_cfg.get("revision"))
            return shape_from_hf_config(config), f"AutoConfig({path})"
        except (OSError, ValueError):
            pass
    declared = model_cfg.get("shape")
    if not declared:
        raise ValueError(
            f"cannot load the config of {model_cfg['path']} offline and the model group has no `shape:` entry "
            "(params, hidden_size, intermediate_size, num_layers, num_attention_heads, num_key_value_heads, "
            "vocab_size, tie_word_embeddings)"
        )
    return ModelShape(**dict(declared)), "model group `shape:`"


def run_setup(
    args: dict[str, Any],
    deepspeed: dict[str, Any] | None,
    model_cfg: Any,
    *,
    num_gpus: int,
    num_nodes: int,
    per_device_batch: int,
    lora_params: int = 0,
) -> RunSetup:
    """`RunSetup` from the recipe's ``train.args``, DeepSpeed dict and model group."""
    zero = (deepspeed or {}).get("zero_optimization", {})
    mixed = bool(args.get("bf16") or args.get("fp16"))
    dtype = 2 if mixed else DTYPE_BYTES.get(str(model_cfg.get("dtype")), 4)
    attention = str((args.get("model_init_kwargs") or {}).get("attn_implementation", "sdpa"))
    checkpointing = args.get("activation_checkpointing", args.get("gradient_checkpointing", True))
    return RunSetup(
        num_gpus=num_gpus,
        num_nodes=num_nodes,
        zero_stage=int(zero.get("stage", 0)),
        offload_optimizer=(zero.get("offload_optimizer") or {}).get("device") == "cpu",
        offload_params=(zero.get("offload_param") or {}).get("device") == "cpu",
        dtype_bytes=dtype,
        seq_len=int(args.get("max_length") or 1024),  # null (padding-free, untruncated): TRL's default length
        per_device_batch=per_device_batch,
        activation_checkpointing=bool(checkpointing),
        fused_attention=attention != "eager",
        fused_lm_head=True,  # TRL's SFTTrainer always patches in its fused LM head
        lora_params=lora_params,
    )


def lora_param_count(shape: ModelShape, r: int, target_modules: list[str]) -> int:
    """Trainable LoRA parameters: ``r * (in + out)`` per targeted projection per layer."""
    h, q, kv, i = shape.hidden_size, shape.q_dim, shape.kv_dim, shape.intermediate_size
    sizes = {"q_proj": (h, q), "k_proj": (h, kv), "v_proj": (h, kv), "o_proj": (q, h)}
    sizes.update({"gate_proj": (h, i), "up_proj": (h, i), "down_proj": (i, h)})
    per_layer = sum(r * (a + b) for name, (a, b) in sizes.items() if name in target_modules)
    return per_layer * shape.num_layers


def alternatives(setup: RunSetup) -> dict[str, RunSetup]:
    """The recipe's own setup and the usual ways to make it fit, for the verdict table."""
    options = {"recipe as written": setup}
    for stage, opt, par in ((2, False, False), (3, False, False), (3, True, True)):
        label = f"ZeRO-{stage}" + (" + CPU offload" if opt else "")
        options[label] = replace(setup, zero_stage=stage, offload_optimizer=opt, offload_params=par)
    options[f"recipe on {2 * setup.num_nodes} nodes"] = replace(setup, num_nodes=2 * setup.num_nodes)
    if not setup.activation_checkpointing:
        options["recipe + activation checkpointing"] = replace(setup, activation_checkpointing=True)
    return options


def render_plan(
    shape: ModelShape, shape_source: str, estimates: dict[str, MemoryEstimate], gpu_gib: float, reserve_gib: float
) -> str:
    """The planner's report: breakdown of the recipe's own setup, then a fits / does-not-fit table."""
    own = estimates["recipe as written"]
    budget = gpu_gib - reserve_gib
    lines = [
        f"model: {shape.params / 1e9:.2f}B parameters ({shape_source}); model states: {own.source}",
        "per GPU, recipe as written:",
    ]
    for label, value in (
        ("weights", own.weights),
        ("gradients", own.gradients),
        ("optimizer states", own.optimizer),
        ("activation checkpoints", own.activation_checkpoints),
        ("one layer recomputed", own.layer_activations),
        ("LM head + loss", own.logits),
        ("reference model", own.reference),
        ("generation", own.generation),
        ("total", own.total),
    ):
        if value or label not in ("reference model", "generation"):
            lines.append(f"  {label:28s} {gib(value):9.1f} GiB")
    if own.cpu_per_node:
        lines.append(f"  {'CPU memory per node':28s} {gib(own.cpu_per_node):9.1f} GiB (offload / buffers)")
    lines.append(f"GPU memory {gpu_gib:g} GiB, minus {reserve_gib:g} GiB reserve (CUDA context, fragmentation):")
    for label, estimate in estimates.items():
        verdict = "fits" if estimate.total <= budget * GIB else "does NOT fit"
        cpu = f", CPU/node {gib(estimate.cpu_per_node):.0f} GiB" if estimate.cpu_per_node else ""
        lines.append(f"  {label:36s} {gib(estimate.total):8.1f} GiB  {verdict}{cpu}")
    fits = [label for label, e in estimates.items() if e.total <= budget * GIB]
    lines.append("verdict: " + ("fits as written" if own.total <= budget * GIB else "does NOT fit as written"))
    if own.total > budget * GIB:
        lines.append("  options that fit: " + (", ".join(fits) if fits else "none — use more GPUs or nodes"))
    return "\n".join(lines)
