"""Labelled answer sets for measuring the grader, built at run time from their sources.

Every row is ``{"id", "set", "gold", "candidate", "label", "problem", "part", "provenance"}``. Sets:

- ``dev``: ``grading_pairs_dev.jsonl`` as shipped (the old yardstick; reported, never split).
- ``cases``: ``tests/assets/grader_cases.jsonl``, the round-1 table (tuned on then; reported whole).
- ``forms``: ``tests/assets/grader_cases_forms.jsonl``, the answer forms of issue 12, written for limo.
- ``champ``: ``tests/assets/grader_cases_champ.jsonl`` holds hand labels of CHAMP summaries by conversation
  key and a hash of the summary; the text comes from the installed ``champ-dataset`` (never copied).
- ``champ_r3``: ``tests/assets/grader_cases_champ_r3.jsonl``, 536 more CHAMP summaries labelled by hand for the
  third round (uniform, worded/yes-no golds, and a hunt among the verdicts "correct" most likely to be wrong),
  split by the same problem hash as ``champ``.
- ``olympiad``: ``tests/assets/grader_cases_olympiad.jsonl``, 323 final lines in the style of strong models on
  olympiad problems (Omni-MATH-like) and multiple-choice questions (MathVista-like, Gaokao, GPQA), written and
  labelled by hand for issue 25's hard-benchmark gap; each row carries the ``part`` fixed when it was written
  (248 rows split 40% held out by a hash of the pair before tuning; 75 more, ``batch: fresh``, written after
  the rules changed, all held out) and a ``note``.
- ``champ_r4``: ``tests/assets/grader_cases_champ_r4.jsonl``, CHAMP summaries labelled by hand for round 4 (issue
  33): a held-out sample drawn only from held-out problems and labelled blind (before any verdict on it was
  seen), a uniform tuning sample and a hunt for misses among the tuning summaries the grader did not accept
  (``bench/grader/champ_sample.py`` draws them).
- ``r4``: ``tests/assets/grader_cases_r4.jsonl``, the round-4 mis-grades as written cases (each with the case
  it is modelled on) and the near misses that guard each fix; all tuning rows.
- ``peer_style``: ``tests/assets/grader_cases_peer_style.jsonl``, (gold, prediction, expected) cases written
  in the style of the peer suites after round 4's rules changed, all held out and graded once.
- ``peer``: the peer suites themselves (see `peer_set`), read from a local checkout, never committed. A
  math-verify test's case is graded under that test's own comparison options (`peer_options`, `grade_options`),
  by math-verify and by limo alike.
- ``peer_fixes``: ``tests/assets/grader_cases_peer_fixes.jsonl``, each peer-suite tuning miss fixed by a rule
  (issue 33, item 2, second round), rewritten for limo with its near misses, and the disagreements of principle
  with our label; all tuning rows.
- ``numeric``: ``tests/assets/grader_cases_numeric.jsonl``, 142 numeric traps written and labelled by hand for issue 33
  (large exponents, factors off by one power or by 2, differences far below the working precision, powers of
  trigonometric functions, exponentials outside the double range), each with true equivalents; split 40% held out
  by a hash of the pair when written, before any change (``part`` in the file), labels checked at 3,000 digits.
- ``math_own``: each MATH train gold against its own solution (label true), except rows whose solution
  boxes several values while the gold keeps the last (a documented data hazard, listed as excluded).
- ``math_styles``: MATH train and MATH-500 golds against rewrites of themselves in the house styles and
  response wrappings a grader meets (label true), and against near misses (label false): see `REWRITES`.

Rows derived from ``../shared/data`` are generated here on each run and never written to the repository.
``part`` is ``heldout`` for about 30% of rows, decided by a hash of the row's *group* (the problem id for
MATH and CHAMP rows, the pair for written cases), so every row of one problem falls on the same side. The
split was fixed before the grader was tuned on these sets; only the ``tune`` part may guide changes.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import random
import re
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

from eval.grading.options import DEFAULT_OPTIONS, GradeOptions

REPO = Path(__file__).resolve().parents[2]
ASSETS = REPO / "tests" / "assets"
HELDOUT_PERCENT = 30
SPLIT_SALT = "limo-grader-split-v1"
# MATH train solutions that box several values; the gold keeps only the last box (data/README.md hazard).
LAST_BOX_ONLY = {"math_train/acc3f47e4350", "math_train/299c1dc95359", "math_train/f327fa826069"}
CHAMP_WRONG_GOLDS = {"P_Sequence_30", "P_Sequence_33", "P_Sequence_10", "P_Number-Theory_65"}

Row = dict


def data_dir() -> Path:
    """``$LIMO_SHARED_DATA`` or ``<repo>/../shared/data``."""
    return Path(os.environ.get("LIMO_SHARED_DATA", REPO.parent / "shared" / "data"))


def part_of(group: str) -> str:
    """``heldout`` or ``tune``, a fixed function of the row's group key."""
    digest = hashlib.sha1(f"{SPLIT_SALT}:{group}".encode()).hexdigest()
    return "heldout" if int(digest[:8], 16) % 100 < HELDOUT_PERCENT else "tune"


def _row(set_name: str, row_id: str, gold: str, cand: str, label: bool, group: str, **extra) -> Row:
    return {
        "id": row_id,
        "set": set_name,
        "gold": gold,
        "candidate": cand,
        "label": label,
        "problem": extra.pop("problem", None),
        "part": part_of(group),
        "provenance": extra,
    }


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


# -- sets from files ------------------------------------------------------------------------------------------
def dev_set() -> list[Row]:
    rows = _jsonl(data_dir() / "grading_pairs_dev.jsonl")
    out = [_row("dev", r["id"], r["gold"], r["candidate"], r["label"], r["id"], source=r["source"]) for r in rows]
    for row, raw in zip(out, rows, strict=True):
        row["part"], row["problem"] = "dev", raw.get("problem")
    return out


def case_group(row: dict) -> str:
    """The split group of a written case: the pair itself."""
    return row["gold"] + "\x00" + row["candidate"]


def case_set(name: str, file_name: str) -> list[Row]:
    """A committed case table: every row has gold, candidate, label, category, source (and maybe problem,
    and maybe ``part``: a table split when it was written keeps that split instead of the hash)."""
    rows = _jsonl(ASSETS / file_name)
    out = [
        _row(
            name,
            f"{name}/{i}",
            r["gold"],
            r["candidate"],
            r["label"],
            case_group(r),
            problem=r.get("problem"),
            category=r["category"],
            source=r["source"],
        )
        for i, r in enumerate(rows)
    ]
    for row, raw in zip(out, rows, strict=True):
        row["part"] = raw.get("part", row["part"])
    return out


def champ_set(set_name: str = "champ", file_name: str = "grader_cases_champ.jsonl") -> list[Row]:
    """Hand-labelled CHAMP summaries, text read from the installed package and checked against its hash."""
    import champ_dataset

    dataset = champ_dataset.load("v0")
    out = []
    for label in _jsonl(ASSETS / file_name):
        problem = dataset.problems[label["problem_id"]]
        turns = [m for m in problem.conversations[label["conversation"]].messages if m.role.startswith("Model.")]
        summary = turns[-1].text
        digest = hashlib.sha1(summary.encode()).hexdigest()[:12]
        if digest != label["summary_sha1"]:
            raise ValueError(f"{file_name}: {label['problem_id']} {label['conversation']}: text changed")
        key = f"{set_name}/{label['problem_id']}/{label['conversation']}"
        out.append(
            _row(
                set_name,
                key,
                problem.answer,
                summary,
                label["label"],
                label["problem_id"],
                problem=problem.text,
                sample=label.get("sample"),
            )
        )
    return out


def math_own_set() -> list[Row]:
    """Each MATH train gold against its own boxed solution."""
    rows = _jsonl(data_dir() / "math_train.jsonl")
    return [
        _row("math_own", r["id"], r["answer"], r["solution"], True, r["id"], problem=r["problem"])
        for r in rows
        if r["answer"].strip() and r["solution"] and r["id"] not in LAST_BOX_ONLY
    ]


# -- house-style rewrites -------------------------------------------------------------------------------------
_BIG_INT = re.compile(r"(?<![\d.,{}^_])(\d{4,})(?![\d.]|\\!|\{,\})")


def _group_digits(digits: str, sep: str) -> str:
    head = len(digits) % 3 or 3
    return digits[:head] + "".join(sep + digits[i : i + 3] for i in range(head, len(digits), 3))


def _separators(sep: str) -> Callable[[str], str | None]:
    def rewrite(gold: str) -> str | None:
        if "^" in gold or "_" in gold or not _BIG_INT.search(gold):
            return None
        return _BIG_INT.sub(lambda m: _group_digits(m.group(1), sep), gold)

    return rewrite


_SIMPLE_VALUE = re.compile(
    r"^(-?)(?:\\[dt]?frac\{(\d+)(\\sqrt\{(\d+)\})?\}\{(\d+)\}|(\d+)?\\sqrt\{(\d+)\}|(\d+)?\\pi|(\d+)/(\d+))$"
)


def _decimal_of(gold: str) -> float | None:
    """The value of a simple exact gold (``\\frac{a}{b}``, ``a\\sqrt{b}``, ``\\frac{a\\sqrt{b}}{c}``, ``a\\pi``)."""
    m = _SIMPLE_VALUE.match(gold.replace(" ", ""))
    if not m:
        return None
    sign = -1.0 if m.group(1) else 1.0
    if m.group(2):
        root = float(m.group(4)) ** 0.5 if m.group(4) else 1.0
        return sign * int(m.group(2)) * root / int(m.group(5))
    if m.group(7):
        return sign * int(m.group(6) or 1) * float(m.group(7)) ** 0.5
    if gold.replace(" ", "").endswith("\\pi"):
        return sign * int(m.group(8) or 1) * 3.141592653589793
    return sign * int(m.group(9)) / int(m.group(10))


def _approx_tail(gold: str) -> str | None:
    value = _decimal_of(gold)
    return None if value is None or value == int(value) else f"{gold} \\approx {value:.3f}"


def _near_miss(gold: str) -> str | None:
    """The gold with the last digit of its first number changed."""
    m = re.search(r"\d+", gold)
    if not m:
        return None
    digits = m.group(0)
    changed = digits[:-1] + str((int(digits[-1]) + 1) % 10)
    if len(changed) > 1 and changed[0] == "0":
        return None
    return gold[: m.start()] + changed + gold[m.end() :]


def _interval(problem: str, gold: str) -> tuple[str, str, str, str] | None:
    m = re.fullmatch(
        r"\s*(?:\\left)?\s*([\[(])\s*([^,\[\]()]+?)\s*,\s*([^,\[\]()]+?)\s*(?:\\right)?\s*([\])])\s*", gold
    )
    if not m or not re.search(r"interval|range|domain|values of", problem, re.IGNORECASE):
        return None
    if "\\infty" in m.group(2) and "\\infty" in m.group(3):
        return None
    return m.group(1), m.group(2), m.group(3), m.group(4)


def _interval_as_inequality(problem: str, gold: str) -> str | None:
    parts = _interval(problem, gold)
    if parts is None:
        return None
    left, lo, hi, right = parts
    low_op, high_op = ("\\le" if left == "[" else "<"), ("\\le" if right == "]" else "<")
    if "\\infty" in hi:
        return f"x {'>=' if left == '[' else '>'} {lo}".replace(">=", "\\ge")
    if "\\infty" in lo:
        return f"x {high_op} {hi}"
    return f"{lo} {low_op} x {high_op} {hi}"


def _interval_flipped(problem: str, gold: str) -> str | None:
    parts = _interval(problem, gold)
    if parts is None or "\\infty" in gold:
        return None
    left, lo, hi, right = parts
    low_op, high_op = ("<" if left == "[" else "\\le"), ("\\le" if right == "]" else "<")
    return f"{lo} {low_op} x {high_op} {hi}"


def _scaled_equation(gold: str) -> str | None:
    if gold.count("=") != 1 or re.search(r"\\text|\\le|\\ge|<|>|,", gold):
        return None
    lhs, rhs = (s.strip() for s in gold.split("="))
    if not re.search(r"[a-z]", lhs + rhs) or not lhs or not rhs:
        return None
    return f"3\\left({lhs}\\right) = 3\\left({rhs}\\right)"


def _matrix_trailing(gold: str) -> str | None:
    return gold.replace("\\end{pmatrix}", "\\\\ \\end{pmatrix}", 1) if "\\end{pmatrix}" in gold else None


def _matrix_array(gold: str) -> str | None:
    m = re.fullmatch(r"\s*\\begin\{pmatrix\}(.*)\\end\{pmatrix\}\s*", gold, re.DOTALL)
    if not m:
        return None
    columns = m.group(1).split("\\\\")[0].count("&") + 1
    return f"\\left[\\begin{{array}}{{{'c' * columns}}}{m.group(1)}\\end{{array}}\\right]"


def _top_level_items(gold: str) -> list[str] | None:
    if re.search(r"[()\[\]{}]|\\text|\\!", gold) or re.fullmatch(r"\d{1,3}(?:,\d{3})+", gold.strip()):
        return None
    items = [s.strip() for s in gold.split(",")]
    return items if len(items) >= 2 and all(items) and all(re.search(r"\d", s) for s in items) else None


def _list_with_and(gold: str) -> str | None:
    items = _top_level_items(gold)
    return None if items is None else ", ".join(items[:-1]) + ", \\text{ and } " + items[-1]


def _separate_boxes(gold: str) -> str | None:
    items = _top_level_items(gold)
    if items is None:
        return None
    boxes = [f"\\(\\boxed{{{s}}}\\)" for s in items]
    return "The solutions are " + ", ".join(boxes[:-1]) + " and " + boxes[-1] + "."


def _percent_word(word: str) -> Callable[[str], str | None]:
    def rewrite(gold: str) -> str | None:
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*\\%\s*", gold)
        return f"{m.group(1)} {word}" if m else None

    return rewrite


def _choice_with_text(gold: str) -> str | None:
    m = re.fullmatch(r"\s*\\text\{\s*\(([A-E])\)\s*\}\s*,?", gold)
    return f"\\text{{({m.group(1)}) the one listed}}" if m else None


def _pm_expanded(gold: str) -> str | None:
    m = re.fullmatch(r"\s*([^\\]*?)\s*\\pm\s*(.+?)\s*", gold)
    if not m or not m.group(1) or "," in gold:
        return None
    return f"{m.group(1)} + {m.group(2)}, {m.group(1)} - {m.group(2)}"


# Wrappings of a bare answer as a response (one is drawn per gold).
WRAPPINGS: dict[str, Callable[[str], str]] = {
    "final_answer_hope": lambda g: f"Final Answer: The final answer is ${g}$. I hope it is correct.",
    "chat_tail": lambda g: f"So the answer is $\\boxed{{{g}}}$.<|im_end|>\n<|im_start|>user\nThanks! Now try 17.",
    "prose_prefix": lambda g: f"The result: ${g}$",
    "late_marker": lambda g: (
        f"One case alone gives $\\boxed{{0}}$.\n\nCombining all cases, the final answer is ${g}$."
    ),
    "display_boxed": lambda g: f"Therefore\n\\[\n\\boxed{{{g}}}\n\\]",
    "gold_sentence": lambda g: f"the answer is ${g}$",
}
# Rewrites of the gold itself, with the label they carry by construction.
REWRITES: dict[str, tuple[bool, Callable[[str], str | None]]] = {
    "thousands_bang": (True, _separators(",\\!")),
    "thousands_bang_space": (True, _separators(",\\! ")),
    "thousands_brace": (True, _separators("{,}")),
    "approx_tail": (True, _approx_tail),
    "equation_scaled": (True, _scaled_equation),
    "matrix_trailing": (True, _matrix_trailing),
    "matrix_array": (True, _matrix_array),
    "list_and": (True, _list_with_and),
    "separate_boxes": (True, _separate_boxes),
    "percent_pct": (True, _percent_word("pct")),
    "percent_word": (True, _percent_word("percent")),
    "choice_text": (True, _choice_with_text),
    "pm_expanded": (True, _pm_expanded),
}


def _style_rows(rng: random.Random, source: str, r: dict) -> Iterator[Row]:
    gold, problem, pid = r["answer"].strip(), r["problem"], r["id"]

    def row(style: str, g: str, cand: str, label: bool) -> Row:
        return _row("math_styles", f"{pid}/{style}", g, cand, label, pid, problem=problem, style=style, source=source)

    for style, (label, rewrite) in REWRITES.items():
        cand = rewrite(gold)
        if cand and cand != gold:
            yield row(style, gold, cand, label)
            if style == "thousands_bang":
                yield row("gold_thousands", cand, gold, True)
    for style, rewrite_problem in (
        ("interval_inequality", _interval_as_inequality),
        ("interval_flip", _interval_flipped),
    ):
        cand = rewrite_problem(problem, gold)
        if cand:
            yield row(style, gold, cand, style == "interval_inequality")
    wrap = rng.choice(sorted(WRAPPINGS))
    if wrap == "gold_sentence":
        yield row(wrap, WRAPPINGS[wrap](gold), f"\\boxed{{{gold}}}", True)
    else:
        yield row(wrap, gold, WRAPPINGS[wrap](gold), True)
    miss = _near_miss(gold)
    if miss and miss != gold and rng.random() < 0.5:  # the near miss is bare or wrapped, one of the two
        yield row(f"{wrap}_near_miss", gold, WRAPPINGS[wrap](miss), False)
    elif miss and miss != gold:
        yield row("near_miss", gold, miss, False)


def math_style_set() -> list[Row]:
    """MATH train and MATH-500 golds against their house-style rewrites and near misses."""
    rng = random.Random(12)
    out: list[Row] = []
    for file_name in ("math_train.jsonl", "math500.jsonl"):
        for r in _jsonl(data_dir() / file_name):
            if r["answer"].strip():
                out.extend(_style_rows(rng, file_name, r))
    return out


# -- peer suites ----------------------------------------------------------------------------------------------
# Other checkers' test suites, read from a local checkout (``$LIMO_PEER_SUITES``, default
# ``~/.cache/limo/peer_suites``; never committed: the cases are other projects' code). Each file is parsed with
# ``ast`` and only literals are read: nothing of it is imported or run. A suite's folder is its name; a file
# that is missing is skipped and the set says so.
PEER_FILES = {
    "math-verify": (
        "tests/test_all.py",
        "tests/test_numina_cases.py",
        "tests/test_open_thoughts.py",
        "tests/test_boxed.py",
        "tests/test_strict.py",
        "tests/test_yujianll.py",
    ),
    "nemo-skills": ("tests/test_math_equal.py",),
    "math_evaluation": ("math_evaluation/tests/test_is_equiv.py",),
}
_PEER_LABEL_KEYS = ("expected", "result")
_PEER_CHECKS = {"_test_is_equiv", "_test_is_not_equiv", "is_equiv", "are_equal_under_sympy"}


def peer_dir() -> Path:
    """``$LIMO_PEER_SUITES`` or ``~/.cache/limo/peer_suites``."""
    return Path(os.environ.get("LIMO_PEER_SUITES", Path.home() / ".cache" / "limo" / "peer_suites"))


def _literal(node: ast.AST) -> object:
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, RecursionError):
        return _SKIP


_SKIP = object()


def _call_options(func: ast.FunctionDef) -> dict:
    """The constant keyword arguments of the test's ``compare_strings(...)`` call (match types, precision)."""
    for node in ast.walk(func):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "compare_strings":
            return {k.arg: v for k in node.keywords if k.arg and (v := _literal(k.value)) is not _SKIP}
    return {}


def _parametrized(func: ast.FunctionDef) -> Iterator[tuple[dict, bool | None]]:
    """(case fields, label) for each literal case of a ``pytest.mark.parametrize`` decorator."""
    for deco in func.decorator_list:
        if not (isinstance(deco, ast.Call) and ast.unparse(deco.func).endswith("parametrize")):
            continue
        names = [n.strip() for n in str(_literal(deco.args[0])).split(",")]
        values = deco.args[1].elts if isinstance(deco.args[1], ast.List) else []
        for node in values:
            value = _literal(node)
            if value is _SKIP:
                continue
            case = dict(zip(names, value if len(names) > 1 else (value,), strict=True))
            if "output_pair" in case:  # NeMo-Skills: a pair checked both ways, labelled by the test's name
                yield {"pair": case["output_pair"]}, not func.name.startswith("test_incorrect")
            else:
                label = next((case.pop(k) for k in _PEER_LABEL_KEYS if k in case), None)
                yield case, None if label is None else bool(label)


def _unittest_cases(func: ast.FunctionDef) -> Iterator[tuple[dict, bool]]:
    """(case, label) from ``test_in = …; test_out = …; self.assertTrue/False(check(test_in, test_out))``."""
    env: dict[str, object] = {}

    def visit(stmts: list[ast.stmt], bound: dict) -> Iterator[tuple[dict, bool]]:
        for stmt in stmts:
            if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
                env[stmt.targets[0].id] = _literal(stmt.value)
            elif isinstance(stmt, ast.For) and isinstance(stmt.iter, ast.Name):
                for item in env.get(stmt.iter.id) or ():  # type: ignore[union-attr]
                    yield from visit(stmt.body, {"test_in": item[0], "test_out": item[1]})
            elif isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
                call = stmt.value
                method = getattr(call.func, "attr", "")
                inner = call.args[0] if call.args else None
                if method in ("assertTrue", "assertFalse") and isinstance(inner, ast.Call):
                    if getattr(inner.func, "id", "") in _PEER_CHECKS and len(inner.args) >= 2:
                        scope = {**env, **bound}
                        gold, pred = (scope.get(getattr(a, "id", ""), _SKIP) for a in inner.args[:2])
                        if isinstance(gold, str) and isinstance(pred, str):
                            yield {"gold": gold, "pred": pred}, method == "assertTrue"

    yield from visit(func.body, {})


def _peer_rows(suite: str, rel: str, tree: ast.Module) -> Iterator[Row]:
    funcs = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name.startswith("test")]
    for func in funcs:
        options = _call_options(func)
        cases = list(_parametrized(func)) + list(_unittest_cases(func))
        for i, (case, label) in enumerate(cases):
            if label is None:
                continue
            pairs = (
                [(case["pair"][0], case["pair"][1]), (case["pair"][1], case["pair"][0])]
                if "pair" in case
                else [(case.get("gold"), case.get("pred"))]
            )
            for j, (gold, pred) in enumerate(pairs):
                if gold is None or pred is None or isinstance(gold, bool) or isinstance(pred, bool):
                    continue
                gold, pred = str(gold), str(pred)
                extra = {k: v for k, v in case.items() if k not in ("gold", "pred", "pair")}
                row_id = f"peer/{suite}/{func.name}/{i}" + (f"/{j}" if j else "")
                yield _row(
                    "peer",
                    row_id,
                    gold,
                    pred,
                    label,
                    f"{suite}:{gold}\x00{pred}",
                    suite=suite,
                    file=rel,
                    test=func.name,
                    options={**options, **extra},
                )


# The comparison settings of math-verify's ``tests/test_all.py::compare_strings`` (its tests' shared helper), which
# a test's own arguments override: each case's label was set under them.
MATH_VERIFY_TEST_DEFAULTS = {"precision": 6, "strict": True, "allow_set_relation_comp": False}


def peer_options(row: Row) -> dict:
    """The comparison options a peer case's test runs it under: ``compare_strings``'s defaults with the test's own
    arguments over them (``precision``, ``strict``, ``allow_set_relation_comp``; ``match_types`` is extraction)."""
    given = row["provenance"].get("options", {})
    return {key: given.get(key, default) for key, default in MATH_VERIFY_TEST_DEFAULTS.items()}


def grade_options(row: Row) -> GradeOptions:
    """limo's options for a row: a math-verify test's case under the test's own options, mapped by
    `GradeOptions.from_math_verify`, as math-verify itself is run on it; every other row (other suites' cases,
    which pass no options) under the defaults."""
    if row.get("set") != "peer" or row["provenance"].get("suite") != "math-verify":
        return DEFAULT_OPTIONS
    options = peer_options(row)
    return GradeOptions.from_math_verify(
        float_rounding=int(options["precision"]),
        strict=bool(options["strict"]),
        allow_set_relation_comp=bool(options["allow_set_relation_comp"]),
    )


def peer_set() -> list[Row]:
    """The peer suites' (gold, prediction, expected) cases, as those suites label them."""
    out: list[Row] = []
    for suite, files in PEER_FILES.items():
        for rel in files:
            path = peer_dir() / suite / rel
            if path.is_file():
                with warnings.catch_warnings():  # the suites' own invalid escapes ("\$") are not ours to report
                    warnings.simplefilter("ignore", (DeprecationWarning, SyntaxWarning))
                    tree = ast.parse(path.read_text(encoding="utf-8"))
                out.extend(_peer_rows(suite, rel, tree))
    return out


SETS: dict[str, Callable[[], list[Row]]] = {
    "dev": dev_set,
    "cases": lambda: case_set("cases", "grader_cases.jsonl"),
    "forms": lambda: case_set("forms", "grader_cases_forms.jsonl"),
    "champ": champ_set,
    "champ_r3": lambda: champ_set("champ_r3", "grader_cases_champ_r3.jsonl"),
    "champ_r4": lambda: champ_set("champ_r4", "grader_cases_champ_r4.jsonl"),
    "olympiad": lambda: case_set("olympiad", "grader_cases_olympiad.jsonl"),
    "r4": lambda: case_set("r4", "grader_cases_r4.jsonl"),
    "peer_style": lambda: case_set("peer_style", "grader_cases_peer_style.jsonl"),
    "peer_fixes": lambda: case_set("peer_fixes", "grader_cases_peer_fixes.jsonl"),
    "numeric": lambda: case_set("numeric", "grader_cases_numeric.jsonl"),
    "math_own": math_own_set,
    "math_styles": math_style_set,
    "peer": peer_set,
}


def build(names: list[str] | None = None) -> dict[str, list[Row]]:
    """The named sets (all by default)."""
    return {name: SETS[name]() for name in (names or list(SETS))}
