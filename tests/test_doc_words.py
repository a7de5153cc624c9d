"""README.md and the docs speak to users: no words about how this repository's work is organised, one figure for the
demo's time, a README a newcomer reads in five minutes, and links in it that resolve.

The docs are read by people who use limo, not by the people who built it: an issue number as a goal ("issue 60's
bar"), who ran what ("the lead's hidden pools", "this session's tests", "this landing"), or how one remote runner moved
files (``$OUT``, "the device tool's 64 MiB", "carried there") means nothing to them. Files with "history" in their
name keep dated accounts as they were written and are excepted. The demo's time is measured once, in
docs/performance.md ("Demo"); every other place that states it must state the same figure (the README must).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.shared_data import REPO_ROOT

# The project's own before-stop check looks for the first line's words; the rest widen it to the same kinds of word.
JARGON = re.compile(
    r"""issue\ [0-9]+('s)?\ (bar|goal) | the\ (lead|helper)'s | this\ (session|landing) | session's | \$OUT
    | device\ tool | 64\ MiB | carried\ there
    | \bissues?\ \#?[0-9]+ | \bthe\ issue's\b | \bthe\ lead\b | \bsessions?\b | \blandings?\b | \bthe\ tool's\b
    | \blent\ to\b | \bremote\ runner
    | issue-[0-9]+ | \bthe\ hidden\ sets?\b | \bthe\ bar\ set\ for\b | \bthe\ bar\ holds\b | \btoday's\b
    | \bkept\ on\ principle\b""",
    re.IGNORECASE | re.VERBOSE,
)
DURATION = re.compile(r"\b(\d+) min (\d+) s\b")
SPEAKS_OF_THE_DEMO = re.compile(r"make demo|\bthe demo\b|\bdemo's\b", re.IGNORECASE)
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)|!\[[^\]]*\]\(([^)\s]+)\)")
README_LINES = 260
FIRST_SCREEN = 40
# a commit hash outside code quotes, and a date near it: a reader cannot date a figure from a hash alone
COMMIT = re.compile(r"(?<![\w/#.`-])(?=[0-9a-f]*[a-f])(?=[0-9a-f]*[0-9])[0-9a-f]{7,12}(?![\w/.`-])")
DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
DATED_DOCS = ("docs/performance.md", "docs/grader.md")  # where figures are dated: a hash never stands alone
HOME_CODE_WIDTH = 80  # characters of a line in docs/index.md's code blocks: 688 px of code at 1280 px, 8 px each


def user_docs() -> list[str]:
    """README.md and every page under docs/, less the histories."""
    pages = sorted(p.relative_to(REPO_ROOT).as_posix() for p in (REPO_ROOT / "docs").rglob("*.md"))
    return ["README.md", *(p for p in pages if "history" not in Path(p).name)]


def jargon(text: str) -> list[tuple[int, str]]:
    """``(line, words)`` for every place the text speaks of how the work is organised."""
    return [(n, m.group(0)) for n, line in enumerate(text.splitlines(), 1) for m in JARGON.finditer(line)]


def bare_commits(text: str) -> list[str]:
    """Commit hashes with no date within the 80 characters before them or the 40 after."""
    return [m.group(0) for m in COMMIT.finditer(text) if not DATE.search(text[max(0, m.start() - 80) : m.end() + 40])]


def code_lines(text: str) -> list[str]:
    """The lines of a Markdown text's fenced code blocks."""
    return [line for block in re.findall(r"```[a-z]*\n(.*?)```", text, re.DOTALL) for line in block.splitlines()]


def first_commands(text: str) -> list[str]:
    """The commands of a Markdown text's first bash block: continued lines joined, comments and spacing dropped."""
    block = re.search(r"```bash\n(.*?)```", text, re.DOTALL)
    assert block, "no bash block"
    joined = re.sub(r"\\\n", " ", block[1])
    return [" ".join(line.split("#")[0].split()) for line in joined.splitlines() if line.strip()]


def units(text: str) -> list[str]:
    """Paragraphs, with each table row a unit of its own (a row of a table is one fact)."""
    found, paragraph = [], []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|") or not line.strip():
            if paragraph:
                found.append(" ".join(paragraph))
                paragraph = []
            if line.startswith("|"):
                found.append(line)
        else:
            paragraph.append(line.strip())
    return found


def demo_times(text: str) -> set[str]:
    """Every "N min N s" said in a paragraph or table row that speaks of the demo."""
    spoken = [unit for unit in units(text) if SPEAKS_OF_THE_DEMO.search(unit)]
    return {f"{m} min {s} s" for unit in spoken for m, s in DURATION.findall(unit)}


def measured_demo_time() -> str:
    """The figure of docs/performance.md's "Demo" section: the one place the demo's time is measured."""
    text = (REPO_ROOT / "docs" / "performance.md").read_text()
    section = text[text.index("\n### Demo\n") :]
    section = section[: section.index("\n## ", 1)]
    found = DURATION.search(section)
    assert found, "docs/performance.md's Demo section states no time (N min N s)"
    return found.group(0)


def github_slug(heading: str) -> str:
    """The anchor GitHub (and mkdocs.yml's toc) gives a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """The anchors of a Markdown file's headings (outside code blocks), numbered as GitHub numbers repeats."""
    seen: dict[str, int] = {}
    found, fenced = set(), False
    for line in path.read_text().splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and (m := re.match(r"#{1,6} (.+)", line)):
            slug = github_slug(m.group(1))
            found.add(slug if slug not in seen else f"{slug}-{seen[slug]}")
            seen[slug] = seen.get(slug, 0) + 1
    return found


def broken_links(doc: Path) -> list[str]:
    """Relative links (and their anchors) in ``doc`` that name nothing in the repository."""
    broken = []
    for n, line in enumerate(doc.read_text().splitlines(), 1):
        for m in LINK.finditer(line):
            target = m.group(1) or m.group(2)
            if re.match(r"[a-z]+:", target):
                continue  # https:, mailto:: not the repository's
            path, _, anchor = target.partition("#")
            where = (doc.parent / path).resolve() if path else doc
            if not where.exists():
                broken.append(f"{doc.name}:{n}: {target}")
            elif anchor and where.suffix == ".md" and anchor not in anchors(where):
                broken.append(f"{doc.name}:{n}: {target} (no such heading)")
    return broken


@pytest.mark.parametrize("doc", user_docs())
def test_docs_speak_to_users(doc):
    assert [f"{doc}:{n}: {words}" for n, words in jargon((REPO_ROOT / doc).read_text())] == []


@pytest.mark.parametrize("doc", DATED_DOCS)
def test_a_commit_hash_is_never_the_only_reference(doc):
    assert bare_commits((REPO_ROOT / doc).read_text()) == []


def test_the_home_pages_code_fits_the_site_at_1280_px():
    """The docs site's home page shows its commands whole: no code line wider than its column at 1280 px."""
    long = [line for line in code_lines((REPO_ROOT / "docs" / "index.md").read_text()) if len(line) > HOME_CODE_WIDTH]
    assert long == []


def test_readme_and_the_docs_home_agree_on_commands_extras_and_layouts():
    """The same three commands (the site's split at line ends), the same extras table, the same layouts, and every
    extra of pyproject.toml in the table."""
    import tomllib

    readme, home = ((REPO_ROOT / f).read_text() for f in ("README.md", "docs/index.md"))
    assert first_commands(readme) == first_commands(home) and len(first_commands(home)) == 3
    extras = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    rows = [[line for line in t.splitlines() if re.match(r"\| `(\w+)` \|", line) and line.split("`")[1] in extras]
            for t in (readme, home)]  # fmt: skip
    assert rows[0] == rows[1] and sorted(row.split("`")[1] for row in rows[1]) == sorted(extras)
    layouts = [re.search(r"\((GAIR/LIMO, [^)]*)\)", " ".join(t.split()))[1] for t in (readme, home)]
    assert layouts[0] == layouts[1]


def test_the_demo_has_one_time():
    figure = measured_demo_time()
    stated = {doc: demo_times((REPO_ROOT / doc).read_text()) for doc in user_docs()}
    assert figure in stated["README.md"], "README must state the demo's measured time, as docs/performance.md has it"
    assert {doc: times for doc, times in stated.items() if times - {figure}} == {}


def test_readme_is_short_and_opens_with_the_start():
    lines = (REPO_ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= README_LINES
    first_screen = "\n".join(lines[:FIRST_SCREEN])
    for needed in ("make setup", "pip install -e '.[", "limo.curate", "limo.train", "limo.evaluate", "ingest.source="):
        assert needed in first_screen, needed
    text = "\n".join(lines)
    assert "make demo" in text and "make test" in text


def test_every_relative_link_in_readme_resolves():
    assert broken_links(REPO_ROOT / "README.md") == []


def test_the_checks_catch_what_they_look_for(tmp_path):
    """The word list, the demo's figures and the link check each fail on what they are for, and pass the rest."""
    for said in (
        "issue 60's bar",
        "issue 12's goal",
        "the lead's hidden pools",
        "this landing",
        "this session's tests",
        "--out $OUT",
        "the device tool's 64 MiB",
        "carried there",
        "not the issue's 240",
        "[details](history.md#grader-issue-33-item-2-2026-11-23)",
        "so the hidden sets may hold more",
        "The bar set for this is met",
        "the bar holds on the mean",
        "on today's pool",
        "a peer-suite row kept on principle",
    ):
        assert jargon(said), said
    for fine in ("the server runs in a process group of its own", "start_new_session=True", "a lead of 6 problems",
                 "the pool of today", "#adaptive-rollouts-re-measured-with-todays-grader"):  # fmt: skip
        assert not jargon(fine), fine
    assert bare_commits("x1.18 at f8c87a8; `9f92df5a87ce` (a problem id)") == ["f8c87a8"]
    assert bare_commits("2026-11-25 21:41 UTC at e386506; the code before (2026-11-25, commit dc4e25f)") == []
    text = "`make demo` took **9 min 38 s**.\n\n| Demo | the demo | **10 min 46 s** |\n\nThe discover loop: 2 min 5 s."
    assert demo_times(text) == {"9 min 38 s", "10 min 46 s"}
    assert github_slug("Before and after (`make demo`)") == "before-and-after-make-demo"
    assert github_slug("Three seeds (2026-11-27, 16:43-18:44 UTC)") == "three-seeds-2026-11-27-1643-1844-utc"
    (tmp_path / "a.md").write_text("# Title\n## Part (one)\n[ok](a.md#part-one) [gone](b.md) [no](a.md#part-two)\n")
    assert broken_links(tmp_path / "a.md") == ["a.md:3: b.md", "a.md:3: a.md#part-two (no such heading)"]
