"""The loss language: the checker's allowlist (hostile spellings are rejected as unsafe, malformed code as
invalid), the interpreter's limits, validation as in the DiscoPOP paper, and the shipped proposals."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from limo.discovery.proposals import MalformedReply, parse_reply
from limo.discovery.validation import validate
from limo.training.loss_language import (
    MAX_ELEMENTS,
    InvalidProgram,
    ResourceLimit,
    UnsafeProgram,
    check_program,
)

REPO = Path(__file__).resolve().parent.parent
ARGS = "policy_chosen_logps, policy_rejected_logps, reference_chosen_logps, reference_rejected_logps"
LOGITS = (
    "    logits = (policy_chosen_logps - policy_rejected_logps)"
    " - (reference_chosen_logps - reference_rejected_logps)\n"
)


def loss(body: str, name: str = "loss") -> str:
    """A function of the agreed signature with ``body`` (indented by 4) after the DPO logits line."""
    return f"def {name}({ARGS}):\n{LOGITS}" + "".join(f"    {line}\n" for line in body.strip("\n").splitlines())


def batch(
    values=(
        (-10.0, -12.0, -11.0, -9.0),
        (-14.0, -11.0, -12.0, -13.0),
        (-11.0, -12.0, -10.0, -10.0),
        (-13.0, -12.0, -11.0, -12.0),
    ),
):
    import torch

    chosen, rejected, ref_chosen, ref_rejected = (torch.tensor(v) for v in values)
    return chosen.requires_grad_(), rejected.requires_grad_(), ref_chosen, ref_rejected


def test_dpo_program_computes_the_dpo_loss_by_hand():
    program = check_program(loss("return -F.logsigmoid(beta * logits)"))
    chosen, rejected, ref_chosen, ref_rejected = batch()
    values = program(chosen, rejected, ref_chosen, ref_rejected, beta=0.1)
    for i in range(4):
        z = 0.1 * ((chosen[i] - rejected[i]) - (ref_chosen[i] - ref_rejected[i])).item()
        assert values[i].item() == pytest.approx(math.log(1 + math.exp(-z)), rel=1e-6)
    values.mean().backward()
    assert chosen.grad is not None and bool((chosen.grad < 0).all())  # lowering the loss raises the chosen


def test_paper_method_form_with_self_beta_and_imports_is_accepted():
    code = (
        "import torch\nimport torch.nn.functional as F\n\n"
        f"def dpo(self, {ARGS}) -> torch.FloatTensor:\n"
        '    """The paper writes losses as trainer methods."""\n'
        f"{LOGITS}"
        "    return -F.logsigmoid(self.beta * logits)\n"
    )
    program = check_program(code)
    assert program.has_self and program.name == "dpo"
    assert program(*batch(), beta=0.05).shape == (4,)


def test_a_trailing_beta_argument_gets_the_runs_beta_and_a_returned_tuple_counts_by_its_loss():
    code = f"def dpo({ARGS}, beta=0.5):\n{LOGITS}    losses = -F.logsigmoid(beta * logits)\n    return losses, logits"
    program = check_program(code)
    expected = check_program(loss("return -F.logsigmoid(beta * logits)"))
    assert program(*batch(), beta=0.05).tolist() == expected(*batch(), beta=0.05).tolist()


@pytest.mark.parametrize(
    "construct",
    [
        "b = 0\nfor i in range(3):\n    b = b + i\n    if b > 2:\n        break",
        "x = torch.where(logits > 0, logits, torch.zeros_like(logits))",
        "x = (logits > 0) & (logits < 5)",
        "x = torch.quantile(logits.detach(), 0.5)",
        "m = torch.max(logits, dim=0)[0]",
        "x = torch.clamp(logits, min=-5.0, max=5.0) if beta > 0 else logits",
        "x: float = math.log(2.0) + torch.pi",
        "a, b = logits.chunk(2) if False else (logits, logits)",
        "x = (logits < 0).to(torch.float32) + torch.tensor(1.0, device=logits.device).type_as(logits)",
        "assert logits.shape == policy_chosen_logps.shape, 'shapes differ'\nprint(logits.mean(), sep=' ')",
    ],
)
def test_allowed_constructs_evaluate(construct):
    program = check_program(loss(construct + "\nreturn -F.logsigmoid(beta * logits)"))
    assert program(*batch(), beta=0.05).shape == (4,)


# Hostile spellings: every one must be refused before anything runs (status rejected_unsafe).
HOSTILE = {
    "import os": "import os\n\n" + loss("os.system('touch /tmp/x')\nreturn logits"),
    "import inside": loss("import subprocess\nreturn logits"),
    "from import": "from os import system\n\n" + loss("return logits"),
    "relative import": "from . import secrets\n\n" + loss("return logits"),
    "importlib alias": "import importlib as F\n\n" + loss("return logits"),
    "torch submodule": "import torch.utils\n\n" + loss("return logits"),
    "__import__": loss("__import__('os').system('id')\nreturn logits"),
    "getattr": loss("g = getattr(torch, 'os')\nreturn logits"),
    "eval": loss("eval('1 + 1')\nreturn logits"),
    "exec": loss("exec('import os')\nreturn logits"),
    "compile": loss("compile('1', 'x', 'eval')\nreturn logits"),
    "open": loss("open('/tmp/x', 'w').write('x')\nreturn logits"),
    "globals": loss("globals()\nreturn logits"),
    "class bases": loss("x = ().__class__.__bases__[0].__subclasses__()\nreturn logits"),
    "tensor class": loss("x = logits.__class__\nreturn logits"),
    "torch dict": loss("x = torch.__dict__\nreturn logits"),
    "private attribute": loss("x = torch._C\nreturn logits"),
    "grad_fn": loss("x = logits.grad_fn.next_functions\nreturn logits"),
    "torch.load": loss("x = torch.load('/etc/passwd')\nreturn logits"),
    "torch.save": loss("torch.save(logits, '/tmp/x')\nreturn logits"),
    "torch.ops": loss("x = torch.ops\nreturn logits"),
    "numpy escape": loss("x = logits.numpy()\nreturn logits"),
    "string method": loss("x = '{0.__class__}'.format(logits)\nreturn logits"),
    "while": loss("while True:\n    logits = logits * 1.0\nreturn logits"),
    "non-literal range": loss("for i in range(10 ** 9):\n    logits = logits + 1\nreturn logits"),
    "huge range": loss("for i in range(100000):\n    logits = logits + 1\nreturn logits"),
    "nested loops": loss("for i in range(100):\n    for j in range(100):\n        logits = logits + 1\nreturn logits"),
    "size constructor": loss("x = torch.ones(1000000, 1000000)\nreturn logits"),
    "expand": loss("x = logits.expand(100000, 100000)\nreturn logits"),
    "out keyword": loss("torch.exp(logits, out=policy_chosen_logps)\nreturn logits"),
    "new tensor": loss("x = logits.new_ones(10 ** 9)\nreturn logits"),
    "default argument": f"def loss({ARGS}, beta=__import__('os')):\n    return policy_chosen_logps\n",
    "decorator call": "@torch.jit.script\n" + loss("return logits"),
    "double star": loss("x = torch.clamp(logits, **{'min': 0})\nreturn logits"),
    "attribute assignment": loss("logits.data = logits\nreturn logits"),
    "with": loss("with open('/tmp/x') as f:\n    pass\nreturn logits"),
    "deep nesting": loss("x = " + "-" * 200 + "logits\nreturn logits"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_spellings_are_rejected_as_unsafe(name):
    with pytest.raises(UnsafeProgram) as caught:
        check_program(HOSTILE[name])
    assert caught.value.status == "rejected_unsafe" and str(caught.value)


MALFORMED = {
    "lambda": loss("f = lambda v: v\nreturn logits"),
    "comprehension": loss("x = [v for v in logits]\nreturn logits"),
    "try": loss("try:\n    pass\nexcept:\n    pass\nreturn logits"),
    "global": loss("global y\nreturn logits"),
    "delete": loss("del logits\nreturn 0"),
    "walrus": loss("y = (x := logits)\nreturn logits"),
    "class": "class Helper:\n    pass\n\n" + loss("return logits"),
    "async": f"async def loss({ARGS}):\n    return 0\n",
    "long string": loss("x = '" + "a" * 100 + "'\nreturn logits"),
    "bytes": loss("x = b'abc'\nreturn logits"),
    "f-string": loss("x = f'{logits}'\nreturn logits"),
    "star args": loss("x = torch.exp(*[logits])\nreturn logits"),
    "item assignment": loss("policy_chosen_logps[0] = 0.0\nreturn logits"),
    "rebind torch": loss("torch = 1\nreturn logits"),
    "decorator": "@torch.exp\n" + loss("return logits"),
    "empty": "",
    "syntax error": "def loss(:\n  return",
    "no function": "x = 1",
    "two functions": "def helper(x):\n    return x\n\n" + loss("return helper(logits)"),
    "nested function": loss("def inner(v):\n    return v\nreturn inner(logits)"),
    "top-level statement": "y = 2\n\n" + loss("return logits"),
    "wrong signature": "def loss(chosen, rejected):\n    return chosen - rejected\n",
    "defaults": f"def loss({ARGS}, scale=2.0):\n    return policy_chosen_logps\n",
    "no return": loss("x = logits"),
    "too long": loss("x = 1\n" * 5000 + "return logits"),
}


def test_hostile_code_that_is_also_malformed_is_reported_as_unsafe():
    code = "class Helper:\n    pass\n\nimport os\n\n" + loss("f = lambda: os.system('id')\nreturn logits")
    with pytest.raises(UnsafeProgram, match="import of 'os'"):
        check_program(code)


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_code_is_invalid(name):
    with pytest.raises(InvalidProgram) as caught:
        check_program(MALFORMED[name])
    assert caught.value.status == "invalid"


@pytest.mark.parametrize(
    ("body", "limit"),
    [
        ("x = logits\nfor step in range(8):\n    x = (x[:, None] * x[None, :]).flatten()\nreturn x", "elements"),
        ("x = 3\nfor step in range(100):\n    x = x * x\nreturn logits", "2\\*\\*53"),
        (
            "x = logits\nfor i in range(1000):\n"
            + ("    x = " + " + ".join(["x"] * 30) + " - x * 29\n") * 4
            + "return x",
            "steps",
        ),
        (
            "m = (logits > -1e9).cumsum(0)\nx = (logits[:, None] * logits[None, :])\nfor i in range(3):\n"
            "    x = x[m]\nreturn logits",
            "gather",
        ),
    ],
)
def test_resource_bombs_hit_the_interpreter_limits(body, limit):
    import torch

    program = check_program(loss(body))
    big = [torch.randn(1024, dtype=torch.float32) for _ in range(4)]
    with pytest.raises(ResourceLimit, match=limit) as caught:
        program(*big, beta=0.05)
    assert caught.value.status == "rejected_unsafe"
    assert MAX_ELEMENTS < 1 << 24  # the limit is what keeps these from allocating


def test_float_overflow_is_an_error_not_a_hang():
    program = check_program(loss("x = 10 ** 10 ** 10\nreturn logits"))
    with pytest.raises(InvalidProgram, match="Overflow"):
        program(*batch(), beta=0.05)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("return torch.log(beta * logits)", "not finite"),
        ("return logits[:, None] * logits[None, :]", "shape"),
        ("return 1.0", "must return a tensor"),
        ("return reference_chosen_logps - reference_rejected_logps", "does not depend on the policy"),
        ("return -F.logsigmoid(-beta * logits)", "does not prefer the chosen answer"),
        ("return torch.sqrt(-torch.ones_like(logits)) * 0 + logits", "not finite"),
        ("return torch.exp(-100 * logits)", "not finite"),
    ],
)
def test_validation_rejects_like_the_paper(body, reason):
    with pytest.raises(InvalidProgram, match=reason):
        validate(check_program(loss(body)), beta=0.05, seed=0)


def shipped(name: str) -> list[dict]:
    return [json.loads(line) for line in (REPO / "recipes/data/discover" / name).read_text().splitlines()]


def test_archive_seed_and_paper_losses_pass_validation():
    programs = [row["code"] for row in shipped("seed_archive.jsonl")]
    paper = ("LRML", "PADLL", "AQFL", "AQL", "DBAQL", "CELL", "PFL")
    replies = [parse_reply(row["text"]) for row in shipped("demo_proposals.jsonl") if _parses(row["text"])]
    programs += [p.code for p in replies if p.name in paper]
    assert len(programs) == 4 + len(paper)
    for code in programs:
        summary = validate(check_program(code), beta=0.05, seed=1)
        assert summary["loss_when_chosen_better"] < summary["loss_when_chosen_worse"]


def test_demo_proposals_get_the_expected_verdicts():
    """Each recorded proposal's fate before any training: the paper's losses pass, the rest fail with a reason."""
    expected = {
        "LRML": "valid",
        "PADLL": "valid",
        "AQFL": "valid",
        "AQL": "valid",
        "DBAQL": "valid",
        "CELL": "valid",
        "PFL": "valid",
        "shell": "rejected_unsafe",
        "introspect": "rejected_unsafe",
        "log_gap": "invalid",
        "outer_bomb": "rejected_unsafe",
        "helper": "invalid",
        "getattr_os": "rejected_unsafe",
        "import_builtin": "rejected_unsafe",
        "spin": "rejected_unsafe",
        "inverted_dpo": "invalid",
    }
    seen, malformed = {}, 0
    for row in shipped("demo_proposals.jsonl"):
        try:
            proposal = parse_reply(row["text"])
        except MalformedReply:
            malformed += 1
            continue
        try:
            validate(check_program(proposal.code), beta=0.05, seed=0)
            seen[proposal.name] = "valid"
        except (InvalidProgram, UnsafeProgram) as err:
            seen[proposal.name] = err.status
    assert seen == expected and malformed == 2


def _parses(text: str) -> bool:
    try:
        parse_reply(text)
        return True
    except MalformedReply:
        return False


@pytest.mark.parametrize(
    "body",
    [
        "x = logits\nx += torch.ones_like(logits)[:2]\nreturn x",  # shape error in a statement, not an expression
        "x = logits\nassert x.sum() > 1e9\nreturn x",
        "a, b = logits\nreturn a",
    ],
)
def test_errors_inside_statements_are_the_programs_errors(body):
    with pytest.raises(InvalidProgram):
        check_program(loss(body))(*batch(), beta=0.05)


# Valid proposals as models write them: local constants (beta among them, shadowing the run's), tuple and
# list targets, a shadowed builtin. Ordinary Python accepts each; so does the language.
LOCAL_NAMES = {
    "beta constant": (
        "import torch\nimport torch.nn.functional as F\n\n"
        f"def tempered_dpo({ARGS}):\n"
        f"{LOGITS}"
        "    beta = 0.05\n"
        "    tau = 0.5\n"
        "    return -F.logsigmoid(beta * logits / tau)\n"
    ),
    "augmented beta": loss("beta *= 2.0\nreturn -F.logsigmoid(beta * logits)"),
    "self form with beta": (
        f"def scaled(self, {ARGS}):\n{LOGITS}"
        "    beta = self.beta * 0.5\n"
        "    margin, scale = 0.1, 2.0\n"
        "    return -F.logsigmoid(beta * scale * (logits - margin))\n"
    ),
    "list and nested targets": loss(
        "[alpha, gamma] = [0.3, 2.0]\n(a, b), c = (1.0, 2.0), 3.0\n"
        "return -alpha * F.logsigmoid(beta * logits) * gamma + (a + b - c) * 0.0"
    ),
    "shadowed builtin": loss("max = 5.0\nreturn -F.logsigmoid(beta * torch.clamp(logits, min=-max, max=max))"),
}


@pytest.mark.parametrize("name", sorted(LOCAL_NAMES))
def test_assignments_to_local_names_are_valid(name):
    program = check_program(LOCAL_NAMES[name])
    assert program(*batch(), beta=0.1).shape == (4,)


def test_a_local_beta_is_the_one_the_loss_uses():
    local = check_program(loss("beta = 0.05\nreturn -F.logsigmoid(beta * logits)"))
    reference = check_program(loss("return -F.logsigmoid(0.05 * logits)"))
    assert local(*batch(), beta=0.9).tolist() == reference(*batch(), beta=0.9).tolist()
