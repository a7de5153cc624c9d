"""MAmmoTH2 extraction and refinement: JSON parsing and its reasons, bounded retries, and a real model behind
a real loopback OpenAI-compatible server (the tiny model overfit to emit the JSON for two pages)."""

from __future__ import annotations

import json

import pytest

from curation.methods.mammoth2.extract import (
    ExtractOptions,
    MalformedOutput,
    QAPair,
    extract_documents,
    extract_messages,
    parse_pairs,
)
from curation.methods.mammoth2.refine import REFINE_INSTRUCTION, RefineOptions, parse_refined, refine_pairs
from eval.backends.base import Generation, GenerationRequest
from eval.backends.generation import GenerationOptions


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("I could not find any pairs.", "no JSON object or list"),
        ('Here you go: [{"question": "What is 2+2?", "answer": "4"', "invalid JSON"),
        ('[{"question": "What is 2+2?"}]', "item 0: field 'answer' missing"),
        ('[{"question": "Why?", "answer": 4}]', "item 0: field 'answer' missing or not a non-empty string"),
        ('["just a string"]', "item 0: expected an object, got str"),
        ("x" * 100_001, "output longer than"),
    ],
)
def test_malformed_extraction_output_names_the_reason(text, reason):
    with pytest.raises(MalformedOutput, match=reason):
        parse_pairs(text)


def test_fenced_lists_and_single_objects_parse_and_json_is_never_evaluated():
    fenced = 'Sure!\n```json\n[{"question": "Find x if 2x = 8.", "answer": "x = 4"}]\n```'
    assert parse_pairs(fenced) == [("Find x if 2x = 8.", "x = 4")]
    assert parse_pairs('{"question": "__import__(\'os\')", "answer": "no"}') == [("__import__('os')", "no")]
    assert parse_pairs("[]") == []


def test_refined_answer_must_end_in_a_boxed_answer():
    with pytest.raises(MalformedOutput, match="no \\\\boxed"):
        parse_refined('{"question": "Find x.", "answer": "x = 4"}')
    assert parse_refined('{"question": "Find x.", "answer": "So \\\\boxed{4}."}') == ("Find x.", "So \\boxed{4}.")


class Scripted:
    """A backend that answers each request id from a script (a stand-in for model output in unit tests)."""

    name = "scripted"

    def __init__(self, script: dict[str, str]):
        self.script = script
        self.seen: list[GenerationRequest] = []

    def generate(self, requests):
        self.seen.extend(requests)
        return [Generation(r.id, self.script.get(r.id, "no json here"), "stop", 3) for r in requests]


def test_retries_are_bounded_use_fresh_seeds_and_every_document_is_accounted_for():
    docs = [{"id": "a", "text": "page a"}, {"id": "b", "text": "page b"}, {"id": "c", "text": "page c"}]
    script = {
        "extract:a#0": "[{",  # malformed first, valid second
        "extract:a#1": '[{"question": "Q1?", "answer": "A1"}, {"question": "Q2?", "answer": "A2"}]',
        "extract:c#0": "[]",  # well-formed, no pair: rejected without a retry
    }
    backend = Scripted(script)
    pairs, rejects = extract_documents(docs, backend, ExtractOptions(max_attempts=3, num_few_shot=1), seed=0)
    assert [p.id for p in pairs] == ["a/q0", "a/q1"] and pairs[0].provenance["extract_attempts"] == 2
    by_id = {r["id"]: r for r in rejects}
    assert by_id["b"]["code"] == "malformed_output" and by_id["b"]["attempts"] == 3
    assert by_id["b"]["reason"].startswith("malformed extraction after 3 attempts: no JSON object")
    assert by_id["c"]["code"] == "no_pair" and by_id["c"]["attempts"] == 1
    assert len({p.doc_id for p in pairs}) + len(rejects) == len(docs)
    seeds = {r.seed for r in backend.seen if r.meta["doc_id"] == "b"}
    assert len(seeds) == 3 and len(backend.seen) == 3 + 2 + 1  # b retried twice, a once, c never
    assert len(backend.seen[0].messages) == 3  # one demonstration (user + assistant) before the page


PAGE_OK = "Forum > Algebra\nHow do I solve 2x = 8?\nReply: divide by 2, so x = 4."
PAGE_BAD = "Release notes 1.2: fixed a crash."
EXTRACTED = '[{"question": "Solve 2x = 8.", "answer": "divide by 2, so x = 4."}]'
REFINED = '{"question": "Solve 2x = 8.", "answer": "Step 1: Divide both sides by 2. x = 4. \\\\boxed{4}"}'


@pytest.fixture(scope="module")
def served_model(tmp_path_factory):
    """The tiny model overfit on extraction / refinement prompts, behind the loopback chat server on 127.0.0.1."""
    from eval.backends.hf import HFBackend
    from eval.backends.server import start_server
    from limo.models.tiny import build_overfit_model

    extract_prompt = extract_messages(PAGE_OK, num_few_shot=0, max_doc_chars=10_000)[-1]["content"]
    bad_prompt = extract_messages(PAGE_BAD, num_few_shot=0, max_doc_chars=10_000)[-1]["content"]
    refine_prompt = REFINE_INSTRUCTION + "Question: Solve 2x = 8.\nAnswer: divide by 2, so x = 4."
    pairs = [(extract_prompt, EXTRACTED), (bad_prompt, "Sorry, nothing to extract."), (refine_prompt, REFINED)]
    model_dir = build_overfit_model(tmp_path_factory.mktemp("mammoth2") / "model", pairs, steps=200)
    server = start_server(HFBackend(str(model_dir), batch_size=1), "overfit")
    yield server
    server.shutdown()


@pytest.mark.slow
def test_extract_and_refine_through_the_loopback_openai_server(served_model):
    from eval.backends.openai import OpenAIBackend

    backend = OpenAIBackend(served_model.base_url, "overfit", concurrency=1)
    greedy = GenerationOptions(temperature=0.0, max_new_tokens=96)
    docs = [{"id": "ok", "text": PAGE_OK}, {"id": "bad", "text": PAGE_BAD}]
    extract = ExtractOptions(generator=greedy, max_attempts=2, num_few_shot=0)
    pairs, rejects = extract_documents(docs, backend, extract, seed=0)
    assert [(p.question, p.answer) for p in pairs] == [tuple(json.loads(EXTRACTED)[0].values())]
    assert [(r["id"], r["code"], r["attempts"]) for r in rejects] == [("bad", "malformed_output", 2)]
    assert "no JSON object or list in output" in rejects[0]["reason"]
    refined, refine_rejects = refine_pairs(pairs, backend, RefineOptions(generator=greedy, max_attempts=1), seed=0)
    assert refine_rejects == [] and len(refined) == 1
    assert refined[0].answer.endswith("\\boxed{4}") and refined[0].provenance["extracted"]["answer"] == pairs[0].answer


@pytest.mark.slow
def test_a_pair_whose_refinement_stays_malformed_is_rejected_not_raised(served_model):
    from eval.backends.openai import OpenAIBackend

    backend = OpenAIBackend(served_model.base_url, "overfit", concurrency=1)
    unknown = QAPair("doc/q0", "doc", "What is the capital of France?", "Paris")
    refined, rejects = refine_pairs([unknown], backend, RefineOptions(GenerationOptions(max_new_tokens=48), 2), seed=0)
    assert refined == [] and rejects[0]["id"] == "doc/q0" and rejects[0]["stage"] == "refine"
    assert rejects[0]["reason"].startswith("malformed refinement after 2 attempts")
