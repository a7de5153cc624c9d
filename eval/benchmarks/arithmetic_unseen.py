"""Arithmetic word problems in phrasings no training generator uses: the ``arith_unseen`` yardstick.

``arith_heldout`` is drawn from the same generator as the ``smol_limo`` pool (`eval.benchmarks.arithmetic`): a model
that learns the templates' verbs scores well on it without learning the arithmetic of a story. This set asks the same
kind of question — one quantity, one to three exact operations (+, -, x, /) on small numbers — told in other words:
its own verbs for each operation ("hands out", "receives", "donates", "grows to three times", "divides ... into
equal piles"), its own things, people and containers, its own openings (a jar that holds marbles, a class that owns
crayons), time phrases instead of "Then", passive sentences, and its own questions ("How many ... remain?", "What
is the count of ... at the end?"). It is written here, apart from `eval.benchmarks.arithmetic`, and imports nothing
from it; tests/test_arithmetic.py checks that no operation word, thing, name or masked sentence of one appears in the
other (the pool, the held-out set and the training problems alike).

Two parts, both always reported: the first `DEV_PROBLEMS` problems may be looked at while the training data's
phrasing is designed; the rest (``part: untouched``) are not looked at for any choice, so they stay an honest
measure.

``python -m eval.benchmarks.arithmetic_unseen recipes/data/arithmetic`` writes ``unseen.jsonl`` (``id, problem, answer,
level, subject, part``), byte for byte the same on every run; a test regenerates it and compares.
"""

from __future__ import annotations

import json
import random
import sys
from dataclasses import dataclass
from pathlib import Path

UNSEEN_PROBLEMS = 200
DEV_PROBLEMS = 100
SEED = 31337

PEOPLE = ("Mia", "Leo", "Sofia", "Noah", "Aria", "Eli", "Zoe", "Max", "Ruby", "Sam", "Iris", "Theo")
SHE = frozenset({"Mia", "Sofia", "Aria", "Zoe", "Ruby", "Iris"})
# A group that owns the things, told in the singular: "The class owns 40 crayons."
GROUPS = ("the class", "the club", "the shop", "the team")
# subject -> (things, holder they sit in, a container to order them in, that container in the singular)
THINGS: dict[str, tuple[str, str, str, str]] = {
    "marbles": ("marbles", "jar", "tubes", "tube"),
    "stickers": ("stickers", "album", "sheets", "sheet"),
    "coins": ("coins", "purse", "rolls", "roll"),
    "shells": ("shells", "bucket", "sacks", "sack"),
    "stamps": ("stamps", "binder", "sets", "set"),
    "crayons": ("crayons", "case", "cartons", "carton"),
    "balloons": ("balloons", "room", "bunches", "bunch"),
    "cards": ("cards", "drawer", "decks", "deck"),
}
# The operation words of this set, one list per operation; tests check none occurs in the training generator.
OPERATION_WORDS = (
    "receives",
    "arrive",
    "earns",
    "gathers",
    "adds",
    "hands out",
    "spends",
    "donates",
    "misplaced",
    "returns",
    "throws away",
    "taken",
    "grows",
    "becomes",
    "divides",
    "sorts",
    "owns",
    "keeps",
    "holds",
    "belongs",
    "orders",
    "contains",
    "remain",
)
# {who}: the owner as a subject; {pos}: its possessive ("Mia's", "the class's", "her")
ADD_TEXT = (
    "{who} receives {b} {things} from a cousin.",
    "{b} more {things} arrive in the mail.",
    "{who} earns {b} {things} at the fair.",
    "{who} gathers another {b} {things}.",
    "{who} adds {b} {things} to the {holder}.",
)
SUBTRACT_TEXT = (
    "{who} hands out {b} {things} to classmates.",
    "{who} spends {b} {things}.",
    "{who} donates {b} {things} to a school.",
    "{b} {things} are misplaced.",
    "{who} returns {b} {things} to the store.",
    "{who} throws away {b} {things}.",
    "{b} of the {things} are taken by a visitor.",
)
MULTIPLY_TEXT = (
    "The count of {things} grows to {k} times what it was.",
    "The pile of {things} becomes {k_word} as large.",
)
DIVIDE_TEXT = (
    ("{who} divides the {things} into {b} equal piles.", "What is the size of each pile?"),
    ("{who} sorts the {things} into {b} bags, an equal number per bag.", "How many {things} end up in each bag?"),
    ("The {things} are divided evenly among {b} children.", "How many {things} does each child end up with?"),
)
TIME_PHRASES = ("", "On Monday, ", "In the afternoon, ", "A week later, ", "Soon after, ", "By evening, ")
OPENINGS = (
    "{a_holder} that belongs to {owner} holds {v} {things}.",
    "At first, {owner} owns {v} {things}.",
    "{owner} keeps {v} {things} in a {holder}.",
)
PRODUCT_OPENINGS = (
    "{owner} orders {n} {containers} of {things}; each one contains {e} {things}.",
    "{n} {containers} of {things} come to {owner}, {e} {things} per {container}.",
)
QUESTIONS = ("What is the count of {things} at the end?", "How many {things} are there now in total?")
LEFT_QUESTION = "How many {things} remain?"
K_WORD = {2: "twice", 3: "three times", 4: "four times"}


@dataclass(frozen=True)
class UnseenProblem:
    """A story told in this set's phrasings; ``answer`` is the exact result of its operations."""

    id: str
    subject: str
    text: str
    answer: int
    level: int


def _owner(rng: random.Random) -> tuple[str, str]:
    """The owner as written first, and as written again later (a pronoun for a person, the same words for a group)."""
    if rng.random() < 0.25:
        group = rng.choice(GROUPS)
        return group, group
    person = rng.choice(PEOPLE)
    return person, "she" if person in SHE else "he"


def _opening(rng: random.Random, owner: str, subject: str) -> tuple[str, int, int]:
    """The first sentence, the starting count, and 1 when the start is itself a product (an operation)."""
    things, holder, containers, container = THINGS[subject]
    if rng.random() < 0.45:
        n, e = rng.randint(2, 9), rng.randint(3, 12)
        template = rng.choice(PRODUCT_OPENINGS)
        text = template.format(owner=owner, n=n, containers=containers, container=container, things=things, e=e)
        return _capital(text), n * e, 1
    v = rng.randint(12, 95)
    a_holder = ("an " if holder[0] in "aeiou" else "a ") + holder
    text = rng.choice(OPENINGS).format(holder=holder, a_holder=a_holder, owner=owner, v=v, things=things)
    return _capital(text), v, 0


def _operation(rng: random.Random, value: int, last: bool, words: dict[str, str]) -> tuple[str, int, str | None]:
    """One operation sentence, the value after it, and the question a division asks."""
    divisors = [d for d in range(2, 10) if value % d == 0 and value // d >= 2]
    kinds = ["+", "-"] + (["×"] if value <= 60 else []) + (["÷"] if last and divisors else [])
    kind = rng.choice(kinds)
    if kind == "+":
        b = rng.randint(3, 40)
        return rng.choice(ADD_TEXT).format(b=b, **words), value + b, None
    if kind == "-":
        b = rng.randint(1, max(1, value - 2))
        return rng.choice(SUBTRACT_TEXT).format(b=b, **words), value - b, "-"
    if kind == "×":
        k = rng.randint(2, 4)
        return rng.choice(MULTIPLY_TEXT).format(k=k, k_word=K_WORD[k], **words), value * k, None
    b = rng.choice(divisors)
    sentence, question = rng.choice(DIVIDE_TEXT)
    return sentence.format(b=b, **words), value // b, question.format(**words)


def _capital(text: str) -> str:
    return text[0].upper() + text[1:]


def _lower_start(sentence: str) -> str:
    """A sentence after a time phrase: "The ..." becomes "the ..." (names and numbers stay as they are)."""
    return sentence[0].lower() + sentence[1:] if sentence.startswith("The ") else sentence


def story(rng: random.Random, index: int) -> UnseenProblem:
    subject = rng.choice(sorted(THINGS))
    things, holder = THINGS[subject][:2]
    first, again = _owner(rng)
    opening, value, level = _opening(rng, first, subject)
    sentences, asked, count = [opening], None, rng.randint(1, 3) - level
    for number in range(max(count, 0)):
        time = rng.choice(TIME_PHRASES)
        words = {"who": again, "things": things, "holder": holder}
        sentence, value, asked = _operation(rng, value, number == count - 1, words)
        sentences.append(time + (_lower_start(sentence) if time else _capital(sentence)))
    level += max(count, 0)
    if asked is None or asked == "-":
        question = LEFT_QUESTION if asked == "-" and rng.random() < 0.5 else rng.choice(QUESTIONS)
        asked = question.format(things=things)
    text = " ".join([*sentences, asked])
    return UnseenProblem(f"arith-unseen-{index:04d}", subject, text, value, level)


def problems(count: int = UNSEEN_PROBLEMS, seed: int = SEED) -> list[UnseenProblem]:
    """``count`` distinct problems (by text) with a positive answer and at least one operation."""
    rng, seen = random.Random(seed), set()
    found: list[UnseenProblem] = []
    while len(found) < count:
        problem = story(rng, len(found))
        if problem.text not in seen and problem.answer > 0 and problem.level >= 1:
            seen.add(problem.text)
            found.append(problem)
    return found


def rows() -> list[dict[str, object]]:
    return [
        {
            "id": p.id,
            "problem": p.text,
            "answer": str(p.answer),
            "level": p.level,
            "subject": p.subject,
            "part": "dev" if i < DEV_PROBLEMS else "untouched",
        }
        for i, p in enumerate(problems())
    ]


def file_bytes() -> bytes:
    """``unseen.jsonl``'s bytes."""
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows()).encode()


def main(argv: list[str]) -> int:
    out = Path(argv[0] if argv else "recipes/data/arithmetic")
    out.mkdir(parents=True, exist_ok=True)
    (out / "unseen.jsonl").write_bytes(file_bytes())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
