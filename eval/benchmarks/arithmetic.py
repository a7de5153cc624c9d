"""Arithmetic word problems with chains of graded quality: the pool and held-out set of the ``smol_limo`` recipe.

Why this task: a 135M-parameter instruct model (SmolLM2-135M-Instruct) solves 2 of 129 such problems before
training, never writes ``\\boxed{}``, and MATH or grade-school sets do not move at that size, while one to three
steps of small-number arithmetic are within its reach after a few hundred good chains. So "a few curated chains
make a model better" is measurable on a CPU in minutes, before and after, with intervals.

Each problem is a short story over one quantity (1 to 3 operations: +, -, x, / with exact results), its gold is the
final number, its ``level`` the number of operations and its ``subject`` the story's domain. Every problem comes
with five candidate chains, as a pool of model attempts does, of graded quality:

- ``tutor``: every step quotes the sentence it comes from and states its equation; boxed answer;
- ``quick``: the operations alone, then the boxed answer (correct, short);
- ``careless``: the tutor's chain with one arithmetic slip carried to a wrong boxed answer;
- ``rambler``: correct, but wandering and repetitive (a loop of restatements);
- ``unsure``: the right steps that never commit to a final answer.

Curation should keep ``tutor`` chains (verified, elaborated), may keep ``quick`` ones, and must drop the rest:
the answer check drops ``careless``, the structural checks ``rambler`` and ``unsure``. A random sample of the pool
has all five in it, which is what the miniature LIMO comparison (bench/experiments/limo_small.py) contrasts.

The files are generated, not hand-written: ``python -m eval.benchmarks.arithmetic recipes/data/arithmetic`` writes
``pool.jsonl.gz`` (one row per chain: ``id, problem_id, problem, answer, chain, generator, level, subject``)
and ``heldout.jsonl`` (``id, problem, answer, level, subject``), byte for byte the same on every run (gzip
without a timestamp); a test regenerates them and compares. Pool and held-out problems never share a text.
"""

from __future__ import annotations

import gzip
import io
import json
import random
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

NAMES = (
    "Ava",
    "Ben",
    "Chloe",
    "Diego",
    "Emma",
    "Farah",
    "Gus",
    "Hana",
    "Ivan",
    "Jade",
    "Kofi",
    "Lena",
    "Mateo",
    "Nora",
)
# domain -> (item, container, place)
DOMAINS: dict[str, tuple[str, str, str]] = {
    "baking": ("cookies", "trays", "the bakery"),
    "garden": ("seeds", "packets", "the garden shop"),
    "library": ("books", "shelves", "the library"),
    "school": ("pencils", "boxes", "the school store"),
    "farm": ("eggs", "cartons", "the farm"),
    "sports": ("tennis balls", "cans", "the sports shop"),
    "crafts": ("beads", "bags", "the craft fair"),
    "fruit": ("apples", "baskets", "the market"),
}
_SHE = frozenset(
    {"Ava", "Chloe", "Emma", "Farah", "Hana", "Jade", "Lena", "Nora", "Priya", "Rosa", "Uma", "Wen", "Zara"}
)
POOL_PROBLEMS = 400
HELDOUT_PROBLEMS = 129
TRAIN_PROBLEMS = 240  # problems without chains: the model-written pool's (recipe smol_selfpool), sampled by a teacher
POOL_SEED = 20261125
HELDOUT_SEED = 7
TRAIN_SEED = 20261126


@dataclass(frozen=True)
class Step:
    """One operation on the running quantity: its sentence, its symbol, its operand and the result."""

    sentence: str
    symbol: str
    operand: int
    before: int
    after: int

    def equation(self, after: int | None = None) -> str:
        return f"{self.before} {self.symbol} {self.operand} = {self.after if after is None else after}"


@dataclass(frozen=True)
class WordProblem:
    """A story: a start, its steps, the question; ``answer`` is the last step's result."""

    id: str
    subject: str
    name: str
    item: str
    container: str
    start_text: str
    start: int
    steps: tuple[Step, ...]
    question: str

    @property
    def answer(self) -> int:
        return self.steps[-1].after if self.steps else self.start

    @property
    def text(self) -> str:
        return " ".join(t for t in (self.start_text, *(s.sentence for s in self.steps), self.question) if t)


def _pronoun(name: str) -> str:
    return "She" if name in _SHE else "He"


def _story(rng: random.Random, index: int, prefix: str) -> WordProblem:
    subject = rng.choice(sorted(DOMAINS))
    item, container, place = DOMAINS[subject]
    name = rng.choice(NAMES)
    he = _pronoun(name)
    count = rng.randint(1, 3)
    steps: list[Step] = []
    if rng.random() < 0.5:  # the start is itself a product: boxes of items
        boxes, each = rng.randint(2, 9), rng.randint(3, 12)
        start_text = f"{name} buys {boxes} {container} of {item} at {place}, with {each} {item} in each."
        steps.append(Step("", "×", each, boxes, boxes * each))
        value = boxes * each
    else:
        value = rng.randint(12, 95)
        start_text = f"{name} has {value} {item}."
    while len(steps) < count:
        step = _next_step(rng, he, item, value, last=len(steps) == count - 1)
        steps.append(step)
        value = step.after
    shared = steps[-1].symbol == "÷"
    question = f"How many {item} does each friend get?" if shared else f"How many {item} does {name} have now?"
    return WordProblem(
        f"{prefix}-{index:04d}", subject, name, item, container, start_text, steps[0].before, tuple(steps), question
    )


def _next_step(rng: random.Random, he: str, item: str, value: int, *, last: bool) -> Step:
    divisors = [d for d in range(2, 10) if value % d == 0 and value // d >= 2]
    kinds = ["+", "-"] + (["×"] if value <= 60 else []) + (["÷"] if last and divisors else [])
    kind = rng.choice(kinds)
    if kind == "+":
        b = rng.randint(3, 40)
        return Step(f"{he} gets {b} more {item}.", "+", b, value, value + b)
    if kind == "-":
        b = rng.randint(1, max(1, value - 2))
        return Step(f"{he} gives away {b} {item}.", "-", b, value, value - b)
    if kind == "×":
        b = rng.randint(2, 4)
        word = {2: "doubles", 3: "triples", 4: "quadruples"}[b]
        return Step(f"Then {he.lower()} {word} the number of {item}.", "×", b, value, value * b)
    b = rng.choice(divisors)
    return Step(f"{he} shares the {item} equally among {b} friends.", "÷", b, value, value // b)


# --- The pool's wider phrasings -------------------------------------------------------------------------------------
# The held-out set (`_story`) keeps the first phrasings; the pool and the training problems are told in many more —
# other verbs for each operation, more domains and names, connectives, starts and questions — so that curation has
# diversity to choose from and a model learns what a sentence does to the quantity rather than one verb per operation.
# Also: verbs that fit one domain only, passive sentences, time phrases as connectives, owners that are groups
# (named again, no pronoun), openings that name a thing the items sit in, multiplication told as a result or a
# factor, and more questions — so that the unseen set's kinds of shape are not new to the model, in words of its own.
# None of these is a phrasing of the unseen-phrasing set (`eval.benchmarks.arithmetic_unseen`, written apart): its
# verbs, entities, names and sentence shapes are its own, and tests/test_arithmetic.py checks that the two never meet.
WIDE_NAMES = (*NAMES, "Omar", "Priya", "Quinn", "Rosa", "Tariq", "Uma", "Victor", "Wen", "Yusuf", "Zara")
WIDE_DOMAINS: dict[str, tuple[str, str, str]] = {
    **DOMAINS,
    "toys": ("toy cars", "boxes", "the toy shop"),
    "flowers": ("tulips", "pots", "the flower stall"),
    "office": ("envelopes", "packs", "the office supply store"),
    "pets": ("dog treats", "bags", "the pet shop"),
}
# {who}: the subject (a name or pronoun), {whom}: the object pronoun, {b}: the operand.
WIDE_ADD = (
    "{who} gets {b} more {item}.",
    "{who} buys {b} more {item}.",
    "{who} finds {b} more {item}.",
    "{who} is given {b} more {item}.",
    "{who} wins {b} {item} in a game.",
    "A friend gives {whom} {b} {item}.",
    "{who} picks up {b} more {item}.",
    "{who} collects {b} more {item}.",
    "{who} brings home {b} more {item}.",
    "{who} is paid {b} {item} for helping out.",
    "{who} borrows {b} more {item}.",
    "{who} trades for {b} more {item}.",
    "{who} makes {b} more {item}.",
    "{who} saves up {b} more {item}.",
    "{who} is sent {b} {item} by a friend.",
    "{b} more {item} are bought for {whom}.",
)
WIDE_SUBTRACT = (
    "{who} gives away {b} {item}.",
    "{who} sells {b} {item}.",
    "{who} loses {b} {item}.",
    "{who} uses {b} {item}.",
    "{who} gives {b} {item} to a neighbor.",
    "{b} of the {item} go missing.",
    "{who} drops {b} {item}.",
    "{who} trades away {b} {item}.",
    "{who} lends {b} {item} to a neighbor.",
    "{who} mails {b} {item} to a pen pal.",
    "{b} {item} are sold.",
    "{b} {item} are given to a neighbor.",
)
# Verbs that fit one domain's things only (added to WIDE_ADD / WIDE_SUBTRACT for that domain's stories).
WIDE_DOMAIN_ADD: dict[str, tuple[str, ...]] = {
    "baking": ("{who} bakes {b} more {item}.",),
    "fruit": ("{who} picks {b} more {item} from a tree.",),
    "farm": ("The hens lay {b} more {item}.",),
    "sports": ("{who} catches {b} more {item}.",),
    "library": ("{who} checks out {b} more {item}.",),
}
WIDE_DOMAIN_SUBTRACT: dict[str, tuple[str, ...]] = {
    "baking": ("{who} eats {b} {item}.", "{b} {item} are eaten."),
    "fruit": ("{who} eats {b} {item}.", "{b} {item} are eaten."),
    "farm": ("{who} breaks {b} {item}.", "{b} {item} are broken."),
    "pets": ("The dog eats {b} {item}.",),
    "school": ("{who} breaks {b} {item}.",),
    "toys": ("{b} {item} are broken.",),
    "office": ("{who} mails {b} {item}.",),
    "garden": ("{who} sows {b} {item}.",),
    "flowers": ("{b} {item} wilt.",),
    "sports": ("{b} {item} fly over the fence.",),
}
WIDE_MULTIPLY = (
    "{who} {times_verb} the number of {item}.",
    "{who} now has {times_adverb} as many {item} as before.",
    "{who} ends up with {b} times as many {item}.",
    "The number of {item} is multiplied by {b}.",
)
# A division's sentence and the question it asks.
WIDE_DIVIDE = (
    ("{who} shares the {item} equally among {b} friends.", "How many {item} does each friend get?"),
    ("{who} splits the {item} equally into {b} groups.", "How many {item} are in each group?"),
    ("{who} deals the {item} out to {b} players, the same number to each.", "How many {item} does each player get?"),
    (
        "{who} puts the {item} into {b} {container}, the same number in each.",
        "How many {item} go in each of the {container}?",
    ),
)
WIDE_CONNECTIVES = (
    "",
    "Then ",
    "After that, ",
    "Next, ",
    "Later, ",
    "On Friday, ",
    "That night, ",
    "The next day, ",
    "At noon, ",
    "After two days, ",
    "Over the weekend, ",
)
# Owners that are groups, told in the singular and named again (no pronoun): "The family has 30 apples."
WIDE_GROUPS = ("the family", "the school", "the library", "the bakery", "the camp", "the scout troop")
# domain -> a thing the items sit in, for openings that name it: "Ava's tin has 30 cookies."
WIDE_HOLDERS = {
    "baking": "tin",
    "garden": "shed",
    "library": "cart",
    "school": "desk",
    "farm": "fridge",
    "sports": "locker",
    "crafts": "sewing kit",
    "fruit": "bowl",
    "toys": "toy chest",
    "flowers": "greenhouse",
    "office": "file cabinet",
    "pets": "cupboard",
}
WIDE_HOLDER_STARTS = ("{owner_s} {holder} has {value} {item}.", "There are {value} {item} inside {owner_s} {holder}.")
WIDE_HOLDER_QUESTION = "How many {item} are in {owner_s} {holder} now?"
WIDE_PLAIN_STARTS = (
    "{name} has {value} {item}.",
    "{name} starts with {value} {item}.",
    "{name} counts {value} {item}.",
)
WIDE_PRODUCT_STARTS = (
    "{name} buys {boxes} {container} of {item} at {place}, with {each} {item} in each.",
    "At {place}, {name} buys {boxes} {container} of {item}, with {each} {item} in each.",
    "{name} gets {boxes} {container} of {item}, and there are {each} {item} in each.",
    # Products told number first or factor first: a model that met only "<name> buys N boxes of X, with E in each"
    # read "N boxes of X come to <name>, E per box" as a start of N (arith_unseen's dev part).
    "{boxes} {container} of {item} are delivered to {name}, each with {each} {item} inside.",
    "{each} {item} fill each of the {boxes} {container} that {name} brings home.",
    "{name} is given {boxes} {container} of {item}, and every one of them has {each} {item}.",
    "There are {boxes} {container} of {item} on {name_s} table, with {each} {item} in every one.",
)
WIDE_QUESTIONS = (
    "How many {item} does {name} have now?",
    "How many {item} does {name} have in the end?",
    "Altogether, how many {item} does {name} have now?",
    "How many {item} does {name} finish with?",
    "After all of this, how many {item} does {name} have?",
)
WIDE_LEFT_QUESTION = "How many {item} does {name} have left?"  # only after a subtraction
TIMES_VERB = {2: "doubles", 3: "triples", 4: "quadruples"}
# The operation words of every phrasing above (pool, held-out set, training problems); tests check that none occurs in
# the unseen-phrasing set and that none of its own occurs here.
OPERATION_WORDS = (
    "gets",
    "buys",
    "finds",
    "given",
    "wins",
    "gives",
    "picks up",
    "collects",
    "sells",
    "loses",
    "uses",
    "go missing",
    "doubles",
    "triples",
    "quadruples",
    "as many",
    "shares",
    "splits",
    "puts",
    "has",
    "starts with",
    "counts",
    "friend",
    "friends",
    "left",
    "brings home",
    "paid",
    "borrows",
    "trades for",
    "makes",
    "saves up",
    "sent",
    "bought",
    "drops",
    "trades away",
    "lends",
    "mails",
    "sold",
    "bakes",
    "picks",
    "lay",
    "catches",
    "checks out",
    "eats",
    "eaten",
    "breaks",
    "broken",
    "sows",
    "wilt",
    "fly",
    "ends up",
    "multiplied",
    "deals",
    "players",
    "there are",
    "altogether",
    "finish with",
    "delivered",
    "fill",
    "every one",
)
TIMES_ADVERB = {2: "twice", 3: "three times", 4: "four times"}


def _wide_story(rng: random.Random, index: int, prefix: str) -> WordProblem:
    subject = rng.choice(sorted(WIDE_DOMAINS))
    item, container, place = WIDE_DOMAINS[subject]
    name = rng.choice(WIDE_NAMES)
    group = rng.random() < 0.2
    if group:  # an owner that is a group, never the story's own place ("At the bakery, the bakery buys ...")
        name = rng.choice([g for g in WIDE_GROUPS if g != place])
    owner_s, holder = f"{name}'s", WIDE_HOLDERS[subject]
    count = rng.randint(1, 3)
    steps: list[Step] = []
    holder_start = False
    if rng.random() < 0.5:
        boxes, each = rng.randint(2, 9), rng.randint(3, 12)
        start = rng.choice(WIDE_PRODUCT_STARTS)
        words = {"name": name, "name_s": owner_s, "boxes": boxes, "container": container, "each": each}
        start_text = start.format(item=item, place=place, **words)
        steps.append(Step("", "×", each, boxes, boxes * each))
        value = boxes * each
    else:
        value = rng.randint(12, 95)
        holder_start = rng.random() < 0.4
        starts = WIDE_HOLDER_STARTS if holder_start else WIDE_PLAIN_STARTS
        start_text = rng.choice(starts).format(name=name, value=value, item=item, owner_s=owner_s, holder=holder)
    start_text = _capital(start_text)
    question = rng.choice(WIDE_QUESTIONS).format(item=item, name=name)
    if holder_start and rng.random() < 0.5:
        question = WIDE_HOLDER_QUESTION.format(item=item, owner_s=owner_s, holder=holder)
    while len(steps) < count:
        last = len(steps) == count - 1
        step, asked = _wide_step(rng, name, subject, item, container, value, last=last, group=group)
        steps.append(step)
        value = step.after
        question = asked or question
    if steps[-1].symbol == "-" and rng.random() < 0.5:
        question = WIDE_LEFT_QUESTION.format(item=item, name=name)
    return WordProblem(
        f"{prefix}-{index:04d}", subject, name, item, container, start_text, steps[0].before, tuple(steps), question
    )


def _capital(text: str) -> str:
    return text[0].upper() + text[1:]


def _wide_step(
    rng: random.Random,
    name: str,
    subject: str,
    item: str,
    container: str,
    value: int,
    *,
    last: bool,
    group: bool = False,
) -> tuple[Step, str | None]:
    """One operation told in one of the pool's phrasings; a division also returns the question it asks. A group
    owner (``group``) is named again in every sentence, a person by name or pronoun."""
    connective = rng.choice(WIDE_CONNECTIVES)
    he = _pronoun(name)
    if group:
        who, whom = name, name
    else:
        who, whom = (name if rng.random() < 0.3 else he.lower()), ("her" if name in _SHE else "him")
    words = {"who": who, "whom": whom, "item": item, "container": container}
    divisors = [d for d in range(2, 10) if value % d == 0 and value // d >= 2]
    kinds = ["+", "-"] + (["×"] if value <= 60 else []) + (["÷"] if last and divisors else [])
    kind = rng.choice(kinds)
    asked = None
    if kind == "+":
        b, template = rng.randint(3, 40), rng.choice(WIDE_ADD + WIDE_DOMAIN_ADD.get(subject, ()))
    elif kind == "-":
        b, template = (
            rng.randint(1, max(1, value - 2)),
            rng.choice(WIDE_SUBTRACT + WIDE_DOMAIN_SUBTRACT.get(subject, ())),
        )
    elif kind == "×":
        b, template = rng.randint(2, 4), rng.choice(WIDE_MULTIPLY)
        words.update(times_verb=TIMES_VERB[b], times_adverb=TIMES_ADVERB[b])
    else:
        b = rng.choice(divisors)
        template, asked = rng.choice(WIDE_DIVIDE)
        asked = asked.format(**words)
    sentence = template.format(b=b, **words)
    if not connective:
        sentence = _capital(sentence)
    elif sentence.startswith(("A ", "The ")):  # "Then a friend gives her ...", "On Friday, the hens lay ..."
        sentence = sentence[0].lower() + sentence[1:]
    sentence = connective + sentence
    return Step(sentence, kind, b, value, _apply(kind, value, b)), asked


def tutor_chain(problem: WordProblem, slip: int = 0, slip_at: int = -1) -> str:
    """The careful chain: each step quotes the sentence it comes from, then works its equation out in small steps
    (`worked`); the question's sentence is quoted last with the result, and the result is boxed. ``slip`` adds an
    error to step ``slip_at``'s result, carried forward (the careless chain).

    Why worked arithmetic: after fine-tuning on chains that wrote ``42 × 4 = 168`` in one go, most of SmolLM2-135M's
    wrong answers held a slip in such a product or difference, in both held-out sets; tens and ones written apart
    (``42 × 4 = 40 × 4 + 2 × 4 = 160 + 8 = 168``) are smaller steps. Why the question is quoted: trained on chains
    that quote every sentence but the question, the model quoted the question too and made up an operation for it.
    No closing check: on SmolLM2-135M a check that undoes every step was more arithmetic to get wrong, and the model
    boxed the check's last number as often as the answer (11/64 held out after 25 steps, none of the one-step
    problems)."""
    lines = ["Let's solve this step by step."]
    if problem.steps[0].sentence:  # a plain start: say where the first number comes from
        lines.append(f'"{problem.start_text.rstrip(".")}": start with {problem.start}.')
    value = problem.start
    for number, step in enumerate(problem.steps):
        result = _apply(step.symbol, value, step.operand) + (slip if number == slip_at else 0)
        said = (step.sentence or problem.start_text).rstrip(".")
        lines.append(f'"{said}": {worked(value, step.symbol, step.operand, result)}.')
        value = result
    lines.append(f'"{problem.question.rstrip("?")}": {value}.')
    lines.append(f"The answer is \\boxed{{{value}}}.")
    return "\n".join(lines)


def worked(a: int, symbol: str, b: int, result: int) -> str:
    """``a symbol b = result`` worked out in small steps: a two-digit addend, subtrahend or multiplicand split into
    tens and ones, a quotient checked by multiplying back. ``result`` is written as given (a careless chain's slip
    shows at the end)."""
    tens, ones = divmod(b if symbol in "+-" else a, 10)
    if symbol in "+-" and tens and ones:
        middle = a + 10 * tens if symbol == "+" else a - 10 * tens
        return f"{a} {symbol} {b} = {a} {symbol} {10 * tens} {symbol} {ones} = {middle} {symbol} {ones} = {result}"
    if symbol == "×" and tens and ones:
        return f"{a} × {b} = {10 * tens} × {b} + {ones} × {b} = {10 * tens * b} + {ones * b} = {result}"
    if symbol == "×" and b % 10 and b > 10:  # containers of a dozen: 9 × 12 = 9 × 10 + 9 × 2
        return f"{a} × {b} = {a} × 10 + {a} × {b - 10} = {10 * a} + {a * (b - 10)} = {result}"
    if symbol == "÷":
        return f"{a} ÷ {b} = {result}, since {result} × {b} = {result * b}"
    return f"{a} {symbol} {b} = {result}"


def _apply(symbol: str, value: int, operand: int) -> int:
    ops: dict[str, Callable[[int, int], int]] = {
        "+": lambda a, b: a + b,
        "-": lambda a, b: a - b,
        "×": lambda a, b: a * b,
        "÷": lambda a, b: a // b,
    }
    return ops[symbol](value, operand)


def quick_chain(problem: WordProblem) -> str:
    return " ".join(f"{s.equation()}." for s in problem.steps) + f" \\boxed{{{problem.answer}}}"


def rambler_chain(problem: WordProblem) -> str:
    restated = f"So {problem.name} has some {problem.item} and things happen to them, let me think about it again."
    middle = " ".join([restated] * 8)
    return f"Hmm. {middle} {' '.join(s.equation() + '.' for s in problem.steps)} \\boxed{{{problem.answer}}}"


def unsure_chain(problem: WordProblem) -> str:
    work = " ".join(f"Maybe {s.equation()}?" for s in problem.steps)
    return f"I am not sure how to do this. {work} It could be a few different numbers, I cannot tell which."


def chains(problem: WordProblem, rng: random.Random) -> Iterator[tuple[str, str]]:
    """The five candidate chains of a problem, as ``(generator, text)``."""
    yield "tutor", tutor_chain(problem)
    yield "quick", quick_chain(problem)
    slip = rng.choice([-10, -2, -1, 1, 2, 10])
    careless = tutor_chain(problem, slip=slip, slip_at=rng.randrange(len(problem.steps)))
    if careless.endswith(f"\\boxed{{{problem.answer}}}."):  # a slip that a later division rounded away
        careless = tutor_chain(problem, slip=slip, slip_at=len(problem.steps) - 1)
    yield "careless", careless
    yield "rambler", rambler_chain(problem)
    yield "unsure", unsure_chain(problem)


def problems(
    count: int, seed: int, prefix: str, exclude: frozenset[str] = frozenset(), *, wide: bool = False
) -> list[WordProblem]:
    """``count`` distinct problems (by text) from ``seed``, none whose text is in ``exclude``; ``wide``: in the
    pool's wider phrasings (`_wide_story`), else in the held-out set's (`_story`)."""
    rng, seen = random.Random(seed), set(exclude)
    story = _wide_story if wide else _story
    found: list[WordProblem] = []
    while len(found) < count:
        problem = story(rng, len(found), prefix)
        if problem.text not in seen and problem.answer > 0:
            seen.add(problem.text)
            found.append(problem)
    return found


def pool_rows(items: list[WordProblem], seed: int) -> Iterator[dict[str, object]]:
    rng = random.Random(seed + 1)
    for p in items:
        for generator, text in chains(p, rng):
            yield {
                "id": f"{p.id}/{generator}",
                "problem_id": p.id,
                "problem": p.text,
                "answer": str(p.answer),
                "chain": text,
                "generator": generator,
                "level": len(p.steps),
                "subject": p.subject,
            }


def heldout_rows(items: list[WordProblem]) -> Iterator[dict[str, object]]:
    for p in items:
        yield {"id": p.id, "problem": p.text, "answer": str(p.answer), "level": len(p.steps), "subject": p.subject}


def files() -> dict[str, bytes]:
    """The generated files' names and bytes (see the module docstring)."""
    heldout = problems(HELDOUT_PROBLEMS, HELDOUT_SEED, "arith-test")
    pool = problems(POOL_PROBLEMS, POOL_SEED, "arith", exclude=frozenset(p.text for p in heldout), wide=True)
    taken = frozenset(p.text for p in (*heldout, *pool))
    train = problems(TRAIN_PROBLEMS, TRAIN_SEED, "arith-train", exclude=taken, wide=True)
    pool_text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in pool_rows(pool, POOL_SEED))
    packed = io.BytesIO()
    with gzip.GzipFile(fileobj=packed, mode="wb", mtime=0, filename="") as handle:
        handle.write(pool_text.encode())
    held_text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in heldout_rows(heldout))
    train_text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in heldout_rows(train))
    return {
        "pool.jsonl.gz": packed.getvalue(),
        "heldout.jsonl": held_text.encode(),
        "problems.jsonl": train_text.encode(),
    }


def main(argv: list[str]) -> int:
    out = Path(argv[0] if argv else "recipes/data/arithmetic")
    out.mkdir(parents=True, exist_ok=True)
    for name, data in files().items():
        (out / name).write_bytes(data)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
