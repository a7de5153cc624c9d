"""Worded answers judged as statements: a one-sentence summary against a yes/no, non-existence or worded gold.

CHAMP's models end with a sentence such as "The product is greater than 1/15" (gold ``Yes``) or "There are
no integer solutions to the equation" (gold ``No possible solutions``). No value can be extracted from such
a sentence; it has to be read against the question. The rules, each refusing rather than guessing:

- **Yes/no golds** (``Yes``, ``No``, ``Yes, and the sequence is ...``) need the problem text. The question is
  the problem's last sentence ending in "?" (else its first sentence opening with is/are/does/can/...), cut
  before ", and if so"; parentheticals such as "(i.e., ...)" are dropped. A response that opens with
  Yes/No answers directly. Otherwise the response must restate the question: at least half of the
  question's content words (and numbers) appear in it, counted after dropping a leading "If ..., then".
  Its polarity is the parity of negations ("not", "no", "cannot", "impossible", "≠", ...) in its main
  clause (cut before "because", "since", ", which", ...), plus one for each antonym it uses where the
  question used the word ("less" for "greater", "decreasing" for "increasing", "composite" for "prime"),
  minus the negations of the question. Hedged sentences ("cannot be determined", "if and only if", "as
  long as", "may") answer nothing.
- **Non-existence golds** (``No integer solutions``, ``The sequence does not exist``, ``It is not
  possible``, ``0 (i.e., no such values)``): the response's main clause must deny existence ("there are no",
  "there does not exist", "has no", "is not possible", "does not have a finite limit") of something the
  gold names (solutions, sequence, limit, ...), and must not single anything out ("only", "except",
  "other", "but").
- **Worded golds** (``Monotonically increasing``, ``Always greater than 20``, ``At least 1 number``,
  ``x(n)<y(n-1) for all n≥3``): every content token of the gold (words, numbers, comparison words for
  ``<``/``≥``) appears in the response; number words count as digits ("one" is 1). A negation or an
  antonym of a gold word that the gold lacks refuses ("neither monotonically increasing nor decreasing").

Only short responses qualify (a summary sentence, at most 600 characters): in a long solution the words
also appear while options are being weighed.
"""

from __future__ import annotations

import re
from functools import lru_cache

from eval.grading.normalize import NUMBER_WORDS

MAX_STATEMENT_CHARS = 600
_NUMBER_WORDS = {**NUMBER_WORDS, "once": "1", "twice": "2", "single": "1"}
_NEGATIONS = {
    "not",
    "no",
    "never",
    "none",
    "cannot",
    "neither",
    "impossible",
    "nothing",
    "nowhere",
}
_CONTRACTED_NOT = re.compile(r"\b(\w+)n't\b")
# Word pairs whose swap turns a statement into its opposite; matched on stems (see `_stem`).
_ANTONYMS = (
    ("greater", "less"),
    ("greater", "smaller"),
    ("larger", "smaller"),
    ("larger", "less"),
    ("more", "fewer"),
    ("more", "less"),
    ("increas", "decreas"),
    ("above", "below"),
    ("prime", "composite"),
    ("finite", "infinite"),
    ("bounded", "unbounded"),
    ("converg", "diverg"),
    ("even", "odd"),
    ("rational", "irrational"),
    ("periodic", "aperiodic"),
    ("positive", "negative"),
    ("always", "sometimes"),
    ("true", "false"),
    ("exist", "nonexist"),
    ("all", "some"),
)
_ANTONYM_PAIRS = _ANTONYMS + tuple((b, a) for a, b in _ANTONYMS)
_NOT_ALWAYS = re.compile(r"\bnot (?:always|necessarily)\b", re.IGNORECASE)
_NOT_ALWAYS_ASKED = re.compile(r"\b(?:always|necessarily)\b", re.IGNORECASE)
_CONDITIONAL = re.compile(r"\b(?:if|when|unless|whenever|depending)\b", re.IGNORECASE)
_SYMBOL_WORDS = (("≥", " greater equal "), (">=", " greater equal "), ("≤", " less equal "), ("<=", " less equal "))
_STOPWORDS = set(
    "a an the is are was were be been of to in on for with by at as it its this that these those there their "
    "then than and or if so such which what whether do does did can could must will would should has have had "
    "we you they he she i me my our us from into any all some each every also only just very value values".split()
)
_KEEP_SHORT = {"all", "no", "not"}
_HEDGES = re.compile(
    r"\b(?:if and only if|only if|as long as|provided that|depends|depending|may|might|maybe|possibly|unclear"
    r"|unknown|undetermined|inconclusive|without (?:further|more|additional|knowing)|not enough"
    r"|cannot (?:be )?(?:definitively |directly |easily )?(?:determined?|confirm(?:ed)?|conclude|say|decided?|known)"
    r"|can ?not (?:be )?(?:determined|confirmed)|not (?:known|clear|certain)|theoretically|conjectur\w*"
    r"|hypothesi[sz]\w*)\b",
    re.IGNORECASE,
)
_CONSEQUENCE_SPLIT = re.compile(
    r",?\s+(?:and\s+)?(?:so|thus|hence|therefore|consequently)\b(?!\s+that\b),?", re.IGNORECASE
)
# A consequence drawn after the claim: "There is no such sequence, so the smallest a_1 cannot be determined".
CONSEQUENCE = re.compile(
    r",?\s+(?:and\s+)?(?:so|thus|hence|therefore|consequently)\b(?!\s+that\b).*$", re.IGNORECASE | re.DOTALL
)
# A clause giving the reason, not the claim; "which"/"where" clauses stay ("is 3.16, which is less than 30").
_SUBORDINATE = re.compile(
    r"(?:,\s*|\s+)(?:because|since|as (?:it|they|the|each|every|there|this|shown|a result|\w+ing\b)|due to"
    r"|given that"
    r"|so that|for example|e\.g\.|therefore|thus|hence|i\.e\.)\b.*$|[;:].*$",
    re.IGNORECASE | re.DOTALL,
)
# ``x_n \neq 0`` / ``x_n = 0``: a relation between two written sides, compared across question and answer.
_RELATION_ATOM = re.compile(r"([\w^{}()+\-*/.\\]+)\s*(=|≠|!=)\s*([\w^{}()+\-*/.\\]+)")
_LEADING_IF = re.compile(r"^\s*if\b[^,]*,\s*(?:then\s+)?", re.IGNORECASE)
_QUESTION_START = re.compile(r"^(?:is|are|does|do|can|could|must|will|would|has|have|should|did|was|were)\b", re.I)
_ASKING_CLAUSE = re.compile(r"(?<=,)\s*(?:is|are|does|do|can|could|must|will|would|has|have|should)\b", re.I)
_IF_SO = re.compile(r"(?:,?\s*and\s+)?,?\s*if so\b.*$", re.IGNORECASE | re.DOTALL)
_EXPLANATION = re.compile(r"\((?:i\.e\.|e\.g\.|that is|namely)[^()]*\)", re.IGNORECASE)
_DENIES_EXISTENCE = re.compile(
    r"\bthere (?:are|is|exist|exists) no\b|\bthere (?:does|do) not exist\b|\bno \w+(?: \w+){0,3} exists?\b"
    r"|\b(?:has|have) no\b|\bdo(?:es)? not (?:have|exist|contain|possess)\b|\bcannot (?:exist|be found)\b"
    r"|\b(?:is|are) not possible\b|\bimpossible\b|\bnone\b|\bno (?:such|solutions?|integers?|positive|real"
    r"|values?|primes?|prime|sequences?|ways?|pairs?|roots?|numbers?)\b|\bfails? to exist\b",
    re.IGNORECASE,
)
_SINGLES_OUT = re.compile(r"\b(?:only|except|besides|other|apart|but)\b", re.IGNORECASE)
_LIMIT_DIVERGES = re.compile(
    r"\b(?:diverges?|tends to infinity|goes to infinity|unbounded|increases without bound)\b", re.I
)
_GOLD_NONE = re.compile(
    r"^\s*(?:no\b(?!,)|none\b|there (?:are|is) no\b|it is not possible\b|.*\b(?:does|do) not exist\b"
    r"|.*\bnot possible\b|at most 0\b|0\s*\((?:i\.e\.,?\s*)?(?:no|none)\b)",
    re.IGNORECASE,
)
_GOLD_STATES_VALUE = re.compile(
    r"^\s*(?:the )?(?:only possible value(?: for the \w+)?|(?:\w+ )?limit exists and) is(?: equal to)?\s+(.+?)\.?\s*$",
    re.IGNORECASE,
)
_GOLD_ALL = re.compile(r"^\s*(\d+)\s*\(\s*(?:i\.e\.,?|that is,?)\s*all\b(?![^()]*\bexcept\b)[^()]*\)\s*$", re.I)
_GOLD_YES_NO = re.compile(r"^\s*(yes|no)\b\s*(?:[,.;:]\s*(.*))?$", re.IGNORECASE | re.DOTALL)
# A worded gold: words, numbers, comparisons and simple formulas ("x(n)<y(n-1) for all n≥3"); no code, no LaTeX.
_PHRASE = re.compile(r"[A-Za-z0-9 ,.()<>=≤≥+\-*/^]+")
_COUNTED = re.compile(r"\s*(-?[\w/^.+\-]+?)\s+([A-Za-z]{3,})\s*")
_QUANTITY = re.compile(r"[-−]?\s*\d+(?:\.\d+)?(?:\s+[A-Za-z]+)+")  # "20 square units": a value with its unit
_RELATION = re.compile(r"[<>=≤≥≠]|\\(?:le|ge|leq|geq|neq|lt|gt)\b")
_WORD = re.compile(r"\b[a-z]{3,}\b")  # a lower-case word ("for all n"); names of quantities are not words
# A number with the minus sign written before it (``-428``; not the hyphen of ``k-2`` or ``3-5``).
_SIGNED_NUMBER = re.compile(r"(?<![\w.])([-−–]\s*)?(\d+(?:\.\d+)?)")
_NONE_FILLER = {"no", "not", "there", "are", "is", "exist", "exists", "possible", "such", "does", "do", "it", "the"}


def _stem(word: str) -> str:
    """A crude plural/third-person stem: "values" -> "value", "divides" -> "divide", "boxes" -> "box"."""
    if len(word) <= 3 or word.endswith("ss") or not word.endswith("s"):
        return word
    if word.endswith("ies"):
        return word[:-3] + "y"
    if word.endswith(("sses", "xes", "zes", "ches", "shes")):
        return word[:-2]
    return word[:-1]


def _plain(text: str) -> str:
    """Lower case, LaTeX delimiters and commands dropped, contractions and number words normalised."""
    text = re.sub(r"\\[()\[\]]|\$|\\(?:left|right|text|mathrm)\b", " ", text.lower())
    text = re.sub(r"\\(?:neq|ne)\b", " ≠ ", text)
    text = re.sub(r"\\(?:geq|ge)\b", " ≥ ", re.sub(r"\\(?:leq|le)\b", " ≤ ", text))
    text = _CONTRACTED_NOT.sub(lambda m: ("can" if m.group(1) == "ca" else m.group(1)) + " not", text)
    text = re.sub(r"\bcan not\b", "cannot", text)
    for symbol, words in _SYMBOL_WORDS:
        text = text.replace(symbol, words)
    text = re.sub(r"(?<![<>=!])>(?!=)", " greater ", re.sub(r"(?<![<>=!])<(?!=)", " less ", text))
    text = re.sub(r"\b(?:only one|a unique|unique|precisely one)\b", "exactly one", text)
    text = re.sub(
        r"\b(?:an|a) infinite (?:number|amount) of\b|\binfinitely (?:many|much) of\b", "infinitely many", text
    )
    return re.sub(r"\b(" + "|".join(_NUMBER_WORDS) + r")\b", lambda m: _NUMBER_WORDS[m.group(1)], text)


@lru_cache(maxsize=4096)
def _tokens(text: str) -> tuple[str, ...]:
    """Content tokens: words (stemmed), numbers and ``≠``, without stopwords."""
    raw = re.findall(r"[a-z]+|\d+|≠", _plain(text))
    return tuple(_stem(t) for t in raw if t not in _STOPWORDS or t in _KEEP_SHORT)


def _negations(tokens: tuple[str, ...]) -> int:
    return sum(t in _NEGATIONS for t in tokens)


def _antonym_flips(reference: tuple[str, ...], said: tuple[str, ...]) -> int:
    """How many antonym pairs the statement swaps relative to the reference."""
    flips = 0
    for a, b in _ANTONYMS:
        for x, y in ((a, b), (b, a)):
            ref_x, said_x = _has_stem(reference, x), _has_stem(said, x)
            if ref_x and not _has_stem(reference, y) and _has_stem(said, y) and not said_x:
                flips += 1
    return flips


def _has_stem(tokens: tuple[str, ...], stem: str) -> bool:
    return any(
        t.startswith(stem)
        and not (stem in {"finite", "bounded", "rational", "periodic"} and t not in (stem, stem + "ly"))
        for t in tokens
    )


# "Because $a \\equiv 3$ while ..., the equation has no solutions": the reason ends at the first comma outside math.
_LEADING_REASON = re.compile(r"^\s*(?:because|since)\b[^,$]*(?:\$[^$]*\$[^,$]*)*,\s*", re.IGNORECASE)
# "While it is theoretically possible ..., it is not known whether ...": the concession is not the claim.
_CONCESSION = re.compile(r"^\s*(?:while|although|though|even though)\b[^,$]*(?:\$[^$]*\$[^,$]*)*,\s*", re.I)


def main_clause(sentence: str) -> str:
    """The sentence without a leading "If ..., then" or "Because ...," and without its explanation."""
    return _SUBORDINATE.sub("", _CONCESSION.sub("", _LEADING_REASON.sub("", _LEADING_IF.sub("", sentence.strip()))))


def question_of(problem: str) -> str | None:
    """The yes/no question a problem asks (see the module docstring), or None."""
    text = " ".join(_EXPLANATION.sub(" ", problem).split())
    sentences = [s.strip() for s in re.split(r"(?<=[.?!])\s+", text) if s.strip()]
    asked = [s for s in sentences if s.endswith("?")]
    question = asked[-1] if asked else next((s for s in sentences if _QUESTION_START.match(s)), None)
    if question is None:
        return None
    clauses = list(_ASKING_CLAUSE.finditer(question))  # "For three integers ..., if ..., is their sum ...?"
    question = question[clauses[-1].start() :] if clauses else question
    return _IF_SO.sub("", question).strip(" ,").rstrip("?. ")


def _strong(tokens: tuple[str, ...]) -> set[str]:
    """Tokens that identify a topic: words of three letters or more and numbers (not single-letter names)."""
    return {t for t in tokens if (len(t) >= 3 or t.isdigit()) and t not in _NEGATIONS}


def _restates(question: str, clause: str) -> bool:
    """Whether the clause is about the question: it repeats half its topic tokens, or at least two of them
    (questions with a long preamble). Single-letter names count only when the question has nothing else."""
    q_tokens, c_tokens = _tokens(question), _tokens(clause)
    such = re.search(r"\bsuch (?:an? )?([a-z]+)", clause.lower())  # "such a function": the question's function
    if such and _stem(such.group(1)) in q_tokens:
        return True
    wanted = _strong(q_tokens) or set(q_tokens) - _NEGATIONS
    said = _strong(c_tokens) | (set(c_tokens) if not _strong(q_tokens) else set())
    shared = len(wanted & said)
    return bool(wanted) and (shared * 2 >= len(wanted) or shared >= 2)


def _atoms(text: str) -> dict[frozenset[str], str]:
    found = {}
    for lhs, op, rhs in _RELATION_ATOM.findall(_plain(text)):
        found[frozenset((lhs.strip("{}()"), rhs.strip("{}()")))] = "=" if op == "=" else "≠"
    return found


def _relation_flips(question: str, clause: str) -> int:
    """Relations written in both with opposite signs (``x_n ≠ 0`` asked, ``x_n = 0`` said), counted; a ``≠``
    of the question that the answer does not repeat counts as a negation of the question."""
    asked, said = _atoms(question), _atoms(clause)
    flips = sum(asked[k] != said[k] for k in asked.keys() & said.keys())
    if re.search(r"\b(?:distinct|different)\b", clause, re.IGNORECASE):
        return flips  # "distinct values of p and q" says the question's p ≠ q in words
    return flips - sum(op == "≠" for k, op in asked.items() if k not in said)


def _answers_if_so(problem: str, clause: str) -> bool:
    """Whether the clause answers the question's "if so" part ("the smallest possible value of p+q is 12"): yes."""
    m = re.search(r"\bif so\b,?\s*(.*?)(?:[.?]\s|[.?]?$)", " ".join(problem.split()), re.IGNORECASE)
    if not m or not re.search(r"\b(?:is|are|equals?)\s*(?:\$|\\\(|-?\d|\w+\s*[=(])", clause):
        return False
    return _restates(m.group(1), clause)


def yes_no_of(response: str, problem: str | None) -> str | None:
    """``yes``/``no`` for a sentence answering the problem's yes/no question, None when it does not answer."""
    opening = re.match(r"^\s*\**(yes|no)\b", response, re.IGNORECASE)
    if opening:
        return opening.group(1).lower()
    question = question_of(problem) if problem else None
    clause = main_clause(response)
    if question is None or _HEDGES.search(CONSEQUENCE.sub("", response)) or not _restates(question, clause):
        return None
    if _NOT_ALWAYS.search(clause) and not _NOT_ALWAYS_ASKED.search(question):
        # "It is not always possible ..." to "Is it possible ...?": possible for some choices, not an answer
        return None
    condition = _LEADING_IF.match(response)
    if condition and _atoms(condition.group(0)).keys() & _atoms(question).keys():
        return None  # "If x_n = 0 for some n, then ...": reasoning about the asked relation, not an answer
    if _answers_if_so(problem or "", clause) and not _negations(_tokens(clause)):
        return "yes"
    parts = _CONSEQUENCE_SPLIT.split(clause)
    if len(parts) == 1:
        return _polarity(question, clause)
    # "... cannot have repeating terms, so there are no p ≠ q with x_p = x_q": claim and consequences are read
    # apart (each says no; their negations together would cancel); they must agree where they restate it.
    if_so = re.search(r"\bif so\b,?\s*(.*?)(?:[.?]\s|[.?]?$)", " ".join((problem or "").split()), re.IGNORECASE)
    worded = {t for t in _strong(_tokens(question)) if not t.isdigit()}
    said = set()
    for i, part in enumerate(parts):
        if worded and not worded & set(_tokens(part)):
            continue  # "$385^{1980}+18^{1980} \equiv 6 \pmod{13}$, so it is not ...": a fact, not an answer
        denied = i and if_so and _restates(if_so.group(1), part) and _negations(_tokens(part)) % 2
        said.add("no" if denied else _polarity(question, part))  # "..., so the smallest p + q does not exist"
    said.discard(None)
    return said.pop() if len(said) == 1 else None


def _polarity(question: str, clause: str) -> str | None:
    """``yes``/``no`` for a clause that restates the question (the parity of its negations, antonyms and
    flipped relations against the question's own), None when it does not restate it."""
    if not _restates(question, clause):
        return None
    q_tokens, r_tokens = _tokens(question), _tokens(clause)
    flips = _negations(r_tokens) + _antonym_flips(q_tokens, r_tokens) - _negations(q_tokens)
    flips += _relation_flips(question, clause)
    return "yes" if flips % 2 == 0 else "no"


def denies_existence(response: str, subject: set[str]) -> bool:
    """Whether the sentence's main clause denies that something named in `subject` exists."""
    clause = main_clause(response)
    hedged = _HEDGES.search(CONSEQUENCE.sub("", response))
    if hedged or _SINGLES_OUT.search(clause) or _CONDITIONAL.search(clause):
        return False  # "are n = m/2 + 1 if m is even, and there are no solutions if m is odd" denies only a case
    if re.search(r"\b(?:all|every|both)\b", clause, re.I) and re.search(r"\bor\b", clause, re.I):
        return False  # "all three can be bounded or none can": alternatives, not a denial
    if re.search(r"\bno (?:general|simple|closed[- ]form|obvious|straightforward|easy|known)\b", clause, re.I):
        return False  # "has no general solution" does not say there is none
    if "limit" in subject and _LIMIT_DIVERGES.search(clause):
        return True  # "diverges to infinity": no (finite) limit
    if not _DENIES_EXISTENCE.search(_plain(clause)):
        return False
    return not subject or bool(subject & set(_tokens(clause)))


def _subject_of_none(gold: str) -> set[str]:
    return {t for t in _tokens(gold) if t not in _NONE_FILLER and not t.isdigit()}


def _signed_numbers(text: str) -> set[tuple[bool, str]]:
    return {(bool(m.group(1)), m.group(2)) for m in _SIGNED_NUMBER.finditer(text)}


def states_words(gold: str, response: str) -> bool:
    """Whether the sentence says every content token of a worded gold, with no negation or antonym it lacks, and
    no number of the gold only with the other sign (``-428 square centimeters`` does not state ``428 square
    centimeters``)."""
    wanted, said = _tokens(gold), _tokens(response)
    if not set(wanted) <= set(said) or _HEDGES.search(response):
        return False
    if _is_bare_relation(gold) and not _writes(_squashed(response), _squashed(gold)):
        return False  # "b > a > c" is not stated by "a > b > c", nor "SRAC=LRAC" by "SRAC>LRAC": order matters
    stated = _signed_numbers(response)  # (a number in words, "at least one", is matched by the tokens above)
    if any((not minus, n) in stated and (minus, n) not in stated for minus, n in _signed_numbers(gold)):
        return False
    if _negations(said) and not _negations(wanted):
        return False
    if _CONDITIONAL.search(response) and not _CONDITIONAL.search(gold):
        return False  # "decreasing if ab > 1, increasing if ab < 1": alternatives, not the gold's claim
    claim = _tokens(main_clause(response))  # "increasing, since a_n increases and b_n decreases" keeps its claim
    return not any(_has_stem(claim, b) for a, b in _ANTONYM_PAIRS if _has_stem(wanted, a) and not _has_stem(wanted, b))


def value_in_words(gold: str) -> str | None:
    """The value a worded gold states ("The limit exists and is equal to 2/3", "The only possible value for the
    limit is 4"): such a gold is a value, so a sentence must give that value, not merely repeat the words."""
    m = _GOLD_STATES_VALUE.match(gold)
    return m.group(1).strip() if m else None


def _unwrapped(gold: str) -> str:
    """A gold written in ``\\text{}`` (``\\text{No solutions}``, olympiad style) as its words; other golds as
    they are."""
    if "\\text" not in gold:
        return gold
    words = re.sub(r"\\text\s*\{([^{}]*)\}", r" \1 ", gold).replace("$", " ")
    return gold if "\\" in words else re.sub(r"\s+", " ", words).strip()


def gold_kind(gold: str) -> str:
    """``yesno``, ``none`` (non-existence), ``words`` (a worded gold) or ``value``."""
    if len(gold) > MAX_STATEMENT_CHARS:  # no worded gold is that long; a huge one is left to the size limits
        return "value"
    gold = _unwrapped(gold)
    if value_in_words(gold):
        return "value"
    if _GOLD_YES_NO.match(gold):
        return "yesno"
    if _GOLD_NONE.match(gold):
        return "none"
    if _QUANTITY.fullmatch(gold.strip()):  # "20 square units": a number and its unit, compared as a value
        return "value"
    words = [t for t in _tokens(gold) if len(t) >= 3 and not t.isdigit()]
    if len(words) >= 2 and _PHRASE.fullmatch(gold.strip()):
        return "words"
    return "value"


def _is_bare_relation(gold: str) -> bool:
    """A gold that is only a relation or a chain of them between names (``b > a > c``, ``SRAC=LRAC``): its
    tokens say nothing of their order, so a sentence must write the relation itself."""
    return bool(_RELATION.search(gold)) and not _WORD.search(re.sub(r"\\[A-Za-z]+", " ", gold))


def _squashed(text: str) -> str:
    """``text`` without ``$`` and thin spaces, and without spaces around relation operators (``A > B`` -> ``A>B``)."""
    text = re.sub(r"\$|\\[,;!]", "", text)
    return re.sub(r"\s*(" + _RELATION.pattern + r")\s*", r"\1", text).strip()


def _writes(text: str, relation: str) -> bool:
    """Whether ``text`` holds ``relation`` as a whole (not ``2(A>B>C)`` or ``A>B>C+1``; both squashed)."""
    return re.search(r"(?<![\w+\-*/^(])" + re.escape(relation) + r"(?![\w+\-*/^)])", text) is not None


def judge(gold: str, response: str, problem: str | None) -> tuple[bool, str] | None:
    """Whether a summary sentence states the worded gold; None when these rules do not apply.

    Args:
        gold: The gold answer (``Yes``, ``No such values``, ``Monotonically increasing``, ...).
        response: The response (only a short one, a summary sentence, is judged).
        problem: The problem text; yes/no questions answered by a statement need it.
    """
    if len(response) > MAX_STATEMENT_CHARS or len(gold) > MAX_STATEMENT_CHARS or not response.strip():
        return None
    gold = _unwrapped(gold)
    if states_all(gold, response):
        return True, "the sentence says all, as the gold's remark does"
    kind = gold_kind(gold)
    if kind == "yesno":
        return _judge_yes_no(gold, response, problem)
    if kind == "none":
        if denies_existence(response, _subject_of_none(gold)):
            return True, "the sentence denies existence, as the gold does"
        return None
    if kind == "words" and states_words(gold, response):
        return True, "the sentence states the worded gold"

    if kind == "value" and states_count(gold, response):
        return True, "the sentence states the counted gold"
    if kind == "value" and states_exact_count(gold, response):
        return True, "the sentence states the exact count of the gold"
    return None


_GOLD_EXACTLY = re.compile(r"^\s*exactly\s+(\w+)(?:\s+[a-z]+)?\s*$", re.IGNORECASE)


def states_exact_count(gold: str, response: str) -> bool:
    """A gold "Exactly one" stated as "Exactly one of the numbers can be greater than 1" (or "only one", "a
    unique"): the main clause says exactly that many, with no negation and no hedge."""
    m = _GOLD_EXACTLY.match(gold)
    if m is None or _HEDGES.search(response):
        return False
    clause = main_clause(response)
    count = _NUMBER_WORDS.get(m.group(1).lower(), m.group(1))
    return f"exactly {count}" in _plain(clause) and not _negations(_tokens(clause))


def states_all(gold: str, response: str) -> bool:
    """A gold "100 (i.e., all values)" stated as "all of them are integers" / "holds for all n in {1, ..., 100}":
    the main clause says all (of a count equal to the gold's, if it gives one), with no negation or exception."""
    m = _GOLD_ALL.match(gold)
    clause = main_clause(response)
    if m is None or _HEDGES.search(response) or _SINGLES_OUT.search(clause) or _negations(_tokens(clause)):
        return False
    said = re.search(r"\b(?:all|every)\b(?:\s+(?:of\s+)?(?:the\s+)?(?:first\s+)?(\d+)\b)?", clause, re.I)
    return said is not None and said.group(1) in (None, m.group(1))


def states_count(gold: str, response: str) -> bool:
    """A gold "n times" / "98 values" stated as such ("occurs n times"), number words read as digits."""
    m = _COUNTED.fullmatch(gold)
    if m is None or _HEDGES.search(response):
        return False
    noun = _stem(m.group(2).lower())
    said = re.search(rf"(?<![\w^_(]){re.escape(m.group(1).lower())}\s+{re.escape(noun)}", _plain(response))
    return said is not None and not _negations(_tokens(main_clause(response)))


def _judge_yes_no(gold: str, response: str, problem: str | None) -> tuple[bool, str] | None:
    m = _GOLD_YES_NO.match(gold)
    assert m is not None
    said = yes_no_of(response, problem)
    if said is None:
        return None
    if said != m.group(1).lower():
        return False, f"the sentence answers {said} to the question"
    rest = (m.group(2) or "").strip()
    if rest and not set(_tokens(rest)) <= set(_tokens(response)):
        return False, f"the sentence answers {said} but not the rest of the gold"
    return True, f"the sentence answers {said} to the question"
