"""Checks that keep a matched value from being accepted when the sentence around it does not commit to it.

The value path of the grader (`eval.grading.grader`) takes a value out of a summary sentence and compares it with the
gold. A sentence can contain the gold's value and still not answer with it; these rules run after a match and
turn a ``correct`` into ``no_answer`` or ``incorrect``, never the other way, so they can only remove false
positives (and cost a miss where a rule is too broad: each is measured on the hand-labelled CHAMP sets).

- **No commitment** (``no_answer``): the sentence hedges ("further analysis is required", "it seems unlikely",
  "need to check", "necessary but not sufficient", "if and only if", "may"), names only the condition where an
  optimum is reached ("the minimum is achieved when one variable is zero"), or qualifies its value with
  exceptions ("0 for all n except ...") that the gold does not have.
- **Existence against a gold that denies it** (``incorrect``): "exactly one real zero, x = 0" for "0 (i.e., no
  real zeros)": the sentence asserts that something exists while the gold says nothing does.
- **Cases with other values** (``incorrect``): "0 when n is even, and n+1 when n is odd" for "0 is the only
  possible value": a sentence that splits into two or more cases answers more than the one value the gold
  states (a gold with cases of its own is left to the value rules).
- **Wrong modulus** (``incorrect``): a congruence answers with its residue only when its modulus is the one
  the problem asks for ("≡ 2 (mod 7)" for a question about mod 11).

Only summary sentences (at most `MAX_STATEMENT_CHARS`, at most three sentences, no boxed answer) are read for
hedges and existence: in a solution these words appear while cases are being weighed before the answer. All
patterns are plain regular expressions over the text; nothing is evaluated.
"""

from __future__ import annotations

import re

from eval.answers.extract import conditioned_value
from eval.grading.statements import CONSEQUENCE as _CONSEQUENCE
from eval.grading.statements import MAX_STATEMENT_CHARS, gold_kind, main_clause

_HEDGE = re.compile(
    r"\b(?:further (?:analysis|investigation|work|computation|calculation|checking|study|testing)"
    r"|(?:more|a (?:more )?(?:precise|careful|detailed|rigorous)) (?:analysis|computation|calculation|check)"
    r"|(?:we|one|you|i) (?:would |will )?(?:need|needs|have|has) to (?:check|determine|verify|compute|test"
    r"|analy[sz]e|examine|evaluate)|(?:need|needs) to be (?:checked|determined|verified|computed|tested)"
    r"|necessary but not sufficient|is required to (?:determine|confirm|verify|decide)"
    r"|(?:cannot|can ?not|could not|unable to) (?:be )?(?:definitively |directly |precisely )?(?:determined?"
    r"|decided?|concluded?|confirm(?:ed)?|say|known|found)"
    r"|not possible to (?:determine|say|decide|conclude)|not enough information|insufficient information"
    r"|(?:is|are) to be (?:determined|calculated|computed|found|checked)"
    r"|(?:is|are|remains?) (?:unclear|unknown|undetermined|inconclusive|uncertain)"
    r"|without (?:further|more|additional|explicit|actually|knowing|computing|calculating)"
    r"|it (?:seems|appears)|seems? (?:to|unlikely|likely)|unlikely|probably|presumably"
    r"|if and only if|only if|provided that|as long as|depend(?:s|ing)? on|may|might|possibly)\b",
    re.IGNORECASE,
)
# "The minimum value ... is achieved when ...": the sentence names where, not what.
_CONDITION_ONLY = re.compile(
    r"^(?P<head>.*?)\b(?:is|are|will be|can be)\s+(?:achieved|attained|reached|obtained|minimi[sz]ed|maximi[sz]ed"
    r"|occurs?)\s+(?:when|if|at|for|where|whenever)\b",
    re.IGNORECASE | re.DOTALL,
)
_EXCEPTIONS = re.compile(r"\b(?:except|unless|other than when|apart from when|with the exception)\b", re.IGNORECASE)
_EXISTS = re.compile(
    r"\b(?:exactly|only|precisely|at least)\s+(?:one|two|three|0*[1-9]\d*)\b"
    r"|\bthere (?:is|are|exists?) (?:a|an|one|0*[1-9]\d*)\b"
    r"|\b(?:has|have) (?:a|an|one|two|three|0*[1-9]\d*) (?:real|integer|positive|rational)?\s*(?:zero|root|solution)",
    re.IGNORECASE,
)
# a case of an answer: "when n is even", "if k is odd", "otherwise", "for odd n"
_CASE = re.compile(r"\b(?:when(?:ever)?|if|otherwise|for (?:odd|even|all other|other))\b", re.IGNORECASE)
# a value given for a case: "\(n+1\) when", "1 if", "0 otherwise" (not "which occurs when", "or when")
_VALUED_CASE = re.compile(
    r"(?<!\S)\S*[\d+\-^*/)}$]\S*\s+(?:when(?:ever)?|if|otherwise|for (?:odd|even|all other|other))\b", re.IGNORECASE
)
_BOXED = re.compile(r"\\(?:boxed|fbox)\b|final answer", re.IGNORECASE)
_SENTENCE_END = re.compile(r"[.!?](?:\s+|$)(?=[A-Z$\\]|$)")
_RELATIVE = re.compile(r"\b(?:for which|such that|that|which|where|whose|with)\b", re.IGNORECASE)
_MODULUS = re.compile(
    r"\\pmod\s*\{\s*(\d+)\s*\}|\\pmod\s*(\d+)|\(\s*(?:\\bmod|\\mod|mod|modulo)\s*(\d+)\s*\)"
    r"|\b(?:mod|modulo)\s+(\d+)\b",
    re.IGNORECASE,
)
_ASKED_MODULUS = re.compile(r"\b(?:mod|modulo|divided by)\s+(\d+)\b", re.IGNORECASE)
# A head that already states a value ("The minimum is 0 and is achieved when ..."): a verb or an equals sign.
_STATES = re.compile(r"\b(?:is|are|equals?|was|were)\b|=")


def _is_summary(response: str) -> bool:
    """A summary sentence or two: short, with no boxed answer (a short solution that boxes its answer weighs
    cases in words such as "if and only if" before it commits in the box)."""
    text = response.strip()
    if not 0 < len(text) <= MAX_STATEMENT_CHARS or _BOXED.search(text):
        return False
    return len(_SENTENCE_END.findall(text)) <= 2


def uncommitted(gold: str, response: str, problem: str | None = None) -> str | None:
    """Why a short response states no definite answer (a hedge, a condition only, exceptions), else None.
    A hedge word the problem itself uses ("a (possibly degenerate) triangle") restates it and does not count."""
    if not _is_summary(response):
        return None
    given = {m.group(0).lower() for m in _HEDGE.finditer((problem or "") + " " + gold)}
    if conditioned_value(response, problem):  # "if and only if k = -3" for "for what values of k": the answer
        given |= {"if and only if", "only if"}
    if gold_kind(gold) in ("none", "yesno"):  # "There is no such sequence, so a_1 cannot be determined"
        response = _CONSEQUENCE.sub("", response)
    hedge = next((m for m in _HEDGE.finditer(response) if m.group(0).lower() not in given), None)
    if hedge:
        return f"the sentence hedges ({hedge.group(0)!r}): no definite answer"
    condition = _CONDITION_ONLY.match(response)
    if condition and not _STATES.search(condition.group("head")):
        return "the sentence names where the optimum is reached, not its value"
    if _EXCEPTIONS.search(response) and not _EXCEPTIONS.search(gold) and "except" not in gold.lower():
        return "the sentence qualifies its value with exceptions the gold does not have"
    return None


def asserts_existence_against(gold: str, response: str) -> bool:
    """Whether a short response asserts that something exists while the gold (``No real zeros``, ``0 (i.e., no
    such values)``) says nothing does."""
    if not _is_summary(response) or gold_kind(gold) != "none":
        return False
    clause = _RELATIVE.split(main_clause(response))[0]  # "There are 0 values of n for which P has at least one"
    return bool(_EXISTS.search(clause)) and not re.search(r"\b(?:no|not|none|never)\b", clause, re.I)


def case_split(gold: str, response: str) -> str | None:
    """Why a short response answers by cases the gold does not have (two or more values each given for a case:
    "0 when n is even, and n+1 when n is odd"), else None; conditions on where one value occurs ("is 0, which
    occurs when ... or when ...") are not cases."""
    if not _is_summary(response) or _CASE.search(gold) or len(_VALUED_CASE.findall(main_clause(response))) < 2:
        return None
    return "the sentence answers by cases with other values; the gold states one"


def wrong_modulus(problem: str | None, answer: str | None) -> str | None:
    """Why a congruence answer does not answer the problem's modulus (None when it does or when unknown)."""
    if not problem or not answer:
        return None
    said = {next(g for g in m.groups() if g) for m in _MODULUS.finditer(answer)}
    asked = {m.group(1) for m in _ASKED_MODULUS.finditer(problem)}
    if len(said) != 1 or len(asked) != 1 or said == asked:
        return None
    return f"a congruence modulo {next(iter(said))}; the problem asks modulo {next(iter(asked))}"
