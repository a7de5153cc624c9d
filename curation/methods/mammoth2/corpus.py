"""The embedded default corpus: web-page-like documents built offline, so the MAmmoTH2 recipe runs anywhere.

Math pages come from CHAMP: question-and-answer pages with the human solution, forum threads where a
strong model's unaided attempt is the reply, and worksheets of several problems. Non-math pages come from
text that every installation has: the documentation, package descriptions (with their changelogs, so
digits and version numbers appear on both sides and the classifier cannot win on digits alone) and
docstrings of the installed distributions.

Three choices keep the held-out measurement honest:
- seed (training) pages and web (test) pages come from disjoint CHAMP categories, and non-math pages
  from disjoint distributions (split by a hash of the distribution name);
- page chrome (site header, "asked 3 days ago", share links, footers) is drawn independently of the label,
  so boilerplate says nothing about the class;
- the web dump carries a ``gold_label`` field that recall never reads; reports use it to measure
  precision and recall on pages the classifier has not seen.

The build also writes a *teacher transcript* for the `replay` backend: what a capable extractor and
refiner would answer for each page, keyed by the request ids `extract` and `refine` use. CHAMP pages
replay their problems and solutions; other pages replay an empty list; a fixed, hash-chosen share of
first attempts is malformed (and a few pages never yield valid JSON), so the offline run exercises the
retry and reject paths. Real users point the recipe at their own dump and a real model instead.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import random
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from curation.methods.mammoth2.extract import extract_request_id, pair_id
from curation.methods.mammoth2.refine import refine_request_id
from eval.problem import Problem
from eval.records import sha256_file, write_json, write_jsonl

log = logging.getLogger(__name__)

MATH, OTHER = "math", "other"
DOC_SUFFIXES = (".md", ".rst", ".txt")
SKIP_DISTRIBUTIONS = ("champ-dataset", "limo")  # would leak CHAMP text into negatives / is this project
SKIP_FILE_NAMES = ("RECORD", "WHEEL", "INSTALLER", "REQUESTED", "entry_points.txt", "top_level.txt", "direct_url.json")

_SITES = ("mathhelpforum.net", "askmath.io", "forum.numbers.org", "learnhub.edu", "stackforum.dev", "qa.example.org")
_USERS = ("alice_k", "bob1987", "quiet_fox", "t.nguyen", "mkz", "learner42", "dr_helper", "jm2024")


@dataclass(frozen=True)
class Page:
    """One document of the corpus.

    Attributes:
        id: Unique id (``champ/<problem>/<kind>`` or ``pkg/<distribution>/<n>``).
        text: The page text, chrome included.
        url: A plausible URL (provenance only; recall scores the text).
        gold_label: ``math`` or ``other``; never read by recall, used to measure it.
        source: ``champ`` or ``package``.
        group: CHAMP category or distribution name (the unit of the seed/web split).
        pairs: For CHAMP pages, the ``(problem_id, question, answer)`` pairs the page contains.
    """

    id: str
    text: str
    url: str
    gold_label: str
    source: str
    group: str
    pairs: tuple[tuple[str, str, str], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k != "pairs"}


@dataclass(frozen=True)
class CorpusFiles:
    """Where `build_embedded_corpus` wrote the corpus, and its accounting."""

    seed_positive: Path
    seed_negative: Path
    web: Path
    teacher_transcript: Path
    summary: dict[str, Any] = field(default_factory=dict)


# ------------------------------------------------------------------------------------------------- chrome


def _rng(*parts: object) -> random.Random:
    return random.Random(hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest())


def _slug(text: str, words: int = 8) -> str:
    return "-".join(re.findall(r"[a-z0-9]+", text.lower())[:words]) or "page"


def _title(text: str, limit: int = 80) -> str:
    first = re.split(r"(?<=[.?!])\s", text.strip(), maxsplit=1)[0]
    return first if len(first) <= limit else first[: limit - 3].rstrip() + "..."


def _chrome(body: str, title: str, rng: random.Random) -> str:
    """Wrap ``body`` in site chrome drawn from ``rng`` alone (never from the label)."""
    site = rng.choice(_SITES)
    header = rng.choice(
        [
            f"{site}\nHome | Questions | Tags | Users | About\n\n{title}",
            f"{title} - {site}\nSign in  Register  Search",
            f"{site} > Forum > Topic\n{title}",
            f"{title}\nPosted {rng.randint(1, 28)} {rng.choice(['hours', 'days', 'months'])} ago by "
            f"{rng.choice(_USERS)} | {rng.randint(10, 9999)} views",
        ]
    )
    footer = rng.choice(
        [
            f"Share  Improve this page  Follow\n{rng.randint(0, 40)} comments",
            f"(c) {rng.randint(2009, 2024)} {site}. Privacy | Terms | Contact",
            f"Related: {rng.randint(2, 12)} similar pages. Was this helpful? Yes / No",
            f"Reply  Quote  Report\nLast edited {rng.randint(1, 12)}/{rng.randint(1, 28)}/{rng.randint(2010, 2024)}",
        ]
    )
    return f"{header}\n\n{body}\n\n{footer}"


# ------------------------------------------------------------------------------------------------- math pages


def champ_pages(
    problems: Sequence[Problem], attempts: dict[str, list[str]], *, seed: int, worksheet_size: int = 3
) -> list[Page]:
    """Math pages for ``problems``: a Q&A page each, a forum page per model attempt, worksheets of several.

    Args:
        problems: CHAMP problems (with solutions).
        attempts: Problem id -> model solution texts to post as forum replies.
        seed: Seeds the chrome and worksheet grouping.
        worksheet_size: Problems per worksheet page.

    Returns:
        Pages in a deterministic order.
    """
    pages = [_qa_page(p, seed) for p in problems]
    for problem in problems:
        pages.extend(_forum_page(problem, text, k, seed) for k, text in enumerate(attempts.get(problem.id, [])))
    order = sorted(problems, key=lambda p: hashlib.sha256(f"{seed}:{p.id}".encode()).hexdigest())
    for start in range(0, len(order), worksheet_size):
        pages.append(_worksheet_page(order[start : start + worksheet_size], start // worksheet_size, seed))
    return pages


def _solution_with_answer(problem: Problem) -> str:
    return f"{problem.solution or ''}\nAnswer: {problem.answer}"


def _qa_page(problem: Problem, seed: int) -> Page:
    rng = _rng(seed, problem.id, "qa")
    body = f"Question\n{problem.problem}\n\n{rng.randint(1, 5)} Answers\n\n{_solution_with_answer(problem)}"
    return Page(
        id=f"champ/{problem.id}/qa",
        text=_chrome(body, _title(problem.problem), rng),
        url=f"https://{rng.choice(_SITES)}/questions/{rng.randint(10**5, 10**6)}/{_slug(problem.problem)}",
        gold_label=MATH,
        source="champ",
        group=str(problem.subject),
        pairs=((problem.id, problem.problem, _solution_with_answer(problem)),),
    )


def _forum_page(problem: Problem, attempt: str, index: int, seed: int) -> Page:
    rng = _rng(seed, problem.id, "forum", index)
    user, helper = rng.sample(_USERS, 2)
    question = f"{user} wrote:\n{problem.problem}\nAny hints? Thanks!"
    body = f"{question}\n\nRe: {_title(problem.problem)}\n{helper} wrote:\n{attempt}"
    return Page(
        id=f"champ/{problem.id}/forum-{index}",
        text=_chrome(body, _title(problem.problem), rng),
        url=f"https://{rng.choice(_SITES)}/topic/{rng.randint(10**4, 10**5)}-{_slug(problem.problem)}",
        gold_label=MATH,
        source="champ",
        group=str(problem.subject),
        pairs=((problem.id, problem.problem, attempt),),
    )


def _worksheet_page(problems: Sequence[Problem], index: int, seed: int) -> Page:
    rng = _rng(seed, "worksheet", index)
    blocks = [f"Problem {k}. {p.problem}\nSolution. {_solution_with_answer(p)}" for k, p in enumerate(problems, 1)]
    title = f"Practice set {index + 1}: {problems[0].subject} problems with solutions"
    return Page(
        id=f"champ/worksheet-{problems[0].subject}-{index}",
        text=_chrome("\n\n".join(blocks), title, rng),
        url=f"https://{rng.choice(_SITES)}/practice/{index + 1}",
        gold_label=MATH,
        source="champ",
        group=str(problems[0].subject),
        pairs=tuple((p.id, p.problem, _solution_with_answer(p)) for p in problems),
    )


# ------------------------------------------------------------------------------------------------- other pages


def package_texts(distribution: metadata.Distribution, *, max_py_files: int, seed: int) -> Iterator[str]:
    """Non-math text shipped with one installed distribution: its description, doc files and docstrings."""
    description = distribution.metadata.get_payload() if hasattr(distribution.metadata, "get_payload") else None
    if isinstance(description, str) and description.strip():
        yield description
    files = sorted(str(f) for f in distribution.files or ())
    for name in files:
        if name.endswith(DOC_SUFFIXES) and Path(name).name not in SKIP_FILE_NAMES:
            text = _read_text(distribution.locate_file(name))
            if text:
                yield text
    python_files = [name for name in files if name.endswith(".py")]
    for name in _rng(seed, distribution.metadata["Name"]).sample(python_files, min(max_py_files, len(python_files))):
        text = _docstrings(distribution.locate_file(name))
        if text:
            yield text


def _read_text(path: Any, limit: int = 200_000) -> str | None:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read(limit)
    except (OSError, UnicodeDecodeError):
        return None


_DOCSTRING = re.compile(r'^[ \t]*(?:(?:async\s+)?def|class)\s+(\w+)[^\n]*\n[ \t]*[rRbB]?"""(.*?)"""', re.M | re.S)


def _docstrings(path: Any) -> str | None:
    """Class and function docstrings of one Python file, as an API-reference page.

    A regular expression rather than `ast`: parsing every file of large packages took most of the build
    time, and a missed or extra docstring only changes which harmless text lands in the corpus.
    """
    source = _read_text(path, limit=200_000)
    if not source:
        return None
    parts = [f"{name}\n{inspect.cleandoc(doc)}" for name, doc in _DOCSTRING.findall(source) if len(doc) > 40]
    return "\n\n".join(parts) or None


def chunk_text(text: str, *, min_chars: int = 300, max_chars: int = 2500) -> list[str]:
    """Split text at blank lines into chunks of ``min_chars``..``max_chars`` (shorter tails are dropped)."""
    chunks, current = [], ""
    for paragraph in re.split(r"\n\s*\n", text):
        paragraph = paragraph.strip()[:max_chars]
        if current and len(current) + len(paragraph) + 2 > max_chars:
            chunks.append(current)
            current = ""
        current = f"{current}\n\n{paragraph}" if current else paragraph
    chunks.append(current)
    return [c for c in chunks if len(c) >= min_chars]


def package_pages(
    distributions: Iterable[metadata.Distribution], *, seed: int, max_pages_per_package: int, max_py_files: int
) -> list[Page]:
    """Non-math pages from installed distributions, at most ``max_pages_per_package`` each."""
    pages: list[Page] = []
    for dist in distributions:
        name = dist.metadata["Name"]
        chunks = [c for text in package_texts(dist, max_py_files=max_py_files, seed=seed) for c in chunk_text(text)]
        rng = _rng(seed, "pkg", name)
        chosen = rng.sample(chunks, min(max_pages_per_package, len(chunks)))
        for k, chunk in enumerate(chosen):
            pages.append(
                Page(
                    id=f"pkg/{name}/{k}",
                    text=_chrome(chunk, f"{name} documentation", _rng(seed, name, k)),
                    url=f"https://docs.example.org/{name}/{k}",
                    gold_label=OTHER,
                    source="package",
                    group=name,
                )
            )
    return pages


def installed_distributions() -> list[metadata.Distribution]:
    """Installed distributions, one per name, sorted by name, minus those that would leak CHAMP text."""
    by_name: dict[str, metadata.Distribution] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name and name.lower() not in SKIP_DISTRIBUTIONS:
            by_name.setdefault(name.lower(), dist)
    return [by_name[k] for k in sorted(by_name)]


def is_seed_group(name: str, *, seed: int, fraction: float) -> bool:
    """Whether a distribution's pages go to the seed (training) side of the split."""
    digest = hashlib.sha256(f"{seed}:{name.lower()}".encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 < fraction


# ------------------------------------------------------------------------------------------------- build


@dataclass(frozen=True)
class CorpusSpec:
    """How to build the embedded corpus (values come from the recipe).

    Attributes:
        seed_categories: CHAMP categories whose pages are positive seeds.
        web_categories: CHAMP categories whose pages go into the web dump (disjoint from the seeds).
        forum_pages_per_problem: Model attempts posted as forum pages per problem.
        seed_package_fraction: Share of distributions whose pages are negative seeds (the rest: web dump).
        max_pages_per_package: Cap per distribution, so no single package dominates.
        max_py_files: Python files per distribution read for docstrings.
        malformed_every: In the teacher transcript, about one page in this many gets a malformed first attempt.
        never_valid_every: About one page in this many never yields valid JSON.
        max_attempts: Extraction attempts per page (the transcript covers each).
        seed: Seeds every random choice.
    """

    seed_categories: tuple[str, ...]
    web_categories: tuple[str, ...]
    forum_pages_per_problem: int = 2
    seed_package_fraction: float = 0.6
    max_pages_per_package: int = 40
    max_py_files: int = 8
    malformed_every: int = 20
    never_valid_every: int = 60
    max_attempts: int = 3
    seed: int = 0

    def __post_init__(self) -> None:
        overlap = set(self.seed_categories) & set(self.web_categories)
        if overlap:
            raise ValueError(f"corpus: seed_categories and web_categories overlap on {sorted(overlap)}")


def build_embedded_corpus(
    out_dir: str | Path,
    spec: CorpusSpec,
    problems: Sequence[Problem],
    attempts: dict[str, list[str]],
    distributions: Sequence[metadata.Distribution] | None = None,
) -> CorpusFiles:
    """Build the embedded corpus and its teacher transcript under ``out_dir``.

    Args:
        out_dir: Output folder (created).
        spec: Categories, caps and seed.
        problems: CHAMP problems.
        attempts: Problem id -> model attempts for forum pages.
        distributions: Installed distributions to draw non-math text from (default: all installed).

    Returns:
        The written files and a summary (counts per side and label, distributions used, checksums).

    Raises:
        ValueError: A category names no problem.
    """
    known = {str(p.subject) for p in problems}
    missing = sorted(set(spec.seed_categories + spec.web_categories) - known)
    if missing:
        raise ValueError(f"corpus: unknown CHAMP categories {missing}; known: {sorted(known)}")
    math_pages = {
        side: champ_pages([p for p in problems if p.subject in cats], attempts, seed=spec.seed)
        for side, cats in (("seed", spec.seed_categories), ("web", spec.web_categories))
    }
    dists = list(installed_distributions() if distributions is None else distributions)
    other = package_pages(
        dists, seed=spec.seed, max_pages_per_package=spec.max_pages_per_package, max_py_files=spec.max_py_files
    )
    seed_other = [p for p in other if is_seed_group(p.group, seed=spec.seed, fraction=spec.seed_package_fraction)]
    web_other = [p for p in other if not is_seed_group(p.group, seed=spec.seed, fraction=spec.seed_package_fraction)]
    web = math_pages["web"] + web_other
    _rng(spec.seed, "web-order").shuffle(web)
    by_id = {p.id: p for p in problems}
    return _write_corpus(Path(out_dir), spec, math_pages["seed"], seed_other, web, dists, by_id)


def _write_corpus(
    out: Path,
    spec: CorpusSpec,
    seed_positive: list[Page],
    seed_negative: list[Page],
    web: list[Page],
    dists: Sequence[metadata.Distribution],
    problems: dict[str, Problem],
) -> CorpusFiles:
    files = CorpusFiles(
        seed_positive=out / "seed_positive.jsonl",
        seed_negative=out / "seed_negative.jsonl",
        web=out / "web" / "web.jsonl",
        teacher_transcript=out / "teacher_transcript.jsonl",
    )
    write_jsonl(files.seed_positive, seed_positive)
    write_jsonl(files.seed_negative, seed_negative)
    write_jsonl(files.web, web)
    write_jsonl(files.teacher_transcript, teacher_transcript(web, spec, problems))
    summary = {
        "spec": asdict(spec),
        "counts": {
            "seed_positive": len(seed_positive),
            "seed_negative": len(seed_negative),
            "web_math": sum(p.gold_label == MATH for p in web),
            "web_other": sum(p.gold_label == OTHER for p in web),
        },
        "distributions": sorted(f"{d.metadata['Name']}=={d.version}" for d in dists),
        "sha256": {name: sha256_file(getattr(files, name)) for name in ("seed_positive", "seed_negative", "web")},
    }
    write_json(out / "corpus.json", summary)
    return CorpusFiles(files.seed_positive, files.seed_negative, files.web, files.teacher_transcript, summary)


# ------------------------------------------------------------------------------------------------- transcript


def teacher_transcript(
    pages: Iterable[Page], spec: CorpusSpec, problems: dict[str, Problem]
) -> Iterator[dict[str, str]]:
    """Replay rows ``{"id", "text"}`` answering every extraction and refinement request for ``pages``.

    Request ids follow `extract.extract_request_id` / `refine.refine_request_id`; see the module docstring
    for the deliberately malformed share.
    """
    solutions = {}
    for page in pages:
        bucket = int(hashlib.sha256(f"{spec.seed}:{page.id}".encode()).hexdigest()[:8], 16)
        valid = json.dumps([{"question": q, "answer": a} for _, q, a in page.pairs], ensure_ascii=False)
        for attempt in range(spec.max_attempts):
            broken = bucket % spec.never_valid_every == 1 or (attempt == 0 and bucket % spec.malformed_every == 0)
            yield {"id": extract_request_id(page.id, attempt), "text": _malformed(valid) if broken else valid}
        for index, (problem_id, question, _) in enumerate(page.pairs):
            solutions[pair_id(page.id, index)] = (question, problem_id)
    yield from _refine_rows(solutions, problems, spec.max_attempts)


def _malformed(valid: str) -> str:
    """What a model cut off mid-answer writes: a JSON prefix with prose before it."""
    return "Here are the pairs I found:\n" + valid[: max(1, len(valid) // 2)]


def _refine_rows(
    solutions: dict[str, tuple[str, str]], problems: dict[str, Problem], max_attempts: int
) -> Iterator[dict[str, str]]:
    for identifier, (question, problem_id) in solutions.items():
        problem = problems[problem_id]
        steps = [line.strip() for line in (problem.solution or "").splitlines() if line.strip()]
        numbered = "\n".join(f"Step {k}: {line}" for k, line in enumerate(steps, 1))
        answer = f"{numbered}\n\nThe final answer is \\boxed{{{problem.answer}}}."
        text = json.dumps({"question": question, "answer": answer}, ensure_ascii=False)
        for attempt in range(max_attempts):
            yield {"id": refine_request_id(identifier, attempt), "text": text}


def model_attempts(chains: Iterable[Any], *, models: Sequence[str], settings: Sequence[str], per_problem: int) -> dict:
    """Problem id -> up to ``per_problem`` complete model solutions by ``models`` under ``settings``."""
    attempts: dict[str, list[str]] = {}
    for chain in sorted(chains, key=lambda c: c.id):
        if chain.generator in models and chain.prompt_setting in settings and not chain.truncated and chain.text:
            bucket = attempts.setdefault(chain.problem_id, [])
            if len(bucket) < per_problem:
                bucket.append(chain.text)
    return attempts
