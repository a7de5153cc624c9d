"""vLLM backend (optional extra ``gen``: ``pip install -e '.[gen]'``, CUDA only): the fast path for real evaluations.

vllm is imported when the backend is built, never at module import. Every request carries its own
seed in vLLM's ``SamplingParams(seed=...)``, which vLLM applies per request, so responses do not depend
on batching, as with the hf backend (the two backends do not produce the same text: different kernels).
Tensor parallelism splits one model over GPUs; data parallelism runs replicas.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eval.backends.base import FinishReason, Generation, GenerationRequest


class VLLMBackend:
    """Generate with ``vllm.LLM.chat``.

    Args:
        model_path: Model folder or hub id.
        dtype: Weight dtype (``bfloat16``, ``float16``, ``auto``).
        tensor_parallel_size: GPUs per model replica.
        data_parallel_size: Model replicas, passed to the engine as ``data_parallel_size`` (offline data
            parallelism depends on the installed vLLM version; untested here, no GPU).
        max_model_len: Context length (None: the model's).
        gpu_memory_utilization: Fraction of GPU memory vLLM may take.
        chat_template: Jinja text replacing the model's template (None: the model's own).
        revision: Hub revision.
    """

    name = "vllm"

    def __init__(
        self,
        model_path: str,
        *,
        dtype: str = "auto",
        tensor_parallel_size: int = 1,
        data_parallel_size: int = 1,
        max_model_len: int | None = None,
        gpu_memory_utilization: float = 0.9,
        chat_template: str | None = None,
        revision: str | None = None,
    ):
        try:
            import vllm
        except ImportError as err:
            raise ImportError("backend 'vllm' needs the extra gen: pip install -e '.[gen]' (CUDA only)") from err
        self._vllm = vllm
        self.chat_template = chat_template
        extra: dict[str, Any] = {"max_model_len": max_model_len} if max_model_len else {}
        if data_parallel_size > 1:
            extra["data_parallel_size"] = data_parallel_size
        self.llm = vllm.LLM(
            model=model_path,
            revision=revision,
            dtype=dtype,
            tensor_parallel_size=tensor_parallel_size,
            gpu_memory_utilization=gpu_memory_utilization,
            **extra,
        )

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        params = [
            self._vllm.SamplingParams(
                temperature=r.sampling.temperature,
                top_p=r.sampling.top_p,
                max_tokens=r.sampling.max_new_tokens,
                stop=list(r.sampling.stop) or None,
                seed=r.seed,
            )
            for r in requests
        ]
        outputs = self.llm.chat(
            [list(r.messages) for r in requests], params, chat_template=self.chat_template, use_tqdm=True
        )
        return [_generation(r, o) for r, o in zip(requests, outputs, strict=True)]


def _generation(request: GenerationRequest, output: Any) -> Generation:
    completion = output.outputs[0]
    finish: FinishReason = "length" if completion.finish_reason == "length" else "stop"
    return Generation(request.id, completion.text, finish, len(completion.token_ids), {"seed": request.seed})
