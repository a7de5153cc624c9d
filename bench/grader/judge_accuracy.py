"""Benchmark: how good is a judge? Any judge against labelled answer pairs, per answer kind.

The judge is a grader config as recipes write it (``--judge``: a name under ``recipes/grader/`` — ``default``,
``compassverifier``, ``xverify`` — composed by Hydra as a recipe would, or a YAML file with the judge's keys under
``judge:`` or at its top level), with ``key=value`` overrides of its keys (``backend=openai model=<served name>
backend_options.base_url=http://127.0.0.1:8000/v1 order=swap``). It is asked through `eval.grading.judge.build_judge`
(cached in ``--out``, so a rerun resumes and asks nothing twice; both orders under ``order: swap``).

Labelled pairs (`bench.grader.grader_sets`): ``dev`` (``../shared/data/grading_pairs_dev.jsonl``, 190 rows),
``olympiad`` (``tests/assets/grader_cases_olympiad.jsonl``, 323 final lines), ``champ`` and ``champ_r3`` (1,736
hand-labelled CHAMP summaries, text from the installed ``champ-dataset``). Each row is judged with its problem text
where it has one, and graded by the symbolic grader (`eval.grading.grader.grade`) for comparison.

Printed, per answer kind (`answer_kind`, from the gold's shape) and per set and part (``tune`` / ``heldout``, the
split the symbolic grader was tuned against; ``dev`` is never split): rows, rows labelled correct, the judge's
precision, recall and false positives (a wrong answer accepted; an unreadable reply is never an acceptance, and
is counted apart), the symbolic grader's, and how often the judge (where readable) agrees with the symbolic
grader. Under ``order: swap`` also each order alone and the two orders' agreement.

A ``replay`` judge without a replies file needs ``--stand-in``: ``math-verify`` (the default: math-verify 0.9.0
asked with the texts in the preset's slots — gold and response, then exchanged) or ``symbolic`` (our grader's
verdict, the same in both orders). Its verdicts are written as replies in the preset's format and go through the
whole judge path (prompt, replay, strict parse, order combination) — but **a stand-in is not a model judge**:
the table then measures that checker, and the header says so.

Writes ``<out>/judge_accuracy.json`` (the tables) and ``<out>/verdicts.jsonl`` (one row per pair: label, kind,
judge and symbolic verdicts); ``<out>`` defaults to ``outputs/judge_accuracy/<judge name>``.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import os
import platform
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from bench.grader.grader_sets import SETS, Row, build, data_dir  # noqa: E402
from eval.backends.replay import ReplayMissError  # noqa: E402
from eval.grading.grader import grade  # noqa: E402
from eval.grading.judge import SWAP_SUFFIX, JudgeItem, JudgeOptions, JudgeVerdict, build_judge  # noqa: E402
from eval.grading.statements import gold_kind  # noqa: E402
from eval.records import DataError, write_json, write_jsonl  # noqa: E402

JUDGE_SETS = ("dev", "olympiad", "champ", "champ_r3")
STAND_INS = ("math-verify", "symbolic")
GRADER_CONFIGS = REPO / "recipes" / "grader"


# -- the judge ---------------------------------------------------------------------------------------------------
def load_judge(spec: str, overrides: Sequence[str]) -> tuple[str, JudgeOptions]:
    """(name, options) of a grader config name or a YAML file, with ``key=value`` overrides of the judge's keys."""
    from omegaconf import OmegaConf

    from limo.cli.compose import compose

    path = Path(spec)
    if path.suffix in (".yaml", ".yml") and path.resolve().parent == GRADER_CONFIGS.resolve():
        spec = path.stem  # a shipped grader config: composed by name, its defaults list followed
    elif path.is_file():
        node = OmegaConf.load(path)
        if "defaults" in node:
            raise SystemExit(f"judge_accuracy: error: {path} has a defaults list; put it in recipes/grader/, --judge")
        return path.stem, _options(node.get("judge", node), overrides)
    if not (GRADER_CONFIGS / f"{spec}.yaml").is_file():
        known = ", ".join(sorted(p.stem for p in GRADER_CONFIGS.glob("*.yaml")))
        raise SystemExit(f"judge_accuracy: error: no grader config {spec!r} (known: {known}), --judge")
    return spec, _options(compose("demo", [f"grader@evaluate.grader={spec}"]).evaluate.grader.judge, overrides)


def _options(node: Any, overrides: Sequence[str]) -> JudgeOptions:
    from omegaconf import OmegaConf

    from limo.config.sections import to_options

    return to_options(JudgeOptions, OmegaConf.merge(node, OmegaConf.from_dotlist(list(overrides))), "judge")


def stand_in_replies(rows: Sequence[Row], options: JudgeOptions, checker: str) -> list[dict[str, Any]]:
    """Replay rows: ``checker``'s verdict on each pair written as the preset's reply, for each order asked."""
    replies = options.preset_spec.replies
    asks = [("", _checker(checker, "same"))]
    if options.order == "swap":
        asks.append((SWAP_SUFFIX, _checker(checker, "swap")))
    out = []
    for row in rows:
        for suffix, ask in asks:
            verdict = "correct" if ask(row) else "incorrect"
            text = replies[verdict].format(why=f"stand-in {checker}")
            out.append({"problem_id": row["id"] + suffix, "sample_index": 0, "text": text})
    return out


def _checker(name: str, order: str) -> Callable[[Row], bool]:
    if name == "symbolic":
        return lambda row: grade(row["gold"], row["candidate"], problem=row["problem"]).correct
    from math_verify import parse, verify

    def as_gold(text: str) -> Any:  # math-verify's docs: wrap a bare gold in $...$
        return parse(f"${text}$") or parse(text)

    def ask(row: Row) -> bool:
        gold, response = (row["gold"], row["candidate"]) if order == "same" else (row["candidate"], row["gold"])
        try:
            return bool(verify(as_gold(gold), parse(response)))
        except Exception:  # math-verify raises on some inputs; a failure is "not equal", as it documents
            return False

    return ask


def judge_rows(rows: Sequence[Row], options: JudgeOptions, out: Path) -> list[JudgeVerdict]:
    """The judge's verdicts on ``rows`` (keyed by row id for replay), cached in ``out``."""
    judge = build_judge(options, out, "judge-accuracy")
    items = [JudgeItem(r["problem"] or "", r["gold"], r["candidate"], r["id"], 0) for r in rows]
    return judge.judge_many(items)


# -- answer kinds --------------------------------------------------------------------------------------------------
_CHOICE = re.compile(r"^\(?[A-E]\)?$")
_INTEGER = re.compile(r"^[-+]?\d+$")
_CLOSED_FORM = re.compile(r"^[-+]?(?:[\d.,\s{}()^*/+-]|\\[dt]?frac|\\sqrt|\\pi|\\cdot|\\left|\\right|\\!)+$")
_RELATION = re.compile(r"=|<|>|\\(?:le|ge|leq|geq|neq|lt|gt)(?![a-zA-Z])")


def answer_kind(gold: str) -> str:
    """The gold's shape: ``yes/no``, ``none`` (non-existence), ``worded``, ``choice``, ``integer``, ``number``
    (a closed-form constant), ``relation`` (an equation or inequality), ``set/tuple`` or ``expression``."""
    text = re.sub(r"\\text\s*\{([^{}]*)\}", r"\1", gold).replace("$", "").strip()
    words = gold_kind(gold)
    if words in ("yesno", "none", "words"):
        return {"yesno": "yes/no", "none": "none", "words": "worded"}[words]
    if _CHOICE.match(text):
        return "choice"
    if _INTEGER.match(text.replace("{,}", "").replace(",", "")):
        return "integer"
    if _RELATION.search(text):
        return "relation"
    if re.match(r"^\s*(?:\\left)?\s*[\[({]|^\\\{", text) or re.search(r",(?![^{]*\})", text):
        return "set/tuple"
    if _CLOSED_FORM.match(text):
        return "number"
    return "expression"


# -- tallies -------------------------------------------------------------------------------------------------------
@dataclass
class Tally:
    """Counts of one checker against the labels over some rows."""

    n: int = 0
    positives: int = 0
    true_pos: int = 0
    false_pos: int = 0
    unparseable: int = 0
    readable: int = 0
    agree: int = 0  # with the symbolic grader, over readable rows

    def add(self, label: bool, status: str, symbolic: bool | None = None) -> None:
        accepted = status == "correct"
        self.n += 1
        self.positives += label
        self.true_pos += accepted and label
        self.false_pos += accepted and not label
        self.unparseable += status == "unparseable"
        if status != "unparseable" and symbolic is not None:
            self.readable += 1
            self.agree += accepted == symbolic

    def row(self) -> dict[str, Any]:
        accepted = self.true_pos + self.false_pos
        return {
            "n": self.n,
            "labelled_correct": self.positives,
            "precision": self.true_pos / accepted if accepted else None,
            "recall": self.true_pos / self.positives if self.positives else None,
            "false_positives": self.false_pos,
            "unparseable": self.unparseable,
            "agreement_with_symbolic": self.agree / self.readable if self.readable else None,
        }


@dataclass
class Groups:
    """Tallies of the judge and the symbolic grader per group key."""

    judge: dict[str, Tally] = field(default_factory=dict)
    symbolic: dict[str, Tally] = field(default_factory=dict)

    def add(self, key: str, label: bool, judged: str, symbolic: bool) -> None:
        self.judge.setdefault(key, Tally()).add(label, judged, symbolic)
        self.symbolic.setdefault(key, Tally()).add(label, "correct" if symbolic else "incorrect")

    def table(self) -> dict[str, dict[str, Any]]:
        return {k: {"judge": self.judge[k].row(), "symbolic": self.symbolic[k].row()} for k in sorted(self.judge)}


def tabulate(rows: Sequence[Row], verdicts: Sequence[JudgeVerdict], symbolic: Sequence[bool]) -> dict[str, Any]:
    """The tables: by answer kind, by set and part, all rows; under swap also per order and order agreement."""
    kinds, sets, orders = Groups(), Groups(), Groups()
    for row, verdict, sym in zip(rows, verdicts, symbolic, strict=True):
        for key in (answer_kind(row["gold"]), "all"):
            kinds.add(key, row["label"], verdict.status, sym)
        sets.add(
            row["set"] if row["part"] == "dev" else f"{row['set']} {row['part']}", row["label"], verdict.status, sym
        )
        for name, asked in (verdict.orders or {}).items():
            orders.add(name, row["label"], asked.status, sym)
        if verdict.orders:
            orders.add("both (accepted when both say correct)", row["label"], verdict.status, sym)
    result = {"by_kind": kinds.table(), "by_set": sets.table()}
    if any(v.orders for v in verdicts):
        result["by_order"] = orders.table()
        result["order_agreement"] = _order_agreement(verdicts)
    return result


def _order_agreement(verdicts: Iterable[JudgeVerdict]) -> dict[str, int]:
    pairs = [(v.orders["same"].status, v.orders["swap"].status) for v in verdicts if v.orders]
    readable = [(a, b) for a, b in pairs if "unparseable" not in (a, b)]
    return {"asked_twice": len(pairs), "both_readable": len(readable), "disagree": sum(a != b for a, b in readable)}


# -- printing ------------------------------------------------------------------------------------------------------
def _fmt(value: Any) -> str:
    return "—" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


def render(title: str, table: dict[str, dict[str, Any]], first: str) -> list[str]:
    """One markdown table: the judge's and the symbolic grader's precision, recall and false positives."""
    lines = [
        "",
        f"### {title}",
        "",
        f"| {first} | rows | labelled correct | judge P | judge R | judge FP | unparseable | symbolic P | symbolic R "
        "| symbolic FP | judge = symbolic |",
        "|---|" + "---|" * 10,
    ]
    for key, both in table.items():
        j, s = both["judge"], both["symbolic"]
        cells = [j["n"], j["labelled_correct"], j["precision"], j["recall"], j["false_positives"], j["unparseable"]]
        cells += [s["precision"], s["recall"], s["false_positives"], j["agreement_with_symbolic"]]
        lines.append(f"| {key} | " + " | ".join(_fmt(c) for c in cells) + " |")
    return lines


def report(header: list[str], result: dict[str, Any]) -> str:
    lines = list(header)
    lines += render("By answer kind (all sets)", result["by_kind"], "kind")
    lines += render("By set and part", result["by_set"], "set part")
    if "by_order" in result:
        lines += render("Each order alone, and both (order: swap)", result["by_order"], "asks")
        agreement = result["order_agreement"]
        lines += [
            "",
            f"Orders: {agreement['asked_twice']} rows asked twice, {agreement['both_readable']} with both replies "
            f"readable, {agreement['disagree']} where the two orders disagree.",
        ]
    lines += [
        "",
        "P = precision (of the accepted, the share labelled correct); R = recall; FP = wrong answers "
        "accepted; an unreadable reply is never an acceptance. judge = symbolic: agreement over readable replies.",
    ]
    return "\n".join(lines)


# -- main ------------------------------------------------------------------------------------------------------------
def load_rows(names: Sequence[str], limit: int | None) -> list[Row]:
    """The labelled rows of ``names`` (the first ``limit`` of each); ``dev`` is skipped, said so, without data."""
    if "dev" in names and not (data_dir() / "grading_pairs_dev.jsonl").is_file():
        print(f"(dev set skipped: {data_dir() / 'grading_pairs_dev.jsonl'} is absent; set LIMO_SHARED_DATA)")
        names = [n for n in names if n != "dev"]
    rows: list[Row] = []
    for set_rows in build(list(names)).values():
        rows += set_rows[:limit] if limit else set_rows
    return rows


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("overrides", nargs="*", help="key=value overrides of the judge's keys")
    parser.add_argument("--judge", default="default", help="grader config name (recipes/grader) or YAML file")
    parser.add_argument("--stand-in", choices=STAND_INS, default=None, help="for a replay judge with no replies")
    parser.add_argument("--sets", default=",".join(JUDGE_SETS), help=f"comma-separated, of {', '.join(SETS)}")
    parser.add_argument("--limit", type=int, default=None, help="the first N rows of each set")
    parser.add_argument(
        "--out", type=Path, default=None, help="cache and results (default outputs/judge_accuracy/<name>)"
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        name, options = load_judge(args.judge, args.overrides)
    except ValueError as error:  # an unknown key, preset or order: one line naming it
        raise SystemExit(f"judge_accuracy: error: {error}") from None
    out = args.out or REPO / "outputs" / "judge_accuracy" / name
    out.mkdir(parents=True, exist_ok=True)
    rows = load_rows([s for s in args.sets.split(",") if s], args.limit)
    stand_in = args.stand_in
    if options.backend == "replay" and not (options.backend_options or {}).get("path"):
        stand_in = stand_in or "math-verify"
    if stand_in:
        replies = out / f"stand-in-{stand_in}-{options.preset}.jsonl"
        write_jsonl(replies, stand_in_replies(rows, options, stand_in))
        # The label names the replies' digest: the cache (keyed by model) never serves another run's stand-in.
        label = f"stand-in:{stand_in}:{hashlib.sha256(replies.read_bytes()).hexdigest()[:12]}"
        options = replace(options, backend="replay", model=label, backend_options={"path": str(replies)})
    try:
        verdicts = judge_rows(rows, options, out)
    except (ReplayMissError, DataError) as error:  # a replies file that is absent or lacks a pair: one line
        raise SystemExit(f"judge_accuracy: error: {error}, {(options.backend_options or {}).get('path')}") from None
    symbolic = [grade(r["gold"], r["candidate"], problem=r["problem"]).correct for r in rows]
    result = tabulate(rows, verdicts, symbolic)
    what = (
        f"STAND-IN, NOT A MODEL JUDGE: {stand_in}'s verdicts written as {options.preset} replies and read back "
        "through the judge path; this measures that checker"
        if stand_in
        else f"model judge: backend {options.backend}, model {options.model}"
    )
    counts = ", ".join(f"{n} {sum(r['set'] == n for r in rows)}" for n in dict.fromkeys(r["set"] for r in rows))
    header = [
        f"## Judge accuracy: preset {options.preset}, order {options.order} ({name})",
        "",
        f"- {what}",
        f"- rows: {len(rows)} ({counts})",
        f"- {datetime.date.today().isoformat()}, {platform.machine()}, {os.cpu_count()} cores, "
        f"python {platform.python_version()}",
    ]
    text = report(header, result)
    print(text)
    write_json(
        out / "judge_accuracy.json",
        {"judge": name, "stand_in": stand_in, "preset": options.preset, "order": options.order, **result},
    )
    write_jsonl(
        out / "verdicts.jsonl",
        [
            {
                "id": r["id"],
                "set": r["set"],
                "part": r["part"],
                "label": r["label"],
                "kind": answer_kind(r["gold"]),
                "symbolic_correct": s,
                "judge": v.to_dict(),
            }
            for r, v, s in zip(rows, verdicts, symbolic, strict=True)
        ],
    )
    return result


if __name__ == "__main__":
    main()
