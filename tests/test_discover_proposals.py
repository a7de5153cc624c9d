"""Reading the proposer's raw replies (lenient about the wrapping, strict about what must be there), the
conversation rebuilt from the archive, and file-safe candidate names."""

from __future__ import annotations

import json

import pytest

from limo.discovery.proposals import MalformedReply, PromptTexts, build_messages, parse_reply, slug

CODE = "def f(a, b, c, d):\n    return a - b"
PROPOSAL = {"thought": "try it", "name": "diff", "code": CODE}


@pytest.mark.parametrize(
    "text",
    [
        json.dumps(PROPOSAL),
        "Here is the next one:\n```json\n" + json.dumps(PROPOSAL, indent=2) + "\n```\nGood luck.",
        "I think this works. " + json.dumps(PROPOSAL) + " It should be stable.",
        '{"thought": "try it", "name": "diff", "code": "' + CODE + '"}',  # raw newlines inside the string
        "{not json} then " + json.dumps(PROPOSAL),
    ],
)
def test_replies_are_read_whatever_the_wrapping(text):
    proposal = parse_reply(text)
    assert (proposal.name, proposal.thought, proposal.code) == ("diff", "try it", CODE)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("I would try a focal loss next.", "no JSON object"),
        (json.dumps({"thought": "x", "name": "y"}), "no 'code' field"),
        (json.dumps({"code": 42}), "non-empty string"),
        (json.dumps({"code": "   "}), "non-empty string"),
        ("x" * 300_000, "characters long"),
        ("[" * 100_000, "no JSON object"),
    ],
)
def test_malformed_replies_are_refused_with_a_reason(text, reason):
    with pytest.raises(MalformedReply, match=reason):
        parse_reply(text)


def test_missing_name_and_thought_are_empty_and_bounded():
    proposal = parse_reply(json.dumps({"code": CODE, "name": "n" * 1000}))
    assert proposal.thought == "" and len(proposal.name) == 100


@pytest.mark.parametrize(
    ("name", "expected"),
    [("../../etc/passwd", "etc_passwd"), ("LRML", "LRML"), ("", "candidate"), ("...", "candidate")],
)
def test_slug_never_yields_a_path(name, expected):
    assert slug(name, "candidate") == expected


def test_conversation_lists_the_archive_then_recent_proposals_with_feedback():
    texts = PromptTexts(
        system="SYS {archive}",
        first_user="Archive:\n{archive}\nNext.",
        feedback_valid="Fitness: {fitness}. Please generate the next one.",
        feedback_invalid="Code not valid. Error: {reason}. Please generate the next one.",
        history=2,
        shown_best=1,
    )
    rows = [
        {"generation": 0, "name": "dpo", "code": "A", "status": "valid", "fitness": 0.5},
        {"generation": 1, "name": "one", "code": "B", "status": "valid", "fitness": 0.7},
        {"generation": 2, "name": "two", "code": "C", "status": "invalid", "reason": "bad shape", "fitness": None},
        {"generation": 3, "name": "three", "code": "D", "status": "valid", "fitness": 0.6},
    ]
    messages = build_messages(texts, rows, {1: "reply one", 2: "reply two", 3: "reply three"})
    assert messages[0] == {"role": "system", "content": "SYS {archive}"}  # the system text is not formatted
    listed = [json.loads(line) for line in messages[1]["content"].splitlines()[1:-1]]
    assert [item["name"] for item in listed] == ["dpo", "one"]  # the seed, then the best (shown_best=1)
    assert [m["content"] for m in messages[2:]] == [
        "reply two",
        "Code not valid. Error: bad shape. Please generate the next one.",
        "reply three",
        "Fitness: 0.6000. Please generate the next one.",
    ]


@pytest.mark.parametrize(
    "code",
    ["```python\n" + CODE + "\n```", "```\n" + CODE + "```", "\n    def f(a, b, c, d):\n        return a - b\n"],
)
def test_a_fence_or_indentation_around_the_code_is_removed(code):
    assert parse_reply(json.dumps({"code": code})).code.strip() == CODE
