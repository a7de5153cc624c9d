"""limo.plan: parameter counts, DeepSpeed-backed model states, the verdict, and a measured CPU peak.

The slow test trains a randomly initialised ~77M-parameter Qwen2 model for two AdamW steps in a fresh
process and compares the peak growth of its anonymous resident memory (from just before the model is built) with the
planner's estimate for the same setup (fp32, one process, no checkpointing).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from limo.config import compose
from limo.plan import plan
from limo.training.memory import (
    ModelShape,
    RunSetup,
    count_params,
    estimate_memory,
    gib,
    model_shape,
    shape_from_hf_config,
)


def _setup(**overrides) -> RunSetup:
    base = dict(
        num_gpus=8,
        num_nodes=1,
        zero_stage=3,
        offload_optimizer=False,
        offload_params=False,
        dtype_bytes=2,
        seq_len=16384,
        per_device_batch=1,
        activation_checkpointing=True,
        fused_attention=True,
        fused_lm_head=True,
    )
    return RunSetup(**{**base, **overrides})


def test_qwen32b_shape_counts_its_published_parameters():
    shape, source = model_shape(compose("limo").model)
    assert source == "model group `shape:`"
    assert count_params(shape) == shape.params == 32_763_876_352


def test_param_count_matches_a_real_model(tiny_model_dir):
    from transformers import AutoConfig, AutoModelForCausalLM

    shape = shape_from_hf_config(AutoConfig.from_pretrained(tiny_model_dir))
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    assert shape.params == sum(p.numel() for p in model.parameters())


def test_zero_stages_use_deepspeed_estimators():
    from deepspeed.runtime.zero.stage3 import estimate_zero3_model_states_mem_needs
    from deepspeed.runtime.zero.stage_1_and_2 import estimate_zero2_model_states_mem_needs

    shape, _ = model_shape(compose("limo").model)
    zero3 = estimate_memory(shape, _setup())
    _, gpu3, _ = estimate_zero3_model_states_mem_needs(shape.params, shape.largest_layer_params, 8, 1, False, False)
    assert zero3.model_states == pytest.approx(gpu3) and "DeepSpeed" in zero3.source
    zero2 = estimate_memory(shape, _setup(zero_stage=2))
    assert zero2.model_states == pytest.approx(estimate_zero2_model_states_mem_needs(shape.params, 8, 1, False)[1])
    offload = estimate_memory(shape, _setup(offload_optimizer=True, offload_params=True))
    assert offload.gradients == offload.optimizer == 0 and offload.cpu_per_node > 18 * shape.params
    full = estimate_memory(shape, _setup(fused_lm_head=False)).logits
    assert full == 16384 * 152064 * (2 + 8) and estimate_memory(shape, _setup()).logits == 4096 * 32768 * 4 * 3


def test_limo_on_one_node_of_80gb_gets_a_verdict():
    report = plan(compose("limo", ["num_gpus=8", "num_nodes=1"]))
    assert "1 node(s) x 8 GPU(s), ZeRO stage 3" in report and "32.76B parameters" in report
    verdicts = {line.split("  ")[1].strip(): line for line in report.splitlines() if "GiB  " in line}
    # 18 bytes/param over 8 GPUs is 68.7 GiB of model states before any activation: as written it does not fit.
    assert "does NOT fit" in verdicts["recipe as written"]
    assert "fits" in verdicts["ZeRO-3 + CPU offload"] and "NOT" not in verdicts["ZeRO-3 + CPU offload"]
    assert "verdict: does NOT fit as written" in report and "options that fit: " in report
    assert "fits" in verdicts["recipe on 2 nodes"] and "NOT" not in verdicts["recipe on 2 nodes"]
    two_nodes = plan(compose("limo", ["num_gpus=8", "num_nodes=2"]))
    assert "verdict: fits as written" in two_nodes


def test_lora_and_fp32_use_parameter_dtype_states():
    shape = ModelShape(0, 512, 1536, 20, 8, 2, 32000, True)
    shape = ModelShape(**{**shape.__dict__, "params": count_params(shape)})
    fp32 = estimate_memory(shape, _setup(num_gpus=1, zero_stage=0, dtype_bytes=4, seq_len=512))
    assert fp32.model_states == 16 * shape.params
    lora = estimate_memory(shape, _setup(zero_stage=2, lora_params=1000))
    assert lora.weights == 2 * (shape.params + 1000), "frozen base + adapters, replicated under ZeRO-2"
    assert lora.optimizer == 2 * 2 * 1000 / 8 and lora.gradients == 2 * 1000 / 8


MEASURE = r"""
import ctypes, json, os, sys, threading, time
# Pages stay resident once touched (MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT: nothing is prefaulted), so no file page is
# dropped between the peak and the end. Where locking is not allowed, the measurement runs unlocked.
ctypes.CDLL(None, use_errno=True).mlockall(7)
import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

def status():
    fields = {}
    for line in open("/proc/self/status"):
        key, _, value = line.partition(":")
        if key in ("VmHWM", "RssAnon", "RssFile", "RssShmem"):
            fields[key] = int(value.split()[0]) * 1024
    return fields

seq, vocab = int(sys.argv[1]), int(sys.argv[2])
config = Qwen2Config(vocab_size=vocab, hidden_size=512, intermediate_size=1536, num_hidden_layers=20,
                     num_attention_heads=8, num_key_value_heads=2, tie_word_embeddings=True)
config._attn_implementation = "sdpa"
torch.manual_seed(0)
ids = torch.randint(vocab, (1, seq))
baseline = status()
sampled, running = [baseline["RssAnon"]], [True]

def sample():  # torch's kernels release the GIL: a 1 ms poll of the anonymous resident size sees every step
    while running[0]:
        sampled[0] = max(sampled[0], status()["RssAnon"])
        time.sleep(0.001)

poller = threading.Thread(target=sample, daemon=True)
poller.start()
model = Qwen2ForCausalLM(config)
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
for _ in range(2):
    model(input_ids=ids, labels=ids).loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
running[0] = False
poller.join()
end = status()
# Two lower bounds of the anonymous peak; the larger is the measurement. The high-water mark less the file-backed
# pages at the end bounds it because file pages only grow while locked; the poll bounds it directly.
from_hwm = end["VmHWM"] - end["RssFile"] - end["RssShmem"]
base = baseline["RssAnon"]
print(json.dumps({"measured": max(from_hwm, sampled[0]) - base, "from_hwm": from_hwm - base,
                  "polled": sampled[0] - base, "baseline": baseline, "end": end,
                  "params": sum(p.numel() for p in model.parameters())}))
"""


def _measure(repo_root, seq: int, vocab: int) -> dict:
    """One measuring process's peak growth of anonymous memory (the model, its gradients, optimizer states and
    activations), which is what the plan estimates; file-backed pages are the libraries' code. In two fresh-clone CI
    runs the whole-process high-water mark read 2.09-2.10 GiB where alone it reads 1.64-1.69, a cause not reproduced
    here (not load, threads, memory pressure, THP or a cold page cache): a failure prints the breakdown. The test
    takes the lower of two processes: noise only adds to a peak."""
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, str(seq), str(vocab)],
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_estimate_within_15_percent_of_measured_cpu_peak(repo_root):
    from transformers import Qwen2Config

    seq, vocab = 512, 32000
    measured = min((_measure(repo_root, seq, vocab) for _ in range(2)), key=lambda m: m["measured"])
    config = Qwen2Config(
        vocab_size=vocab,
        hidden_size=512,
        intermediate_size=1536,
        num_hidden_layers=20,
        num_attention_heads=8,
        num_key_value_heads=2,
        tie_word_embeddings=True,
    )
    shape = shape_from_hf_config(config)
    assert shape.params == measured["params"] and 50e6 <= shape.params <= 100e6
    setup = _setup(
        num_gpus=1, zero_stage=0, dtype_bytes=4, seq_len=seq, activation_checkpointing=False, fused_lm_head=False
    )  # the measured step is a plain forward with labels: full logits
    estimate = estimate_memory(shape, setup)
    assert estimate.activations > 0.25 * estimate.model_states, "the check must exercise activations, not only states"
    ratio = estimate.total / measured["measured"]
    read = f"estimate {gib(estimate.total):.2f} GiB vs measured {gib(measured['measured']):.2f}: {measured}"
    assert 0.85 <= ratio <= 1.15, read
